"""Virtual environments for peers, under ``$BEAM_ML_BENCH_VENVS`` (default ~/.cache/beam-ml/bench-venvs).

TensorFlow Data Validation 1.16.1 (the newest release) pins TensorFlow 2.16 and
pyarrow 10, which cannot sit beside the project's TF 2.21, so it gets a venv of its
own. The set that installs on Python 3.11 here (checked):

    python3.11 -m venv tfdv-1.16.1
    pip install tensorflow-data-validation==1.16.1 'apache-beam[gcp]<2.60' 'numpy<2'

pip resolves that to apache-beam 2.59.0, tensorflow 2.16.2, numpy 1.26.4, pyarrow
10.0.1, protobuf 4.25.9; without the Beam bound pip backtracks through newer Beam
releases that TFDV's tfx-bsl does not accept. The full resolved set is
``tfdv-1.16.1-constraints.txt`` beside this file and is passed as ``-c`` so every
machine gets the same versions.

A venv counts as installed once its marker file exists (written after pip
succeeded). Installing needs the network; the quick run never installs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = ".beam-ml-bench-installed"


def venvs_root() -> Path:
    return Path(os.environ.get("BEAM_ML_BENCH_VENVS", Path.home() / ".cache" / "beam-ml" / "bench-venvs"))


@dataclass(frozen=True)
class PeerVenv:
    name: str
    requirements: tuple[str, ...]
    constraints: Path | None
    python: str = "python3.11"

    @property
    def directory(self) -> Path:
        return venvs_root() / self.name

    @property
    def interpreter(self) -> Path:
        return self.directory / "bin" / "python"

    def installed(self) -> bool:
        return (self.directory / MARKER).is_file() and self.interpreter.is_file()

    def install(self, log: Path) -> tuple[bool, str]:
        """Creates the venv and pip-installs the peer; (ok, why not). Output goes to ``log``."""
        if shutil.which(self.python) is None:
            return False, f"{self.python} is not on PATH"
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        pip = [str(self.interpreter), "-m", "pip", "install", "--disable-pip-version-check"]
        steps = [
            [self.python, "-m", "venv", str(self.directory)],
            [*pip, "--upgrade", "pip"],
            [*pip, *self.requirements, *(["-c", str(self.constraints)] if self.constraints else [])],
        ]
        with open(log, "a") as out:
            for step in steps:
                out.write("$ " + " ".join(step) + "\n")
                out.flush()
                done = subprocess.run(step, check=False, stdout=out, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    return False, f"`{' '.join(step)}` failed (exit {done.returncode}); see {log}"
        (self.directory / MARKER).write_text("\n".join(self.requirements) + "\n")
        return True, ""


TFDV = PeerVenv(
    name="tfdv-1.16.1",
    requirements=("tensorflow-data-validation==1.16.1", "apache-beam[gcp]<2.60", "numpy<2"),
    constraints=HERE / "tfdv-1.16.1-constraints.txt",
)
TFDV_SCRIPT = HERE / "tfdv_stats.py"
