"""The data components through the real runner: ExampleGen, StatisticsGen, SchemaGen, ExampleValidator."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from beam_ml import Anomalies, Examples, Input, Output, Pipeline, Statistics, component
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import ImportSchema, SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.run import main

REPO = Path(__file__).resolve().parents[2]
MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def data_pipeline(root, input_path, **example_gen_params):
    gen = ExampleGen(input_path=str(input_path), **example_gen_params)
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    return Pipeline("data", str(root), [gen, stats, schema, validator])


@pytest.fixture(scope="module")
def taxi_x10(shared_data, tmp_path_factory):
    source = (shared_data / "chicago_taxi" / "data.csv").read_text()
    header, body = source.split("\n", 1)
    path = tmp_path_factory.mktemp("taxi") / "taxi_x10.csv"
    path.write_text(header + "\n" + "\n".join([body.rstrip("\n")] * 10) + "\n")
    return path


def split_rows(result):
    return result.outputs("ExampleGen")["examples"].properties["split_rows"]


def test_taxi_data_stages_conserve_rows_and_cache(shared_data, tmp_path):
    pipeline = data_pipeline(tmp_path / "root", shared_data / "chicago_taxi" / "data.csv")
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    examples = result.outputs("ExampleGen")["examples"].properties
    assert examples["rows_read"] == 15002 and examples["rows_rejected"] == 0
    assert sum(examples["split_rows"].values()) == 15002
    statistics = result.outputs("StatisticsGen")["statistics"]
    assert statistics.properties["num_examples"] == examples["split_rows"]
    stats = Statistics(statistics.uri, statistics.properties).load("train")
    assert {f.path.step[0] for f in stats.datasets[0].features} >= {"fare", "payment_type", "tips"}
    assert (Path(statistics.uri) / "Split-eval" / "FeatureStats.pb").exists()
    with MetadataStore(sqlite_url_for_root(str(tmp_path / "root"))) as store:
        gen_execution = store.get_execution(result.nodes["ExampleGen"].execution.id)
        assert gen_execution.properties["rows_in"] == 15002 and gen_execution.properties["rows_rejected"] == 0
    assert LocalDagRunner().run(pipeline).ran() == []


def test_bad_rows_fail_the_run_naming_file_and_line(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("a,b\n1,x\n2,y\n3\n4,z\n")
    result = LocalDagRunner().run(data_pipeline(tmp_path / "root", data))
    assert result.state == "FAILED"
    assert result.failed.node_id == "ExampleGen"
    assert f"1 of 4 input rows could not be parsed (max_rejected_fraction=0.0): {data}:4: expected 2 fields, got 1" in result.failed.error

    tolerant = LocalDagRunner().run(data_pipeline(tmp_path / "root2", data, max_rejected_fraction=0.5))
    assert tolerant.state == "COMPLETE"
    examples = tolerant.outputs("ExampleGen")["examples"]
    assert examples.properties["rows_rejected"] == 1 and examples.properties["rows_read"] == 4
    [rejected_file] = (Path(examples.uri) / "rejected").glob("*.jsonl")
    [row] = [json.loads(line) for line in rejected_file.read_text().splitlines()]
    assert row == {"path": str(data), "line": 4, "raw": "3", "reason": "expected 2 fields, got 1"}


def test_a_value_that_does_not_fit_the_schema_is_rejected(tmp_path):
    schema_file = tmp_path / "schema.pbtxt"
    schema_file.write_text('feature { name: "n" type: INT }\nfeature { name: "s" type: BYTES }\n')
    data = tmp_path / "typed.csv"
    data.write_text("n,s\n1,a\nten,b\n3,c\n")
    imported = ImportSchema(schema_file=str(schema_file))
    gen = ExampleGen(input_path=str(data), schema=imported.outputs.schema)
    result = LocalDagRunner().run(Pipeline("typed", str(tmp_path / "root"), [imported, gen]))
    assert result.state == "FAILED"
    assert f"{data}:3: column 'n': value 'ten' does not fit int64" in result.failed.error


@component
def MiscountingStatisticsGen(examples: Input[Examples], statistics: Output[Statistics]) -> None:
    """Reports one example fewer than it was given, as a lossy runner would."""
    statistics.properties.update(
        splits=examples.splits, num_examples={s: n - 1 for s, n in examples.properties["split_rows"].items()}
    )


def test_row_books_that_do_not_balance_fail_the_run(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a\n" + "\n".join(str(i) for i in range(30)) + "\n")
    gen = ExampleGen(input_path=str(data))
    lossy = MiscountingStatisticsGen(examples=gen.outputs.examples)
    root = tmp_path / "root"
    result = LocalDagRunner().run(Pipeline("books", str(root), [gen, lossy]))
    assert result.state == "FAILED" and result.failed.node_id == "MiscountingStatisticsGen"
    rows = split_rows(result)
    assert f"split 'train' has num_examples {rows['train'] - 1}, but examples" in result.failed.error
    assert f"holds {rows['train']} rows" in result.failed.error
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        assert store.latest_artifact("Statistics") is None  # its output was withdrawn, not left LIVE
        assert store.integrity_check() == []


def test_schema_validation_and_show_on_the_penguin_pipeline(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "examples" / "penguin"))
    try:
        from pipeline import create_data_pipeline
    finally:
        sys.path.pop(0)
    root = tmp_path / "penguin"
    result = LocalDagRunner().run(create_data_pipeline(str(root)))
    assert result.state == "COMPLETE"
    assert sum(split_rows(result).values()) == 344
    anomalies = result.outputs("ExampleValidator")["anomalies"]
    for split in anomalies.properties["splits"]:
        Anomalies(anomalies.uri, anomalies.properties).load(split)  # parses
    for node, name, expected in (
        ("StatisticsGen", "statistics", "body_mass_g"),
        ("SchemaGen", "schema", "Adelie"),
        ("ExampleValidator", "anomalies", "split train"),
    ):
        artifact = result.outputs(node)[name]
        assert main(["show", str(artifact.id), "--pipeline-root", str(root)]) == 0
        assert expected in capsys.readouterr().out
    # Two eval rows lack the measurements; the message says so, not "Column dropped" (issue 10).
    eval_anomalies = Anomalies(anomalies.uri, anomalies.properties).load("eval").anomaly_info
    assert [r.description for r in eval_anomalies["bill_depth_mm"].reason] == [
        "Present in 126 of 128 rows (98.4%); the schema requires 100%."
    ]


def test_data_pipeline_never_imports_tensorflow(tmp_path):
    probe = (
        "import sys; sys.path.insert(0, 'examples/penguin'); from pipeline import create_data_pipeline; "
        "from beam_ml.orchestration.runner import LocalDagRunner; "
        f"r = LocalDagRunner().run(create_data_pipeline({str(tmp_path / 'root')!r})); "
        "assert r.state == 'COMPLETE'; assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


@pytest.mark.slow
def test_splits_identical_in_process_and_multi_process(shared_data, tmp_path):
    data = shared_data / "chicago_taxi" / "data.csv"
    single = LocalDagRunner().run(data_pipeline(tmp_path / "a", data))
    multi = LocalDagRunner(beam_args=MULTI_PROCESS).run(data_pipeline(tmp_path / "b", data))
    assert single.state == multi.state == "COMPLETE"
    import pyarrow.parquet as pq

    for split in ("train", "eval"):
        tables = [
            pq.read_table(Path(r.outputs("ExampleGen")["examples"].uri) / f"Split-{split}").sort_by(
                [("trip_start_timestamp", "ascending"), ("fare", "ascending"), ("trip_seconds", "ascending"), ("tips", "ascending")]
            )
            for r in (single, multi)
        ]
        assert tables[0].equals(tables[1]), split
    stats = [Statistics(r.outputs("StatisticsGen")["statistics"].uri).load("train") for r in (single, multi)]
    assert stats[0].datasets[0].num_examples == stats[1].datasets[0].num_examples


@pytest.mark.slow
def test_ten_multi_process_runs_on_taxi_x10_count_every_row(taxi_x10, tmp_path):
    gen_counts = set()
    for attempt in range(10):
        gen = ExampleGen(input_path=str(taxi_x10))
        stats = StatisticsGen(examples=gen.outputs.examples)
        result = LocalDagRunner(beam_args=MULTI_PROCESS).run(Pipeline("x10", str(tmp_path / f"r{attempt}"), [gen, stats]))
        assert result.state == "COMPLETE", result.failed and result.failed.error
        rows = split_rows(result)
        assert sum(rows.values()) == 150020
        assert result.outputs("StatisticsGen")["statistics"].properties["num_examples"] == rows
        gen_counts.add(tuple(sorted(rows.items())))
    assert len(gen_counts) == 1  # and the same split every time


def test_our_ingestion_and_statistics_match_tfdv_counts_on_taxi(shared_data, shared_reference, tmp_path):
    """The whole path (our CSV reader, float64 columns) against TFDV's reference.

    Counts must be equal. TFDV's CSV decoder reads floats as float32, so float
    min/max agree only to float32 precision; the transform-level tests read the
    CSV as float32 and match mean/std to 1e-9 (tests/transforms/test_statistics.py).
    """
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import statistics_pb2

    reference = text_format.Parse(
        (shared_reference / "tfdv_1.16.1_chicago_taxi_stats.pbtxt").read_text(), statistics_pb2.DatasetFeatureStatisticsList()
    ).datasets[0]
    gen = ExampleGen(input_path={"all": str(shared_data / "chicago_taxi" / "data.csv")})
    stats = StatisticsGen(examples=gen.outputs.examples)
    result = LocalDagRunner().run(Pipeline("taxi", str(tmp_path / "root"), [gen, stats]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    ours = Statistics(result.outputs("StatisticsGen")["statistics"].uri).load("all").datasets[0]
    assert ours.num_examples == reference.num_examples == 15002
    mine = {f.path.step[0]: f for f in ours.features}
    for expected in reference.features:
        name = expected.path.step[0]
        got = mine[name]
        assert got.type == expected.type, name
        kind = "num_stats" if expected.HasField("num_stats") else "string_stats"
        got_stats, want = getattr(got, kind), getattr(expected, kind)
        assert got_stats.common_stats.num_non_missing == want.common_stats.num_non_missing, name
        assert got_stats.common_stats.num_missing == want.common_stats.num_missing, name
        if kind == "num_stats":
            assert got_stats.num_zeros == want.num_zeros, name
            assert got_stats.min == pytest.approx(want.min, rel=1e-6), name
            assert got_stats.max == pytest.approx(want.max, rel=1e-6), name
            assert got_stats.mean == pytest.approx(want.mean, rel=1e-6), name
        else:
            assert got_stats.unique == want.unique, name


def test_import_user_schema_and_fail_on_anomalies(shared_data, tmp_path):
    imported = ImportSchema(schema_file=str(shared_data / "chicago_taxi" / "tfx_user_schema.pbtxt"))
    gen = ExampleGen(input_path=str(shared_data / "chicago_taxi" / "data.csv"))
    stats = StatisticsGen(examples=gen.outputs.examples)
    validator = ExampleValidator(
        statistics=stats.outputs.statistics, schema=imported.outputs.schema, on_anomalies="fail", splits=["eval"]
    )
    result = LocalDagRunner().run(Pipeline("taxi", str(tmp_path / "root"), [imported, gen, stats, validator]))
    # TFX's hand-edited schema was written for TFX's own sample: this CSV has companies outside its domain.
    assert result.state == "FAILED" and result.failed.node_id == "ExampleValidator"
    assert "anomalies: eval: company:" in result.failed.error
    warned = LocalDagRunner().run(
        Pipeline("taxi", str(tmp_path / "root"), [imported, gen, stats, validator.with_params(on_anomalies="warn")])
    )
    assert warned.state == "COMPLETE"
    anomalies = warned.outputs("ExampleValidator")["anomalies"]
    assert anomalies.properties["anomalies"]["eval"] >= 1
    assert "company" in Anomalies(anomalies.uri).load("eval").anomaly_info


@pytest.mark.parametrize("text", ["", "a,b\n"], ids=["empty file", "header only"])
def test_empty_input_fails_at_example_gen_naming_the_pattern(tmp_path, text):
    data = tmp_path / "empty.csv"
    data.write_text(text)
    result = LocalDagRunner().run(data_pipeline(tmp_path / "root", data))
    assert result.state == "FAILED" and result.failed.node_id == "ExampleGen"
    assert f"no rows in {data}" in result.failed.error


def test_allowed_empty_input_fails_downstream_naming_the_empty_split(tmp_path):
    data = tmp_path / "empty.csv"
    data.write_text("a,b\n")
    result = LocalDagRunner().run(data_pipeline(tmp_path / "root", data, allow_empty=True))
    assert result.state == "FAILED" and result.failed.node_id == "StatisticsGen"
    assert "StatisticsGen: split 'train' of Examples" in result.failed.error and "has no rows" in result.failed.error


def test_a_column_missing_from_one_split_is_reported_against_that_split_only(tmp_path):
    rows = "".join(f"{i},{i % 3}\n" for i in range(30))
    (tmp_path / "train.csv").write_text("a,b\n" + rows)
    (tmp_path / "eval.csv").write_text("a\n" + "".join(f"{i}\n" for i in range(10)))
    gen = ExampleGen(input_path={"train": str(tmp_path / "train.csv"), "eval": str(tmp_path / "eval.csv")})
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    result = LocalDagRunner().run(Pipeline("splits", str(tmp_path / "root"), [gen, stats, schema, validator]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    anomalies = result.outputs("ExampleValidator")["anomalies"]
    train = Anomalies(anomalies.uri).load("train").anomaly_info
    eval_ = Anomalies(anomalies.uri).load("eval").anomaly_info
    assert dict(train) == {}
    assert "b" in eval_
    examples = result.outputs("ExampleGen")["examples"]
    [eval_file] = (Path(examples.uri) / "Split-eval").glob("*.parquet")
    assert pq.read_schema(eval_file).names == ["a"]
    statistics = result.outputs("StatisticsGen")["statistics"]
    eval_stats = Statistics(statistics.uri, statistics.properties).load("eval")
    assert {f.path.step[0] for f in eval_stats.datasets[0].features} == {"a"}
