"""The system Chromium for the browser tests: installed with apt-get if missing (as root), else a reason to skip.

Playwright's own browser download is not reachable from here; Debian's
``chromium`` package is, and Playwright drives it through
``executable_path``. Mirrors ``postgres_server.py``: the tests install what
they need, nobody installs it by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess

CANDIDATES = ("chromium", "chromium-browser")


class ChromiumUnavailable(RuntimeError):
    """Chromium cannot be found or installed here; the message says why."""


def _find() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def chromium_path() -> str:
    """The path of a Chromium binary, installing Debian's package first when root and missing."""
    found = _find()
    if found:
        return found
    if os.geteuid() != 0:
        raise ChromiumUnavailable("Chromium is not installed and installing it needs root (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200, check=False)
        if result.returncode != 0:
            raise ChromiumUnavailable(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")
    found = _find()
    if not found:
        raise ChromiumUnavailable("apt-get installed chromium but no chromium binary is on PATH")
    return found


if __name__ == "__main__":
    print(chromium_path())
