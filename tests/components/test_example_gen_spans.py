"""ExampleGen on span patterns through the runner: which span it reads, what it records, the cache,
and the PreviousSpan resolver."""

from __future__ import annotations

from pathlib import Path

from beam_ml import Examples, Input, Output, Pipeline, Statistics, component
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.display import summarize
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.resolvers import LatestArtifact, PreviousSpan


def _deliver(data: Path, span: int, rows: int) -> None:
    directory = data / f"span-{span}"
    directory.mkdir(parents=True)
    lines = ["x,y", *(f"{span * 1000 + i},{i % 7}" for i in range(rows))]
    (directory / "data.csv").write_text("\n".join(lines) + "\n")


@component
def CompareSpans(examples: Input[Examples], report: Output[Statistics], previous: Input[Examples] | None = None) -> None:
    """Records which spans it was given: the consumer of the PreviousSpan resolver."""
    report.properties.update(span=examples.properties["span"],
                             previous_span=None if previous is None else previous.properties["span"])


def _pipeline(root: Path, data: Path, **selection) -> Pipeline:
    gen = ExampleGen(input_path=str(data / "span-{SPAN}" / "*.csv"), **selection)
    stats = StatisticsGen(examples=gen.outputs.examples)
    previous = PreviousSpan(examples=gen.outputs.examples)
    compare = CompareSpans(examples=gen.outputs.examples, previous=previous.outputs.examples)
    return Pipeline("spans", str(root), [gen, stats, previous, compare])


def _run(pipeline: Pipeline):
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result


def test_latest_span_new_span_reruns_unchanged_span_is_cached(tmp_path):
    data, root = tmp_path / "data", tmp_path / "root"
    _deliver(data, 1, 30)
    _deliver(data, 2, 60)

    first = _run(_pipeline(root, data))
    examples = first.outputs("ExampleGen")["examples"]
    assert (examples.properties["span"], examples.properties["spans"], examples.properties["version"]) == (2, [2], None)
    assert sum(examples.properties["split_rows"].values()) == 60  # span 2 alone
    assert summarize(examples).startswith("span 2: rows: train ")
    assert first.outputs("CompareSpans")["report"].properties == {"span": 2, "previous_span": None}  # span 1 never read

    assert _run(_pipeline(root, data)).ran() == []  # unchanged span: cached

    _deliver(data, 3, 90)
    third = _run(_pipeline(root, data))
    assert {"ExampleGen", "StatisticsGen", "CompareSpans"} <= set(third.ran())
    assert third.outputs("ExampleGen")["examples"].properties["span"] == 3
    assert sum(third.outputs("ExampleGen")["examples"].properties["split_rows"].values()) == 90
    # the previous span's Examples are a recorded input of their consumer
    assert third.outputs("CompareSpans")["report"].properties == {"span": 3, "previous_span": 2}
    assert third.nodes["CompareSpans"].inputs["previous"].id == examples.id

    rolling = _run(_pipeline(root, data, rolling=2))
    read = rolling.outputs("ExampleGen")["examples"].properties
    assert (read["span"], read["spans"]) == (3, [2, 3])
    assert sum(read["split_rows"].values()) == 150  # spans 2 and 3
    assert summarize(rolling.outputs("ExampleGen")["examples"]).startswith("spans 2-3: rows: ")

    pinned = _run(_pipeline(root, data, span=1)).outputs("ExampleGen")["examples"].properties
    assert (pinned["span"], sum(pinned["split_rows"].values())) == (1, 30)

    latest = LatestArtifact(Examples, where={"span": 2})
    looked_up = _run(Pipeline("spans", str(root), [latest, CompareSpans(examples=latest.outputs.artifact)]))
    assert looked_up.nodes["LatestExamples"].state == "RESOLVED"
    assert looked_up.nodes["CompareSpans"].inputs["examples"].id == examples.id


def test_a_pattern_matching_no_span_fails_naming_it(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = LocalDagRunner().run(_pipeline(tmp_path / "root", data))
    assert result.state == "FAILED" and result.failed.node_id == "ExampleGen"
    assert str(data / "span-{SPAN}" / "*.csv") in result.failed.error


def test_per_split_span_patterns_read_the_same_spans(tmp_path):
    data = tmp_path / "data"
    for span in (1, 2):
        for split, rows in (("train", 20 * span), ("eval", 5 * span)):
            directory = data / f"span-{span}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{split}.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(rows)))
    gen = ExampleGen(input_path={split: str(data / "span-{SPAN}" / f"{split}.csv") for split in ("train", "eval")},
                     rolling=2)
    result = _run(Pipeline("spans", str(tmp_path / "root"), [gen]))
    props = result.outputs("ExampleGen")["examples"].properties
    assert props["spans"] == [1, 2] and props["split_rows"] == {"train": 60, "eval": 15}
    assert props["input_pattern"]["eval"] == str(data / "span-{SPAN}" / "eval.csv")
