"""Property-based hunt for values ingestion would change: CSVs with quotes, embedded
delimiters and newlines, empty fields, unicode, and words at random places in columns of
numbers. Every row of the file is either written or rejected, every written value is the
file's value, and shuffling the rows never changes a column's type."""

import collections
import csv
import io
import math
import random

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_ml.transforms.ingestion import ReadOptions, read_examples_in_memory

TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\'é漢😀-.0123456789')), max_size=8)


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


WORD = st.text(alphabet=st.sampled_from(list('xyzé漢 ,"\n')), min_size=1, max_size=5).filter(
    lambda t: t.strip() and _not_a_number(t))
NUMBER = st.one_of(st.integers(-10**6, 10**6).map(str),
                   st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr))
CELL = st.one_of(NUMBER, NUMBER, NUMBER, WORD, st.just(""))
ROW = st.tuples(CELL, CELL, TEXT)


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["n", "m", "t"])
    writer.writerows(rows)
    return out.getvalue()


def ingest(tmp_path, name: str, text: str, fraction: float):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    options = ReadOptions(format="csv", infer_bytes=64, max_mixed_fraction=fraction)
    result = read_examples_in_memory({"all": str(path)}, options)
    return result.splits["all"], result.rejected


def as_read(text: str, arrow_type: pa.DataType):
    """A file's text as the value it must be read as, in a column of `arrow_type`."""
    if text == "":
        return None
    if pa.types.is_integer(arrow_type):
        return int(text.strip())
    if pa.types.is_floating(arrow_type):
        return float(text.strip())
    return text


@settings(max_examples=1000, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=60), fraction=st.sampled_from([0.01, 0.3]), seed=st.integers(0, 9))
def test_no_value_is_changed_and_no_row_is_lost(tmp_path, rows, fraction, seed):
    text = csv_text(rows)
    file_rows = list(csv.reader(io.StringIO(text)))[1:]
    table, rejected = ingest(tmp_path, "data.csv", text, fraction)

    assert table.num_rows + len(rejected) == len(file_rows)

    types = [table.schema.field(name).type for name in ("n", "m", "t")]
    expected = collections.Counter()
    for row in file_rows:
        try:
            expected[tuple(as_read(value, t) for value, t in zip(row, types, strict=True))] += 1
        except ValueError:
            continue  # a value that does not fit its column: that row must be rejected
    written = collections.Counter(tuple(r.values()) for r in table.select(["n", "m", "t"]).to_pylist())
    assert not written - expected, f"values changed: {written - expected}"
    assert all(not isinstance(v, float) or math.isfinite(v) for row in written for v in row)

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    shuffled_table, _ = ingest(tmp_path, "shuffled.csv", csv_text(shuffled), fraction)
    assert shuffled_table.schema.types == table.schema.types
