"""What every view shares: the ``View`` fragment, Jinja2 templates, Plotly charts and the page shell.

A chart is a Plotly figure turned into a ``<div>`` plus the call that draws
it; the library's JavaScript (``plotly.min.js`` from the installed wheel) is
inlined once per page by ``page``. Nothing is fetched at view time.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

_CHART_IDS = itertools.count()


@dataclass(frozen=True)
class View:
    """A titled HTML fragment; in a notebook it shows itself as a page (``_repr_html_``)."""

    title: str
    html: Markup
    #: The id of the view's section on a page, for links to it (``artifact-12``, ``execution-3``).
    anchor: str | None = None

    def __html__(self) -> str:
        return str(self.html)

    def _repr_html_(self) -> str:
        return page(self.title, [self], standalone_fragment=True)


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the views' and the web app's templates (autoescaped)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_number
    env.filters["pct"] = fmt_percent
    env.filters["seconds"] = fmt_seconds
    env.filters["when"] = fmt_when
    return env


def render(template: str, **values: Any) -> Markup:
    return Markup(environment().get_template(template).render(**values))


@functools.cache
def plotly_js() -> str:
    """Plotly's JavaScript bundle, read from the installed ``plotly`` package (no CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def chart(figure: Any, *, height: int = 220, width: int | None = None) -> Markup:
    """A Plotly figure as a ``<div>`` that draws itself once Plotly's JS (inlined by ``page``) has loaded."""
    figure.update_layout(
        height=height, margin={"l": 40, "r": 10, "t": 30 if figure.layout.title.text else 10, "b": 30},
        template="plotly_white", font={"size": 11},
    )
    if width is not None:
        figure.update_layout(width=width)
    html = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"chart-{next(_CHART_IDS)}",
        config={"displayModeBar": False, "responsive": True},
    )
    return Markup(f'<div class="chart">{html}</div>')


def page(title: str, views: list[View], *, nav: Markup | None = None, standalone_fragment: bool = False) -> str:
    """A whole HTML page holding ``views``, with the CSS and Plotly's JS inlined."""
    return environment().get_template("page.html").render(
        title=title, views=views, nav=nav, plotly_js=Markup(plotly_js()), fragment=standalone_fragment,
    )


def fmt_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else f"{int(value // 60)}m{int(value % 60):02d}s"


def fmt_when(value: float | None) -> str:
    import time

    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
