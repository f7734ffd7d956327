"""HTML views of artifacts, runs and lineage: one set of renderers for every place results are shown.

``beam-ml report`` writes them into one self-contained file, ``beam-ml ui``
serves them, and notebooks show them inline (``beam_ml.interactive``). Each
renderer reads only the artifact's files and the metadata store, and returns
a ``View``: an HTML fragment (Jinja2 templates in ``templates/``) whose charts
are Plotly figures. Plotly's JavaScript comes from the installed ``plotly``
wheel and is inlined into every page, so pages work with no network.
"""

from beam_ml.views.artifacts import artifact_view
from beam_ml.views.base import View, page
from beam_ml.views.lineage import lineage_view
from beam_ml.views.run import run_view
from beam_ml.views.statistics import compare_statistics

__all__ = ["View", "artifact_view", "compare_statistics", "lineage_view", "page", "run_view"]
