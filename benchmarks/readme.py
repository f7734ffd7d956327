"""README's Performance figures, regenerated from a results file of the suite.

    python -m benchmarks.readme [benchmarks/results/<date>.json]

``make bench`` (a full run into benchmarks/results) calls ``update`` itself; this
command redoes it from any results file (default: the newest full run's). What it
writes sits between two marker lines of README.md: the results file's name, the
commit measured, the machine, and the targets table with each target's verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"
START = "<!-- benchmark targets: generated from benchmarks/results by `python -m benchmarks.readme`; edits here are overwritten -->"
END = "<!-- end of benchmark targets -->"


def render(results: dict, results_path: Path) -> str:
    """The generated part: where the figures come from, then the targets tables."""
    from benchmarks.suite import targets, targets_table

    try:
        shown = results_path.resolve().relative_to(REPO)
    except ValueError:
        shown = results_path
    machine = results["machine"]
    judged = targets(results["measurements"])  # today's targets, whatever the file's age
    issue = [t for t in judged if t["source"] == "issue 16"]
    earlier = [t for t in judged if t["source"] != "issue 16"]
    counts = {verdict: sum(1 for t in issue if t.get("verdict") == verdict) for verdict in ("met", "missed", "not measured")}
    lines = [
        f"Latest {results['mode']} run: `{shown}` (commits {', '.join(results.get('commits') or [results.get('commit', 'unknown')])}, "
        f"{machine['cpus']} CPUs, "
        f"Python {machine['python']}); {counts['met']} targets met, {counts['missed']} missed, "
        f"{counts['not measured']} not measured. Ratios are paired medians (min–max of the pairs); the results "
        "file has every figure, the per-component profile of the penguin first run and the profile of each missed "
        "throughput target.",
        "",
        *targets_table(issue),
        "",
        "Earlier targets, still tracked:",
        "",
        *targets_table(earlier),
    ]
    return "\n".join(lines)


def update(readme: Path, results_path: Path) -> None:
    """Replaces what lies between the markers of ``readme`` with `render` of ``results_path``."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} lacks the benchmark marker lines; put\n{START}\n{END}\nin its Performance section")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    results = json.loads(results_path.read_text())
    readme.write_text(f"{before}{START}\n{render(results, results_path)}\n{END}{after}")


def newest_full_results(results_dir: Path = RESULTS) -> Path:
    full = sorted(p for p in results_dir.glob("*.json") if not p.stem.endswith("-quick"))
    if not full:
        raise SystemExit(f"no full results in {results_dir}: run `make bench` first")
    return full[-1]


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else newest_full_results()
    update(README, path)
    print(f"regenerated the Performance figures of {README} from {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
