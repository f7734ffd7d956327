"""The benchmark data: the Chicago taxi sample replicated, or synthetic taxi-like rows of any size.

Every dataset is a directory with

- ``data.csv``: the rows as CSV with a header (what ingestion, statistics, TFDV and the
  pyarrow limit read);
- ``examples/Split-train/*.parquet``: the same rows plus a ``row_id`` column, as
  ExampleGen writes Examples (flat columns, nulls for empty fields; what Transform and
  inference read);
- ``meta.json``: rows, bytes, source.

The synthetic generator follows the taxi sample's columns, types, missingness and
categorical cardinalities (measured on ``../shared/data/chicago_taxi/data.csv``:
15,002 rows, 18 columns) and is deterministic for a given seed, so the suite runs
where ``../shared`` is absent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
SHARED_TAXI = REPO.parent / "shared" / "data" / "chicago_taxi" / "data.csv"
TAXI_ROWS = 15_002
#: Bump when the generator or the layout changes: cached datasets are rebuilt.
DATA_VERSION = 1
ROW_GROUP_ROWS = 65_536

COLUMNS = [
    "pickup_community_area", "fare", "trip_start_month", "trip_start_hour", "trip_start_day",
    "trip_start_timestamp", "pickup_latitude", "pickup_longitude", "dropoff_latitude",
    "dropoff_longitude", "trip_miles", "pickup_census_tract", "dropoff_census_tract",
    "payment_type", "company", "trip_seconds", "dropoff_community_area", "tips",
]
PAYMENT_TYPES = ["Cash", "Credit Card", "No Charge", "Unknown", "Dispute", "Pcard", "Prcard"]
PAYMENT_WEIGHTS = [9909, 4975, 81, 29, 4, 3, 1]
_MAJOR_COMPANIES = [
    ("Taxi Affiliation Services", 5176), ("Dispatch Taxi Affiliation", 1636),
    ("Blue Ribbon Taxi Association Inc.", 1090), ("Choice Taxi Association", 872),
    ("Northwest Management LLC", 551), ("KOAM Taxi Association", 246), ("Top Cab Affiliation", 132),
]
#: 61 companies in the sample (plus missing); the long tail shares what the majors leave.
COMPANIES = [name for name, _ in _MAJOR_COMPANIES] + [f"{1000 + i} - {i * 37 % 89:02d} Cab Co." for i in range(54)]
_COMPANY_WEIGHTS = np.array([w for _, w in _MAJOR_COMPANIES] + list(np.geomspace(120, 1, 54)), dtype=np.float64)
COMPANY_MISSING = 5140 / TAXI_ROWS


@dataclass(frozen=True)
class Dataset:
    name: str
    directory: Path
    rows: int
    source: str  # "taxi" or "synthetic"

    @property
    def csv(self) -> Path:
        return self.directory / "data.csv"

    @property
    def examples(self) -> Path:
        return self.directory / "examples"

    @property
    def split(self) -> Path:
        return self.examples / "Split-train"

    @property
    def csv_mib(self) -> float:
        return self.csv.stat().st_size / 2**20


def _missing(rng: np.random.Generator, values: pa.Array | np.ndarray, fraction: float) -> pa.Array:
    mask = rng.random(len(values)) < fraction
    return pa.array(values, mask=mask)


def synthetic_taxi(rows: int, seed: int = 0) -> pa.Table:
    """Taxi-like rows: the sample's 18 columns and types, its missingness and cardinalities."""
    rng = np.random.default_rng(seed)
    n = rows
    minutes = rng.integers(0, 4 * 365 * 24 * 4, n)  # 15-minute slots over four years, as the sample
    timestamp = 1_357_000_200 + minutes * 900
    month = rng.integers(1, 13, n)
    hour = rng.choice(24, n, p=np.r_[np.full(6, 0.02), np.full(18, 0.88 / 18)])
    day = rng.integers(1, 8, n)
    pickup_area = rng.choice(np.arange(1, 78), n, p=np.r_[np.full(7, 0.1), np.full(70, 0.3 / 70)])
    dropoff_area = rng.choice(np.arange(1, 78), n, p=np.r_[np.full(7, 0.09), np.full(70, 0.37 / 70)])
    trip_seconds = np.round(rng.lognormal(6.3, 0.8, n) / 60) * 60
    trip_miles = np.round(np.maximum(rng.lognormal(0.3, 1.1, n) - 0.8, 0.0), 1)
    fare = np.round(3.25 + 1.8 * trip_miles + trip_seconds / 360 + rng.normal(0, 0.5, n).clip(0), 2)
    payment = rng.choice(len(PAYMENT_TYPES), n, p=np.array(PAYMENT_WEIGHTS) / sum(PAYMENT_WEIGHTS))
    tips = np.where(payment == 1, np.round(fare * rng.uniform(0.1, 0.25, n), 2), 0.0)
    # 237 pickup and 292 dropoff locations (community-area centroids), as in the sample.
    pickup_points = rng.uniform([41.69, -87.91], [42.01, -87.57], (237, 2)).round(9)
    dropoff_points = rng.uniform([41.66, -87.91], [42.02, -87.54], (292, 2)).round(9)
    pickup_at = pickup_points[rng.integers(0, 237, n)]
    dropoff_at = dropoff_points[rng.integers(0, 292, n)]
    dropoff_missing = rng.random(n) < 483 / TAXI_ROWS
    pickup_missing = rng.random(n) < 2 / TAXI_ROWS
    tracts = 17_031_000_000 + rng.choice(rng.integers(10_100, 980_100, 230), n)
    companies = np.array(COMPANIES, dtype=object)[
        rng.choice(len(COMPANIES), n, p=_COMPANY_WEIGHTS / _COMPANY_WEIGHTS.sum())
    ]
    return pa.table({
        "pickup_community_area": _missing(rng, pickup_area, 2 / TAXI_ROWS),
        "fare": pa.array(fare),
        "trip_start_month": pa.array(month),
        "trip_start_hour": pa.array(hour),
        "trip_start_day": pa.array(day),
        "trip_start_timestamp": pa.array(timestamp),
        "pickup_latitude": pa.array(pickup_at[:, 0], mask=pickup_missing),
        "pickup_longitude": pa.array(pickup_at[:, 1], mask=pickup_missing),
        "dropoff_latitude": pa.array(dropoff_at[:, 0], mask=dropoff_missing),
        "dropoff_longitude": pa.array(dropoff_at[:, 1], mask=dropoff_missing),
        "trip_miles": pa.array(trip_miles),
        "pickup_census_tract": _missing(rng, np.full(n, 17_031_081_401), 15_001 / TAXI_ROWS),
        "dropoff_census_tract": _missing(rng, tracts, 4241 / TAXI_ROWS),
        "payment_type": pa.array(np.array(PAYMENT_TYPES, dtype=object)[payment], pa.string()),
        "company": _missing(rng, companies, COMPANY_MISSING).cast(pa.string()),
        "trip_seconds": _missing(rng, trip_seconds.astype(np.int64), 6 / TAXI_ROWS),
        "dropoff_community_area": _missing(rng, dropoff_area, 507 / TAXI_ROWS),
        "tips": pa.array(tips),
    })


