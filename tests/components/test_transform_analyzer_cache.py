"""Transform reuses tf.Transform's analyzer cache across the overlapping spans of a rolling window.

Real components through the runner on penguin spans: ExampleGen (rolling=2), ImportSchema
(a schema inferred once from all the penguins, as a curated schema would be), the
LatestTransformCache resolver, Transform.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from beam_ml import Pipeline, TransformCache, TransformGraph
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.schema_gen import ImportSchema
from beam_ml.components.transform import Transform
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.resolvers import LatestArtifact
from beam_ml.transforms.schema import infer_schema, write_schema
from beam_ml.transforms.statistics import generate_statistics_in_memory

MODULES = Path(__file__).resolve().parent / "modules"
PENGUIN_TRANSFORM = MODULES / "penguin_transform.py"
ROWS_PER_SPAN = 115


def _penguins_csv() -> Path:
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def _deliver(data: Path, span: int) -> None:
    """Span N: the penguins' rows (N-1)*115 .. N*115, as CSV."""
    header, *rows = _penguins_csv().read_text().splitlines()
    directory = data / f"span-{span}"
    directory.mkdir(parents=True)
    chosen = rows[(span - 1) * ROWS_PER_SPAN : span * ROWS_PER_SPAN]
    (directory / "data.csv").write_text("\n".join([header, *chosen]) + "\n")


def _schema_file(directory: Path) -> Path:
    """Written once: the same file, so ImportSchema is cached after the first run."""
    import pyarrow.csv as pcsv

    path = directory / "schema.pbtxt"
    if path.is_file():
        return path
    table = pcsv.read_csv(_penguins_csv(), convert_options=pcsv.ConvertOptions(null_values=["NA"],
                                                                              strings_can_be_null=True))
    write_schema(infer_schema(generate_statistics_in_memory(table), infer_feature_shape=False), str(path))
    return path


def _pipeline(root: Path, data: Path, module: Path, *, cached: bool = True) -> Pipeline:
    gen = ExampleGen(input_path=str(data / "span-{SPAN}" / "*.csv"), rolling=2, null_values=["NA"])
    schema = ImportSchema(schema_file=str(_schema_file(root.parent)))
    cache = LatestArtifact(TransformCache)
    transform = Transform(examples=gen.outputs.examples, schema=schema.outputs.schema, module_file=str(module),
                          analyzer_cache=cache.outputs.artifact if cached else None)
    return Pipeline("tfcache", str(root), [gen, schema, cache, transform])


def _run(pipeline: Pipeline):
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result


def _split(uri: str, split: str) -> pa.Table:
    return pq.read_table(os.path.join(uri, f"Split-{split}"))


def _sorted_rows(table: pa.Table, leave_out: str | None = None) -> dict[str, np.ndarray]:
    """Columns of rows sorted by every column but ``leave_out``, which is dropped."""
    if leave_out is not None:
        table = table.drop_columns([leave_out])
    order = pc.sort_indices(table, [(name, "ascending") for name in sorted(table.column_names)])
    table = table.take(order)
    return {name: table.column(name).to_numpy() for name in sorted(table.column_names)}


