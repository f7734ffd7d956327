"""A small pipeline of plain-Python components for the framework's own tests.

Produce -> Square -> Total (-> Report -> Archive when LONG=1, five components;
-> Chatter when CHATTER=1).
Environment variables set parameters so the CLI tests can change them:
POWER, FAIL, SLEEP, ROOT, LONG, COUNT, CHATTER.
"""

import json
import os
import pathlib
import time

from beam_ml import Artifact, Input, Output, Pipeline, component


class Numbers(Artifact):
    """numbers.json: a JSON list of numbers."""


def read_numbers(artifact: Artifact) -> list[float]:
    return json.loads(pathlib.Path(artifact.uri, "numbers.json").read_text())


def write_numbers(artifact: Artifact, values: list[float]) -> None:
    pathlib.Path(artifact.uri, "numbers.json").write_text(json.dumps(values))
    artifact.properties["count"] = len(values)


@component
def Produce(numbers: Output[Numbers], *, count: int = 10) -> None:
    write_numbers(numbers, list(range(count)))


@component
def Square(numbers: Input[Numbers], squares: Output[Numbers], *, power: int = 2) -> None:
    write_numbers(squares, [v**power for v in read_numbers(numbers)])


@component
def Total(values: Input[Numbers], total: Output[Numbers], *, fail: bool = False, sleep: float = 0.0) -> None:
    write_numbers(total, [sum(read_numbers(values))])  # written before the sleep: a partial output
    if sleep:
        pathlib.Path(total.uri, "..", "..", "..", "total-started").resolve().touch()
        time.sleep(sleep)
    if fail:
        raise RuntimeError("Total was told to fail")


@component
def Report(total: Input[Numbers], report: Output[Artifact], *, title: str = "total") -> None:
    pathlib.Path(report.uri, "report.txt").write_text(f"{title}: {read_numbers(total)[0]}\n")


@component
def Archive(report: Input[Artifact], squares: Input[Numbers], archive: Output[Artifact]) -> None:
    text = pathlib.Path(report.uri, "report.txt").read_text()
    pathlib.Path(archive.uri, "archive.txt").write_text(text + json.dumps(read_numbers(squares)))


@component
def Chatter(total: Input[Numbers], said: Output[Artifact]) -> None:
    """Talks the way third-party libraries do: their loggers, Python warnings, and bytes on fd 2."""
    import logging
    import warnings

    logging.getLogger("absl").warning("absl says: chatter from a library logger")
    logging.getLogger("tensorflow").warning("tensorflow says: `mean radius` is not a valid node name")
    warnings.warn("a library's UserWarning", UserWarning, stacklevel=1)
    os.write(2, b"I0000 port.cc:153] native code writes straight to fd 2\n")
    logging.getLogger("beam_ml.tests").warning("beam-ml says: a warning meant for the user")
    pathlib.Path(said.uri, "said.txt").write_text("said")


def create_pipeline() -> Pipeline:
    produce = Produce(count=int(os.environ.get("COUNT", "10")))
    square = Square(numbers=produce.outputs.numbers, power=int(os.environ.get("POWER", "2")))
    total = Total(
        values=square.outputs.squares,
        fail=os.environ.get("FAIL") == "1",
        sleep=float(os.environ.get("SLEEP", "0")),
    )
    nodes = [produce, square, total]
    if os.environ.get("LONG") == "1":
        report = Report(total=total.outputs.total)
        nodes += [report, Archive(report=report.outputs.report, squares=square.outputs.squares)]
    if os.environ.get("CHATTER") == "1":
        nodes.append(Chatter(total=total.outputs.total))
    return Pipeline("numbers", root=os.environ.get("ROOT", "pipelines/numbers"), components=nodes)
