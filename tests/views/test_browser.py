"""The report and the web app in a real browser: Playwright driving the system Chromium.

Checks what only a browser sees: the pages load with no console error and no
request leaves the machine, every Plotly chart drew data points, and the
links lead run → execution → artifact → lineage. Screenshots are kept in the
test's temporary directory. Report generation time and size (penguin) and the
run page's load time are printed (-s shows them); no timed assertion.
"""

from __future__ import annotations

import socket
import threading
import time

import chromium_browser
import pytest

from beam_ml.run import main

#: Per chart: its traces' point count and the SVG marks Plotly drew (points, bars, lines, heatmap images).
CHART_POINTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    id: el.id,
    points: el.data.reduce((n, t) => n + ((t.x || []).filter(v => v !== null).length), 0),
    marks: el.querySelectorAll('.point, .bars path, .scatterlayer .js-line, .hm image').length,
}))"""


@pytest.fixture(scope="module")
def browser():
    try:
        path = chromium_browser.chromium_path()
    except chromium_browser.ChromiumUnavailable as error:
        pytest.skip(f"no Chromium for the browser tests: {error}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Watched:
    """A page whose console errors, page errors and off-machine requests are recorded."""

    def __init__(self, browser, allowed_prefixes: tuple[str, ...]) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: None if r.url.startswith(allowed_prefixes) else self.external.append(r.url))

    def charts(self) -> list[dict]:
        self.page.wait_for_load_state("load")
        self.page.wait_for_function("() => typeof window.Plotly !== 'undefined'")
        charts = self.page.evaluate(CHART_POINTS)
        assert charts, "no chart on the page"
        for chart in charts:
            assert chart["points"] > 0 and chart["marks"] > 0, chart
        return charts


def test_report_of_the_penguin_run_in_chromium(browser, penguin_run, tmp_path):
    out = tmp_path / "report.html"
    started = time.perf_counter()
    assert main(["report", str(penguin_run.run_number), "--pipeline", penguin_run.pipeline, "--out", str(out), "--pipeline-root", str(penguin_run.root)]) == 0
    took = time.perf_counter() - started
    print(f"\npenguin report: {took:.2f}s, {out.stat().st_size / 1e6:.2f} MB")

    watched = Watched(browser, ("file://", "data:", "about:"))
    watched.page.goto(out.as_uri(), wait_until="load")
    charts = watched.charts()
    # the run graph, the timeline, a histogram or bar chart per feature, the evaluation, at least
    assert len(charts) >= 10
    watched.page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    assert watched.errors == [] and watched.external == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served_ui(penguin_run):
    import uvicorn

    from beam_ml.ui import create_app

    port = _free_port()
    with penguin_run.store() as store:
        server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the UI server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(10)


def test_ui_navigation_in_chromium(browser, penguin_run, served_ui, tmp_path):
    watched = Watched(browser, (served_ui, "data:", "about:"))
    page = watched.page
    page.goto(served_ui + "/")
    page.click("table.pipelines a:has-text('penguin')")
    page.screenshot(path=str(tmp_path / "runs.png"))
    started = time.perf_counter()
    page.click(f'a.run-link[href="/runs/{penguin_run.run_id}"]')
    page.wait_for_load_state("load")
    watched.charts()
    print(f"\nUI run page load: {time.perf_counter() - started:.2f}s")
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)

    page.click("table.executions tr:has-text('StatisticsGen') td:nth-child(2) a")
    assert page.locator("h1").inner_text().startswith("StatisticsGen: execution")
    assert page.locator("pre.log").count() == 1
    page.screenshot(path=str(tmp_path / "execution.png"), full_page=True)

    page.click("a.artifact-link:has-text('Statistics')")
    assert page.locator("h1").inner_text().startswith("Statistics")
    charts = watched.charts()
    assert len(charts) == 8  # one per feature of the penguins
    for split in ("train", "eval"):
        assert page.locator(f'tr[data-feature="body_mass_g"][data-dataset="{split}"]').count() == 1
    page.screenshot(path=str(tmp_path / "statistics.png"), full_page=True)

    page.click("a.lineage-link")
    assert page.locator("h1").inner_text().startswith("lineage of Statistics")
    watched.charts()
    assert page.locator("table.lineage td:has-text('SchemaGen')").count() >= 1
    page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)

    assert watched.errors == [] and watched.external == []