def read_taxi_csv(path: Path, column_types: pa.Schema | None = None) -> pa.Table:
    """The CSV as ingestion reads it: the empty field is null, for strings too."""
    return pcsv.read_csv(path, convert_options=_convert_options(column_types))


def _convert_options(column_types: pa.Schema | None) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(strings_can_be_null=True,
                               column_types=dict(zip(column_types.names, column_types.types, strict=True)) if column_types else None)


def write_csv_copies(source: Path, copies: int, target: Path) -> int:
    """``source``'s header once, then its rows ``copies`` times; gives the number of rows written."""
    header, body = source.read_text().split("\n", 1)
    body = body.rstrip("\n") + "\n"
    with open(target, "w") as out:
        out.write(header + "\n")
        for _ in range(copies):
            out.write(body)
    return copies * body.count("\n")


#: Synthetic rows are generated and written this many at a time (×100 is one chunk), so ×1000 never
#: holds its 15 M rows in memory; chunk i > 0 has its own seed.
SYNTHETIC_CHUNK_ROWS = TAXI_ROWS * 100


def write_synthetic_csv(rows: int, seed: int, target: Path) -> pa.Schema:
    """``rows`` synthetic rows written to ``target`` in chunks; gives the columns' types."""
    schema = None
    with open(target, "wb") as out:
        for index, start in enumerate(range(0, rows, SYNTHETIC_CHUNK_ROWS)):
            chunk = synthetic_taxi(min(SYNTHETIC_CHUNK_ROWS, rows - start), seed=seed if index == 0 else (seed, index))
            pcsv.write_csv(chunk, out, pcsv.WriteOptions(include_header=index == 0))
            schema = schema or chunk.schema
    return schema


