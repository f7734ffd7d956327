"""Settings are never dropped: each component hands its transform's whole options object to the
transform (ReadOptions → IngestExamples, StatsOptions → GenerateStatistics, MetricsConfig →
ComputeMetrics), and the settings that used to be lost on the way (ExampleGen's delimiter,
StatisticsGen's epsilon, the Evaluator's num_thresholds) change the result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from model_fixtures import PenguinData, PenguinModel, write_examples
from pipelines.negative_values import NegativeValues

from beam_ml import Examples, Output, Pipeline, Statistics, component
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.transforms.options import MetricsConfig, ReadOptions, StatsOptions


def run(tmp_path, *nodes):
    result = LocalDagRunner().run(Pipeline("options", str(tmp_path / "root"), list(nodes)))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result


def spy(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` (a PTransform taking its options first) by a subclass recording them."""
    seen: list = []
    original = getattr(module, name)

    class Recording(original):
        def __init__(self, *args, **kwargs):
            options = [a for a in (*args, *kwargs.values()) if dataclasses.is_dataclass(a)]
            seen.extend(options)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(module, name, Recording)
    return seen


# ----------------------------------------------------------------------------- ExampleGen


def test_example_gen_reads_tsv_with_delimiter(tmp_path):
    path = tmp_path / "notes.tsv"
    path.write_text("name\tcount\tnote\na\t1\tx, y\nb\t2\tplain\nc\t3\t\"q\"\n")
    result = run(tmp_path, ExampleGen(input_path=str(path), format="csv", delimiter="\t", splits={"all": 1}))
    examples = result.outputs("ExampleGen")["examples"]
    table = Examples(examples.uri, examples.properties).head("all", 10).sort_by("name")
    assert table.column_names == ["name", "count", "note"]
    assert table.to_pydict() == {"name": ["a", "b", "c"], "count": [1, 2, 3], "note": ["x, y", "plain", "q"]}


def test_read_options_reach_the_ingestion_transform_whole(tmp_path, monkeypatch):
    import beam_ml.transforms.ingestion as ingestion

    seen = spy(monkeypatch, ingestion, "IngestExamples")
    path = tmp_path / "rows.tsv"
    path.write_text("k\tv\n" + "".join(f"{i}\t{'NA' if i % 5 == 0 else i * 0.5}\n" for i in range(200)))
    given = ReadOptions(
        format="csv", delimiter="\t", null_values=("", "NA"), newlines_in_values=False, split_bytes=1 << 10,
        infer_bytes=1 << 9, block_bytes=1 << 11, batch_rows=64, max_mixed_fraction=0.2,
    )
    defaults = ReadOptions(format="csv")
    changed = {f.name for f in dataclasses.fields(ReadOptions) if getattr(given, f.name) != getattr(defaults, f.name)}
    assert changed >= {"delimiter", "null_values", "split_bytes", "infer_bytes", "block_bytes", "batch_rows",
                       "max_mixed_fraction", "newlines_in_values"}
    result = run(tmp_path, ExampleGen(input_path=str(path), read_options=given, splits={"all": 1}))
    read = [options for options in seen if isinstance(options, ReadOptions)]
    assert read == [given]
    examples = result.outputs("ExampleGen")["examples"]
    table = Examples(examples.uri, examples.properties).head("all", 1000)
    assert table.num_rows == 200 and table.column("v").null_count == 40  # "NA" read as missing


def test_example_gen_parameters_replace_the_read_options_fields(tmp_path, monkeypatch):
    import beam_ml.transforms.ingestion as ingestion

    seen = spy(monkeypatch, ingestion, "IngestExamples")
    path = tmp_path / "rows.csv"
    path.write_text("k;v\n1;2\n")
    base = ReadOptions(format="csv", batch_rows=16, delimiter="\t")
    run(tmp_path, ExampleGen(input_path=str(path), read_options=base, delimiter=";", splits={"all": 1}))
    assert [o for o in seen if isinstance(o, ReadOptions)] == [dataclasses.replace(base, delimiter=";")]


# ----------------------------------------------------------------------------- StatisticsGen


