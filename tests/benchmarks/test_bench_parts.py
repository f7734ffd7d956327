"""Parts of the benchmark suite that its quick run does not reach: ×1000's streamed data
preparation and README's Performance table regenerated from a results file."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from benchmarks import data as bench_data
from benchmarks import readme, suite


def test_large_synthetic_data_is_made_in_chunks_and_written_in_whole_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_data, "SYNTHETIC_CHUNK_ROWS", 1000)
    monkeypatch.setattr(bench_data, "ROW_GROUP_ROWS", 700)
    dataset = bench_data.prepare(tmp_path, 0.2, source="synthetic", seed=5)  # 3,000 rows: 3 chunks
    assert dataset.rows == 3000
    examples = pq.ParquetFile(next(dataset.split.glob("*.parquet")))
    assert [examples.metadata.row_group(i).num_rows for i in range(examples.num_row_groups)] == [700, 700, 700, 700, 200]
    table = examples.read()
    assert table.column("row_id").to_pylist() == list(range(3000))
    rows = table.drop_columns(["row_id"])
    assert rows.slice(0, 1000).equals(bench_data.synthetic_taxi(1000, seed=5))  # the first chunk is seed 5's
    assert not rows.slice(1000, 1000).equals(rows.slice(0, 1000))  # later chunks have seeds of their own
    assert bench_data.read_taxi_csv(dataset.csv, rows.schema).equals(rows)  # the CSV holds the same rows
    assert not list(tmp_path.glob(".synthetic*"))  # built beside, renamed into place


def _results(tmp_path) -> tuple[dict, object]:
    measurements = [
        {"benchmark": "ingestion", "system": "beam-ml", "size": "taxi_x100", "rows": 100, "status": "ok", "reason": "",
         "n": 1, "seconds": suite.spread([1.0]), "rows_per_s": suite.spread([90.0]), "peak_rss_mib": suite.spread([400.0])},
        {"benchmark": "ingestion", "system": "pyarrow read+write", "size": "taxi_x100", "rows": 100, "status": "ok", "reason": "",
         "n": 1, "seconds": suite.spread([1.0]), "rows_per_s": suite.spread([100.0]), "peak_rss_mib": suite.spread([500.0])},
        suite._wall_record("penguin_cached_rerun", "train_steps=300", [1.5]),
    ]
    results = {"date": "2026-12-03", "mode": "full", "commit": "abc123", "measurements": measurements,
               "machine": {"cpus": 2, "platform": "Linux", "python": "3.11.7"}}
    path = tmp_path / "2026-12-03.json"
    path.write_text(json.dumps(results))
    return results, path


def test_readme_table_is_regenerated_between_its_markers(tmp_path):
    _, path = _results(tmp_path)
    page = tmp_path / "README.md"
    page.write_text(f"# x\n\n## Performance\n\nbefore\n\n{readme.START}\nold table\n{readme.END}\n\nafter\n")
    readme.update(page, path)
    text = page.read_text()
    assert "old table" not in text and text.startswith("# x\n") and text.endswith("\nafter\n")
    generated = text.split(readme.START)[1].split(readme.END)[0]
    assert "commits abc123" in generated and "1 targets met, 1 missed, 10 not measured" in generated
    assert "| ingestion vs pyarrow read+write (×100) | ≥ 0.8× pyarrow read+write at ×100 | 90 vs 100 rows/s on taxi_x100 | 0.90 |" in generated
    assert "| penguin fully cached rerun | < 1 s wall | 1.50 s median on train_steps=300 | 1.50 | — | **missed** |" in generated
    for target in suite.targets([]):  # every target has its row
        assert f"| {target['target']} |" in generated
    readme.update(page, path)  # again: the same page
    assert page.read_text() == text


def test_readme_without_markers_says_what_to_add(tmp_path):
    _, path = _results(tmp_path)
    page = tmp_path / "README.md"
    page.write_text("# x\n")
    with pytest.raises(SystemExit, match="lacks the benchmark marker lines"):
        readme.update(page, path)


def test_the_projects_readme_has_the_markers():
    text = readme.README.read_text()
    assert text.count(readme.START) == 1 and text.count(readme.END) == 1
    assert text.index(readme.START) > text.index("## Performance")
