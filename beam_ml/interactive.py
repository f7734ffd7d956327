"""Notebooks: run components one at a time and see their results inline.

    from beam_ml.interactive import InteractiveContext
    ctx = InteractiveContext(pipeline_root="pipelines/penguin-notebook")
    example_gen = ExampleGen(input_path=...)
    ctx.run(example_gen)
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    ctx.run(statistics_gen)
    ctx.show(statistics_gen.outputs.statistics)

``ctx.run(component)`` runs the component through the same runner as
``beam-ml run``: a run of the pipeline made of the component and the
components it depends on (run earlier in this context), so those are served
from cache and the run is recorded in the store like any other (``beam-ml
ui`` and ``report`` show it). ``ctx.show(...)`` returns the views of
``beam_ml.views``, which a notebook displays through ``_repr_html_``.

Components run with Beam's notebook detection turned off (``_beam_as_in_a_script``):
inside IPython, Beam relabels every transform through its interactive runner
package, which fails to import next to pandas 3 (``apache_beam.dataframe``
reads ``pandas.DataFrame.first``, removed in pandas 3), and would keep
pipelines off Prism. A component runs the same in a notebook as in ``beam-ml run``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

from beam_ml.dsl import Channel, Node, Pipeline
from beam_ml.metadata.store import ArtifactRecord, MetadataStore, sqlite_url_for_root
from beam_ml.views.base import View, page


class InteractiveRun:
    """What ``ctx.run`` returns: the component's state and outputs; shows the run's view in a notebook."""

    def __init__(self, context: InteractiveContext, node_id: str, result: Any) -> None:
        self.context = context
        self.run_id = result.run_id  # the store's key (run_view takes it)
        self.run_number = result.run_number  # what people read: "run 3"
        self.node = result.nodes[node_id]
        self.state = self.node.state
        self.outputs: dict[str, ArtifactRecord] = dict(self.node.outputs)

    def __repr__(self) -> str:
        outs = ", ".join(f"{name}: {a.type_name} {a.id}" for name, a in self.outputs.items())
        return f"{self.node.node_id} {self.state} in run {self.run_number} ({outs})"

    def _repr_html_(self) -> str:
        from beam_ml.views.execution import execution_view

        with self.context.store() as store:
            if self.node.execution is None:
                return f"<p>{self.node.node_id}: {self.state} {self.node.error or ''}</p>"
            view = execution_view(store, self.node.execution.id, with_log=self.state == "FAILED")
            return page(view.title, [view], standalone_fragment=True)


class InteractiveContext:
    """Runs components one by one under ``pipeline_root`` and renders their artifacts."""

    def __init__(self, pipeline_root: str, pipeline_name: str = "interactive", metadata_url: str | None = None,
                 beam_args: tuple[str, ...] = ()) -> None:
        self.pipeline_root = os.path.abspath(pipeline_root)
        self.pipeline_name = pipeline_name
        self.metadata_url = metadata_url or sqlite_url_for_root(self.pipeline_root)
        self.beam_args = tuple(beam_args)
        self._nodes: dict[str, Node] = {}
        self._outputs: dict[str, dict[str, ArtifactRecord]] = {}

    def store(self) -> MetadataStore:
        return MetadataStore(self.metadata_url)

    def run(self, component: Node) -> InteractiveRun:
        """Run ``component`` (its upstream components from cache) as a recorded run; raises if it failed."""
        from beam_ml.orchestration.runner import LocalDagRunner

        missing = sorted(component.upstream_ids - set(self._nodes))
        if missing:
            raise ValueError(f"{component.id} reads outputs of {', '.join(missing)}: ctx.run() those first")
        self._nodes[component.id] = component
        pipeline = Pipeline(self.pipeline_name, self.pipeline_root, self._closure(component), self.metadata_url)
        with _beam_as_in_a_script():
            result = LocalDagRunner(beam_args=self.beam_args, metadata_url=self.metadata_url).run(pipeline)
        for node_id, node in result.nodes.items():
            if node.outputs:
                self._outputs[node_id] = dict(node.outputs)
        run = InteractiveRun(self, component.id, result)
        if result.failed is not None:
            raise RuntimeError(f"{result.failed.node_id} failed in run {result.run_number}: {result.failed.error}")
        return run

    def _closure(self, component: Node) -> list[Node]:
        needed, pending = {}, [component]
        while pending:
            node = pending.pop()
            if node.id not in needed:
                needed[node.id] = node
                pending.extend(self._nodes[i] for i in node.upstream_ids)
        return [node for node_id, node in self._nodes.items() if node_id in needed]

    def artifact(self, item: Any) -> list[ArtifactRecord]:
        """The artifacts ``item`` stands for: an ArtifactRecord, an output channel, a component or an ``InteractiveRun``."""
        if isinstance(item, ArtifactRecord):
            return [item]
        if isinstance(item, InteractiveRun):
            return list(item.outputs.values())
        if isinstance(item, Channel):
            outputs = self._outputs.get(item.producer_id)
            if outputs is None:
                raise ValueError(f"{item.producer_id} has not run in this context: ctx.run() it first")
            return [outputs[item.output]]
        if isinstance(item, Node):
            if item.id not in self._outputs:
                raise ValueError(f"{item.id} has not run in this context: ctx.run() it first")
            return list(self._outputs[item.id].values())
        raise TypeError(f"ctx.show() takes an artifact, an output channel, a component or a run result, not {type(item).__name__}")

    def show(self, item: Any) -> View:
        """The view of ``item`` (several artifacts: one view holding all of them), for the notebook to display."""
        from markupsafe import Markup

        from beam_ml.views.artifacts import artifact_view

        with self.store() as store:
            views = [artifact_view(store.get_artifact(a.id), store) for a in self.artifact(item)]
        if len(views) == 1:
            return views[0]
        html = Markup("").join(Markup("<h3>{}</h3>").format(v.title) + v.html for v in views)
        return View(", ".join(v.title for v in views), html)

    def compare(self, *items: Any) -> View:
        """Two or more Statistics (or ModelEvaluations) side by side."""
        from beam_ml.views.evaluation import compare_evaluations
        from beam_ml.views.statistics import compare_statistics

        with self.store() as store:
            artifacts = [store.get_artifact(a.id) for item in items for a in self.artifact(item)]
            kinds = {a.type_name for a in artifacts}
            if kinds == {"Statistics"}:
                return compare_statistics(artifacts)
            if kinds == {"ModelEvaluation"}:
                return compare_evaluations(artifacts)
        raise TypeError(f"compare takes Statistics or ModelEvaluations of one type, got {sorted(kinds)}")


@contextlib.contextmanager
def _beam_as_in_a_script() -> Iterator[None]:
    """Beam's ``is_in_ipython`` answers False, wherever Beam imported it (see the module's docstring)."""
    import apache_beam.pipeline
    import apache_beam.runners.direct.direct_runner
    import apache_beam.utils.interactive_utils

    with contextlib.ExitStack() as stack:
        for module in (apache_beam.utils.interactive_utils, apache_beam.pipeline, apache_beam.runners.direct.direct_runner):
            stack.enter_context(mock.patch.object(module, "is_in_ipython", lambda: False))
        yield