def test_a_rolling_window_reads_the_shared_span_analysis_from_cache_with_identical_outputs(tmp_path):
    data, root = tmp_path / "data", tmp_path / "root"
    _deliver(data, 1)
    _deliver(data, 2)
    first = _run(_pipeline(root, data, PENGUIN_TRANSFORM))
    first_cache = first.outputs("Transform")["updated_analyzer_cache"]
    assert first.nodes["Transform"].inputs.get("analyzer_cache") is None  # no cache yet: an empty resolution
    span_keys = {key.split("-")[2]: key for key in first_cache.properties["analyzed"]}
    assert sorted(span_keys) == ["1", "2"] and first_cache.properties["from_cache"] == []

    _deliver(data, 3)
    second = _run(_pipeline(root, data, PENGUIN_TRANSFORM))
    assert second.outputs("ExampleGen")["examples"].properties["spans"] == [2, 3]
    # the previous Transform's cache is a recorded input of this one
    assert second.nodes["Transform"].inputs["analyzer_cache"].id == first_cache.id
    cache = second.outputs("Transform")["updated_analyzer_cache"]
    assert cache.properties["from_cache"] == [span_keys["2"]]  # span 2's analysis came from the cache
    assert [key.split("-")[2] for key in cache.properties["analyzed"]] == ["3"]  # only span 3 was read for it
    index = TransformCache(cache.uri).index()
    assert set(index) == {span_keys["2"], *cache.properties["analyzed"]}  # span 2 carried forward, span 1 dropped
    assert index[span_keys["2"]] == TransformCache(first_cache.uri).index()[span_keys["2"]]

    # The same window again: the cache picked now is the one just written, so Transform runs, with
    # every span's analysis from the cache and none read for it.
    again = _run(_pipeline(root, data, PENGUIN_TRANSFORM))
    assert again.ran() == ["Transform"]
    again_cache = again.outputs("Transform")["updated_analyzer_cache"].properties
    assert (again_cache["from_cache"], again_cache["analyzed"]) == (sorted(index), [])
    assert again.outputs("Transform")["transform_graph"].fingerprint == \
        second.outputs("Transform")["transform_graph"].fingerprint

    # the same window without a cache: the same transform graph and the same transformed rows
    uncached = _run(_pipeline(root, data, PENGUIN_TRANSFORM, cached=False))
    assert uncached.ran() == ["Transform"]
    assert uncached.outputs("Transform")["updated_analyzer_cache"].properties["from_cache"] == []
    with_cache, without = (run.outputs("Transform") for run in (second, uncached))
    assert TransformGraph.content_fingerprint(with_cache["transform_graph"].uri) == \
        TransformGraph.content_fingerprint(without["transform_graph"].uri)
    for split in ("train", "eval"):
        got = _sorted_rows(_split(with_cache["transformed_examples"].uri, split))
        want = _sorted_rows(_split(without["transformed_examples"].uri, split))
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{split}.{name}")

    # A changed preprocessing_fn (body mass scaled to [0, 1], not z-scores) finds no entry for that
    # analyzer in the latest cache (the uncached run's, which covers spans 2 and 3): both spans are
    # read and analyzed again, and the result is right.
    changed = tmp_path / "changed_transform.py"
    changed.write_text(PENGUIN_TRANSFORM.read_text().replace(
        "    return outputs\n", "    outputs['body_mass_g_xf'] = tft.scale_to_0_1("
        "tf.cast(_dense(inputs['body_mass_g'], 0), tf.float32))\n    return outputs\n"))
    third = _run(_pipeline(root, data, changed))
    assert third.nodes["Transform"].inputs["analyzer_cache"].id == \
        uncached.outputs("Transform")["updated_analyzer_cache"].id
    assert third.outputs("Transform")["updated_analyzer_cache"].properties["from_cache"] == []
    examples = third.outputs("ExampleGen")["examples"].uri
    transformed = third.outputs("Transform")["transformed_examples"].uri
    train = _body_mass(_split(examples, "train"))
    for split in ("train", "eval"):
        got = np.sort(_split(transformed, split).column("body_mass_g_xf").to_numpy())
        want = np.sort((_body_mass(_split(examples, split)) - train.min()) / (train.max() - train.min()))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # the analyzers the change left alone give what they gave before (the same island vocabulary)
    before = _sorted_rows(_split(with_cache["transformed_examples"].uri, "train"), leave_out="body_mass_g_xf")
    after = _sorted_rows(_split(transformed, "train"), leave_out="body_mass_g_xf")
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def _body_mass(table: pa.Table) -> np.ndarray:
    """Missing → 0, as the preprocessing_fn does."""
    return np.nan_to_num(table.column("body_mass_g").to_numpy(zero_copy_only=False).astype(np.float64), nan=0.0)