@component
def UniformRows(examples: Output[Examples], *, rows: int = 50_000) -> None:
    """One split ``all`` of uniform random floats ``x`` and a string ``s`` (seeded)."""
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.random(rows), "s": rng.choice(["a", "b", "c"], rows), "w": rng.random(rows) + 0.5})
    write_examples(examples.uri, {"all": table}, rows_per_file=rows // 4)
    examples.properties.update(splits=["all"], split_rows={"all": rows})


def quantile_rank_error(statistics, x: np.ndarray) -> float:
    """The largest distance between a quantiles-histogram boundary's true rank and its nominal rank."""
    [feature] = [f for f in Statistics(statistics.uri).load("all").datasets[0].features if f.path.step == ["x"]]
    [quantiles] = [h for h in feature.num_stats.histograms if h.type == h.QUANTILES]
    bounds = [bucket.high_value for bucket in quantiles.buckets][:-1]
    return max(abs(float(np.mean(x <= bound)) - (i + 1) / len(quantiles.buckets)) for i, bound in enumerate(bounds))


def test_statistics_gen_epsilon_changes_the_quantiles_error(tmp_path):
    data = UniformRows()
    coarse = StatisticsGen(examples=data.outputs.examples, stats_options=StatsOptions(epsilon=0.3)).with_id("Coarse")
    fine = StatisticsGen(examples=data.outputs.examples, stats_options=StatsOptions(epsilon=0.001)).with_id("Fine")
    result = run(tmp_path, data, coarse, fine)
    x = np.random.default_rng(0).random(50_000)
    coarse_error = quantile_rank_error(result.outputs("Coarse")["statistics"], x)
    fine_error = quantile_rank_error(result.outputs("Fine")["statistics"], x)
    assert fine_error <= 0.001 < coarse_error <= 0.3
    assert coarse_error > 10 * fine_error


def test_stats_options_reach_the_statistics_transform_whole(tmp_path, monkeypatch):
    import beam_ml.transforms.statistics as statistics

    seen = spy(monkeypatch, statistics, "GenerateStatistics")
    given = StatsOptions(
        sample_rate=0.5, seed=7, num_top_values=3, num_rank_histogram_buckets=50, num_values_histogram_buckets=4,
        num_histogram_buckets=6, num_quantiles_histogram_buckets=5, epsilon=0.05, frequency_threshold=2,
        weighted_frequency_threshold=3.0, weight_feature="w", slice_features=("s",),
        generators=(NegativeValues(),),
    )
    defaults = StatsOptions()
    unchanged = {f.name for f in dataclasses.fields(StatsOptions) if getattr(given, f.name) == getattr(defaults, f.name)}
    assert unchanged <= {"schema"}, unchanged
    data = UniformRows(rows=2000)
    result = run(tmp_path, data, StatisticsGen(examples=data.outputs.examples, stats_options=given))
    [reached] = [o for o in seen if isinstance(o, StatsOptions)]
    assert dataclasses.replace(reached, generators=()) == dataclasses.replace(given, generators=())
    assert [type(g) for g in reached.generators] == [NegativeValues]
    statistics = result.outputs("StatisticsGen")["statistics"]
    assert statistics.properties["sample_rate"] == 0.5
    datasets = Statistics(statistics.uri).load("all").datasets
    assert sorted(d.name for d in datasets) == ["All Examples", "s_a", "s_b", "s_c"]


def test_a_users_statistics_generator_runs_in_statistics_gen_and_its_runs_are_cached(tmp_path):
    """A generator is part of the cache key by its class and settings (not its address in memory)."""
    from pipelines.negative_values import NAME

    def pipeline(*generators):
        data = UniformRows(rows=2000)
        stats = StatisticsGen(examples=data.outputs.examples, stats_options=StatsOptions(generators=generators))
        return data, stats

    first = run(tmp_path, *pipeline(NegativeValues()))
    [dataset] = Statistics(first.outputs("StatisticsGen")["statistics"].uri).load("all").datasets
    fractions = {f.path.step[0]: s.num for f in dataset.features for s in f.custom_stats if s.name == NAME}
    assert fractions == {"x": 0.0, "w": 0.0}  # uniform in [0, 1) and [0.5, 1.5)
    assert run(tmp_path, *pipeline(NegativeValues())).ran() == []
    assert run(tmp_path, *pipeline()).ran() == ["StatisticsGen"]


# ----------------------------------------------------------------------------- Evaluator


def test_metrics_config_reaches_the_metrics_transform_and_num_thresholds_counts(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    import beam_ml.transforms.metrics as metrics
    from beam_ml.components.evaluator import Evaluator, load_metrics

    seen = spy(monkeypatch, metrics, "ComputeMetrics")
    data, model = PenguinData(), PenguinModel()
    given = MetricsConfig(task="multiclass", num_thresholds=3, decision_threshold=0.3, slices=((), ("island",)))
    common = {"examples": data.outputs.examples, "model": model.outputs.model, "label": "species",
              "task": "multiclass"}
    coarse = Evaluator(metrics_config=given, **common).with_id("Coarse")
    default = Evaluator(**common).with_id("Default")
    result = run(tmp_path, data, model, coarse, default)
    configs = [o for o in seen if isinstance(o, MetricsConfig)]
    assert dataclasses.replace(given, label_column="species") in configs
    assert any(c.num_thresholds == MetricsConfig(task="multiclass").num_thresholds for c in configs)
    coarse_metrics = load_metrics(result.outputs("Coarse")["evaluation"])
    default_metrics = load_metrics(result.outputs("Default")["evaluation"])
    assert "island=Dream" in coarse_metrics and "island=Dream" not in default_metrics
    assert abs(coarse_metrics["Overall"]["auc_roc"] - default_metrics["Overall"]["auc_roc"]) > 1e-3


def test_evaluator_rejects_a_metrics_config_for_another_task(tmp_path):
    pytest.importorskip("tensorflow")
    from beam_ml.components.evaluator import Evaluator

    data, model = PenguinData(), PenguinModel()
    node = Evaluator(examples=data.outputs.examples, model=model.outputs.model, label="species", task="multiclass",
                     metrics_config=MetricsConfig(task="binary"))
    result = LocalDagRunner().run(Pipeline("bad", str(tmp_path / "root"), [data, model, node]))
    assert result.state == "FAILED"
    assert "metrics_config has task 'binary'" in str(result.failed.error)
