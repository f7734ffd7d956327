"""List-valued features through the data components and the real runner: ExampleGen keeps
them as lists, StatisticsGen counts their values (and reads a schema's categorical claims),
SchemaGen infers their value counts, ExampleValidator finds nothing wrong."""

import json

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from beam_ml import Pipeline
from beam_ml.artifacts import Anomalies, Statistics
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import ImportSchema, SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.display import render_artifact
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.transforms.schema import load_schema

ROWS = [
    {"id": i, "tags": ["a", "b", "c"][: i % 4], "scores": [i / 2, i / 4] if i % 5 else None, "code": i % 3,
     "c": {"f1": i % 7, "f2": "x" * (i % 3)} if i % 6 else None}
    for i in range(60)
]


def test_list_features_through_the_data_components(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    declared = tmp_path / "declared.pbtxt"
    declared.write_text('feature { name: "code" type: INT int_domain { is_categorical: true } }\n')
    imported = ImportSchema(schema_file=str(declared))
    gen = ExampleGen(input_path=str(data), format="jsonl")
    stats = StatisticsGen(examples=gen.outputs.examples, schema=imported.outputs.schema)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    result = LocalDagRunner().run(Pipeline("lists", str(tmp_path / "root"), [imported, gen, stats, schema, validator]))
    assert result.state == "COMPLETE", result.failed and result.failed.error

    examples = result.outputs("ExampleGen")["examples"]
    train_rows = pq.read_table(f"{examples.uri}/Split-train").to_pylist()
    written = train_rows + pq.read_table(f"{examples.uri}/Split-eval").to_pylist()
    assert sorted(written, key=lambda r: r["id"]) == ROWS  # every list value as it was in the file

    statistics = result.outputs("StatisticsGen")["statistics"]
    train = {f.path.step[0]: f for f in Statistics(statistics.uri, statistics.properties).load("train").datasets[0].features}
    tags = train["tags"].string_stats.common_stats
    assert tags.num_non_missing == len(train_rows)  # an empty list is present, with 0 values
    assert tags.tot_num_values == sum(len(r["tags"]) for r in train_rows)
    assert (tags.min_num_values, tags.max_num_values) == (0, 3)
    scores = train["scores"].num_stats.common_stats
    assert scores.num_missing == sum(r["scores"] is None for r in train_rows)
    assert (scores.min_num_values, scores.max_num_values) == (2, 2)
    assert train["code"].HasField("string_stats")  # categorical per the imported schema
    assert {v.value for v in train["code"].string_stats.top_values} == {"0", "1", "2"}

    inferred = {f.name: f for f in load_schema(f"{result.outputs('SchemaGen')['schema'].uri}/schema.pbtxt").feature}
    assert not inferred["tags"].HasField("value_count") and not inferred["tags"].HasField("shape")
    assert (inferred["scores"].value_count.min, inferred["scores"].value_count.max) == (2, 2)
    assert inferred["id"].shape.dim[0].size == 1
    assert [f.name for f in inferred["c"].struct_domain.feature] == ["f1", "f2"]
    anomalies = Anomalies(result.outputs("ExampleValidator")["anomalies"].uri).load("eval")
    assert not anomalies.anomaly_info

    members = {".".join(f.path.step): f for f in Statistics(statistics.uri, statistics.properties).load("train").datasets[0].features}
    f1 = members["c.f1"].num_stats
    structs = [r["c"] for r in train_rows if r["c"] is not None]
    assert f1.common_stats.num_non_missing == len(structs)  # counted per struct value, not per row
    assert f1.mean == pytest.approx(sum(c["f1"] for c in structs) / len(structs), rel=1e-12)

    console = Console(record=True, width=200)
    console.print(*render_artifact(statistics))
    assert "c.f1" in console.export_text()
