"""The default local runner: Beam's DirectRunner without its attempt to run Prism first.

Beam 2.77's ``DirectRunner`` (``SwitchingDirectRunner``) tries the Prism runner
before its own in-process runners, and Prism is a Go binary that Beam downloads
from GitHub at run time. beam-ml must never fetch code on its own; on a machine
without that network the attempt fails and Beam falls back to the FnApiRunner,
after 0.3-0.5 s spent per pipeline (measured on the statistics benchmark's
profile: ``PrismRunner.run_pipeline`` 0.52 s of a 6.0 s run, on every component).
So the default runner is this one: the same choice between the FnApiRunner and
the bundle-based runner that DirectRunner makes, with Prism left out. Ask for
Prism explicitly with ``--runner=PrismRunner``.
"""

from __future__ import annotations

from apache_beam.runners.direct import direct_runner

#: What ``--runner`` names it; beam_ml.runners.options sets it when no runner is given.
NAME = "beam_ml.runners.direct.SwitchingDirectRunner"


class SwitchingDirectRunner(direct_runner.SwitchingDirectRunner):
    """Beam's SwitchingDirectRunner that never tries Prism.

    SwitchingDirectRunner skips Prism for interactive pipelines, and that is its only
    switch (beam 2.77); this runner sets it and changes nothing else. It keeps Beam's
    class name because ``Pipeline.run`` recognises the direct runner by that name and
    then skips a round trip of the pipeline through its protos (0.6 s on the
    statistics benchmark) that a runner of any other name pays.
    """

    def __init__(self) -> None:
        super().__init__()
        self.is_interactive()
