"""``beam-ml ui``: a read-only local web app over a metadata store (Starlette, uvicorn, Jinja2).

Pipelines → runs → executions (parameters, duration, cache key, error and log)
→ artifacts (the views of ``beam_ml.views``) → lineage; and any two
Statistics or ModelEvaluations side by side. It only reads: nothing in the
store or under the pipeline root changes. It binds 127.0.0.1 unless told
otherwise, and every page inlines what it needs (no network). Pages name a
run as people do, "run 3 of penguin" (numbered per pipeline); its URL keeps
the store-wide id (``/runs/ID``), which stays unique across pipelines.
"""

from __future__ import annotations

from collections import Counter

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from beam_ml.metadata.store import MetadataStore
from beam_ml.views.artifacts import artifact_view
from beam_ml.views.base import View, page, render
from beam_ml.views.evaluation import compare_evaluations
from beam_ml.views.execution import execution_view
from beam_ml.views.lineage import lineage_view
from beam_ml.views.run import Links, run_view
from beam_ml.views.statistics import compare_statistics

#: Artifact types two of which can be shown side by side.
COMPARABLE = ("Statistics", "ModelEvaluation")


class AppLinks(Links):
    """Links between the app's pages."""

    def execution(self, execution_id: int) -> str:
        return f"/executions/{execution_id}"

    def artifact(self, artifact_id: int) -> str:
        return f"/artifacts/{artifact_id}"

    def lineage(self, artifact_id: int) -> str:
        return f"/artifacts/{artifact_id}/lineage"


LINKS = AppLinks()


def create_app(store: MetadataStore) -> Starlette:
    """The web app over ``store`` (the caller owns and closes the store)."""

    def respond(title: str, views: list[View], crumbs: list[tuple[str, str]]) -> HTMLResponse:
        nav = Markup(" › ").join(Markup('<a href="{}">{}</a>').format(href, text) for text, href in crumbs)
        return HTMLResponse(page(title, views, nav=nav))

    def found(fn, *args):
        try:
            return fn(*args)
        except KeyError as error:
            raise HTTPException(404, str(error.args[0])) from error

    def home(request: Request) -> HTMLResponse:
        runs = store.list_runs()
        counts = Counter(r.pipeline for r in runs)
        latest = {}
        for r in runs:
            latest.setdefault(r.pipeline, r)
        html = render("ui_pipelines.html", pipelines=[(name, counts[name], latest[name]) for name in counts])
        return respond("pipelines", [View("pipelines", html)], [("pipelines", "/")])

    def pipeline(request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        runs = store.list_runs(name)
        if not runs:
            raise HTTPException(404, f"no runs of pipeline {name!r}")
        rows = [(r, store.executions_of_run(r.id)) for r in runs]
        html = render("ui_runs.html", rows=rows)
        return respond(f"pipeline {name}", [View("runs", html)], [("pipelines", "/"), (name, f"/pipelines/{name}")])

    def run(request: Request) -> HTMLResponse:
        record = found(store.get_run, request.path_params["run_id"])
        return respond(
            record.label, [run_view(store, record.id, LINKS)],
            [("pipelines", "/"), (record.pipeline, f"/pipelines/{record.pipeline}"), (f"run {record.number}", f"/runs/{record.id}")],
        )

    def execution(request: Request) -> HTMLResponse:
        record = found(store.get_execution, request.path_params["execution_id"])
        r = store.get_run(record.run_id)
        return respond(
            f"{record.component_id}: execution {record.id}", [execution_view(store, record.id, LINKS)],
            [("pipelines", "/"), (r.pipeline, f"/pipelines/{r.pipeline}"), (f"run {r.number}", f"/runs/{r.id}"),
             (f"execution {record.id}", f"/executions/{record.id}")],
        )

    def _artifact_crumbs(artifact_id: int) -> list[tuple[str, str]]:
        crumbs = [("pipelines", "/")]
        producer = store.producer_of(artifact_id)
        if producer is not None:
            r = store.get_run(producer.run_id)
            crumbs += [(r.pipeline, f"/pipelines/{r.pipeline}"), (f"run {r.number}", f"/runs/{r.id}"),
                       (f"execution {producer.id}", f"/executions/{producer.id}")]
        return [*crumbs, (f"artifact {artifact_id}", f"/artifacts/{artifact_id}")]

    def artifact(request: Request) -> HTMLResponse:
        record = found(store.get_artifact, request.path_params["artifact_id"])
        others = []
        if record.type_name in COMPARABLE:
            others = [a for a in store.artifacts_in_state("LIVE") if a.type_name == record.type_name and a.id != record.id]
        producer = store.producer_of(record.id)
        produced_in = None if producer is None else store.get_run(producer.run_id)
        about = render("ui_artifact.html", a=record, producer=producer, produced_in=produced_in, links=LINKS,
                       others=others[-20:])
        return respond(
            f"{record.type_name} {record.id}", [View("artifact", about), artifact_view(record, store)],
            _artifact_crumbs(record.id),
        )

    def lineage(request: Request) -> HTMLResponse:
        record = found(store.get_artifact, request.path_params["artifact_id"])
        return respond(
            f"lineage of {record.type_name} {record.id}", [lineage_view(store, record.id, LINKS)],
            [*_artifact_crumbs(record.id), ("lineage", f"/artifacts/{record.id}/lineage")],
        )

    def compare(request: Request) -> HTMLResponse:
        try:
            ids = [int(x) for x in request.query_params.get("ids", "").split(",") if x]
        except ValueError as error:
            raise HTTPException(400, "ids must be artifact ids separated by commas, e.g. ?ids=3,17") from error
        artifacts = [found(store.get_artifact, i) for i in ids]
        kinds = {a.type_name for a in artifacts}
        if len(artifacts) < 2 or len(kinds) != 1 or not kinds <= set(COMPARABLE):
            raise HTTPException(400, f"compare two or more artifacts of one type among {', '.join(COMPARABLE)}")
        view = compare_statistics(artifacts) if kinds == {"Statistics"} else compare_evaluations(artifacts)
        return respond(view.title, [view], [("pipelines", "/"), ("compare", request.url.path + "?" + request.url.query)])

    routes = [
        Route("/", home),
        Route("/pipelines/{name}", pipeline),
        Route("/runs/{run_id:int}", run),
        Route("/executions/{execution_id:int}", execution),
        Route("/artifacts/{artifact_id:int}", artifact),
        Route("/artifacts/{artifact_id:int}/lineage", lineage),
        Route("/compare", compare),
    ]
    return Starlette(routes=routes)


def serve(store: MetadataStore, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the app until interrupted."""
    import uvicorn

    print(f"beam-ml ui: http://{host}:{port}/ (read-only; Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(store), host=host, port=port, log_level="warning")