def _write_examples(csv: Path, column_types: pa.Schema, split_dir: Path) -> int:
    """The CSV's rows as Parquet Examples (plus ``row_id``), streamed: row groups of ``ROW_GROUP_ROWS``
    whatever the size, without the whole table in memory (×1000 is 15 M rows). Gives the row count."""
    split_dir.mkdir(parents=True, exist_ok=True)
    reader = pcsv.open_csv(csv, convert_options=_convert_options(column_types))
    rows, pending, writer = 0, [], None

    def write(table: pa.Table) -> None:
        nonlocal rows, writer
        table = table.append_column("row_id", pa.array(np.arange(rows, rows + table.num_rows, dtype=np.int64)))
        if writer is None:
            writer = pq.ParquetWriter(split_dir / "data-00000-of-00001.parquet", table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        rows += table.num_rows

    pending_rows = 0
    for batch in reader:
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(pending).combine_chunks()
            whole = pending_rows - pending_rows % ROW_GROUP_ROWS
            write(table.slice(0, whole))
            pending = table.slice(whole).to_batches()
            pending_rows -= whole
    if pending_rows or writer is None:
        write(pa.Table.from_batches(pending, schema=reader.schema))
    writer.close()
    return rows


def dataset_name(source: str, copies: int) -> str:
    return f"{source}_x{copies:g}"


def prepare(work_dir: Path, copies: float, *, source: str | None = None, seed: int = 0) -> Dataset:
    """The dataset of ``copies`` × the taxi sample's size (taxi if present, else synthetic); cached."""
    source = source or ("taxi" if SHARED_TAXI.is_file() else "synthetic")
    work_dir.mkdir(parents=True, exist_ok=True)
    name = dataset_name(source, copies)
    directory = work_dir / name
    meta_path = directory / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == DATA_VERSION and meta.get("seed") == seed:
            return Dataset(name, directory, meta["rows"], source)
    # Built beside, then renamed into place: a second suite (another checkout) preparing the same
    # dataset never sees it half written.
    building = Path(tempfile.mkdtemp(dir=work_dir, prefix=f".{name}-"))
    try:
        csv = building / "data.csv"
        if source == "taxi":
            if copies != int(copies):
                raise ValueError("the taxi data replicates whole copies")
            write_csv_copies(SHARED_TAXI, int(copies), csv)
            column_types = read_taxi_csv(SHARED_TAXI).schema  # the sample decides the types, as at ×1
        else:
            column_types = write_synthetic_csv(round(TAXI_ROWS * copies), seed, csv)
        rows = _write_examples(csv, column_types, building / "examples" / "Split-train")
        meta = {"version": DATA_VERSION, "seed": seed, "rows": rows, "source": source, "csv_bytes": csv.stat().st_size}
        (building / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(directory, ignore_errors=True)
        try:
            building.rename(directory)
        except OSError:  # another suite finished first: use its copy
            if not meta_path.is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return Dataset(name, directory, rows, source)
