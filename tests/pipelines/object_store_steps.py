"""Two components that write through Beam's FileSystems, for the object-store fault tests.

Write -> Slow. Environment variables steer the faults:
SLOW_MARKER (a local file Slow creates once it has written part of its output, then it sleeps SLOW_SLEEP
seconds: the moment to kill the run), LOG_OPTIONS=1 (Write logs the run's Beam flags, secrets and all), CRASH_IN_PUBLISH=1 (the process kills itself with SIGKILL after the
runner has copied the first file of Slow's output to its final prefix: a crash in the middle of a publish).
"""

import logging
import os
import pathlib
import signal
import time

from beam_ml import Artifact, ExecutionContext, Input, Output, Pipeline, component, fs


def _write(uri: str, name: str, data: bytes) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(fs.join(uri, name)) as handle:
        handle.write(data)


@component
def Write(data: Output[Artifact], context: ExecutionContext, *, count: int = 1000) -> None:
    if os.environ.get("LOG_OPTIONS") == "1":
        logging.getLogger(__name__).warning("running with %s", " ".join(context.beam_args))
    for part in range(3):
        _write(data.uri, f"part-{part}.txt", "\n".join(str(i * part) for i in range(count)).encode())


@component
def Slow(data: Input[Artifact], result: Output[Artifact], *, sleep: float = 0.0) -> None:
    _write(result.uri, "first.txt", b"written before the sleep")
    marker = os.environ.get("SLOW_MARKER")
    if marker:
        pathlib.Path(marker).touch()
    time.sleep(sleep)
    for name in ("second.txt", "third.txt"):
        _write(result.uri, name, name.encode() * 1000)


if os.environ.get("CRASH_IN_PUBLISH") == "1":
    _copy_tree = fs.copy_tree

    def _copy_first_file_then_die(src: str, dst: str) -> None:
        if "/Slow/" in src:
            first = next(iter(fs.list_files(src)))
            from apache_beam.io.filesystems import FileSystems

            FileSystems.copy([first], [dst + first[len(src) :]])
            os.kill(os.getpid(), signal.SIGKILL)
        _copy_tree(src, dst)

    fs.copy_tree = _copy_first_file_then_die

_write_step = Write()
_slow_step = Slow(data=_write_step.outputs.data, sleep=float(os.environ.get("SLOW_SLEEP", "0")))
pipeline = Pipeline("object_store_steps", root="unused-root", components=[_write_step, _slow_step])
