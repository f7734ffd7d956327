"""Spans and versions of input data, as TFX's ExampleGen names them in file patterns.

    data/span-{SPAN}/v{VERSION}/*.csv        data/{YYYY}-{MM}-{DD}/*.csv

A span is one delivery of data (a day, a batch); a version is a re-delivery of
one span that replaces the earlier ones. ``{SPAN}`` matches a number;
``{YYYY}``/``{MM}``/``{DD}`` a date, whose span is its day number since
1970-01-01 (as TFX counts); ``{VERSION}`` a number, of which the highest wins
within a span. Files are listed through ``beam_ml.fs`` (Beam's FileSystems), so
spans may live on local disk, S3 or GCS.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from beam_ml import fs

SPAN, VERSION = "{SPAN}", "{VERSION}"
_DATE = ("{YYYY}", "{MM}", "{DD}")
_GROUPS = {SPAN: r"(?P<span>\d+)", VERSION: r"(?P<version>\d+)",
           "{YYYY}": r"(?P<yyyy>\d{4})", "{MM}": r"(?P<mm>\d{2})", "{DD}": r"(?P<dd>\d{2})"}
_TOKEN = re.compile(r"\{SPAN\}|\{VERSION\}|\{YYYY\}|\{MM\}|\{DD\}|\*\*|\*|\?|\[[^\]]*\]")
_EPOCH = datetime.date(1970, 1, 1)


class NoSpanError(FileNotFoundError):
    """A span pattern that matches no file, or not the span asked for."""


@dataclass(frozen=True)
class SpanFiles:
    """The files of one span at one version (None when the pattern has no ``{VERSION}``)."""

    span: int
    version: int | None
    paths: tuple[str, ...]


@dataclass(frozen=True)
class SpanSelection:
    """The spans an ExampleGen reads, oldest first, each at its latest version."""

    pattern: str
    spans: tuple[SpanFiles, ...]

    @property
    def span(self) -> int:
        """The newest span read."""
        return self.spans[-1].span

    @property
    def version(self) -> int | None:
        return self.spans[-1].version

    @property
    def paths(self) -> list[str]:
        return [path for span in self.spans for path in span.paths]


def has_placeholders(pattern: str) -> bool:
    return any(token in pattern for token in (SPAN, VERSION, *_DATE))


def wildcard(pattern: str) -> str:
    """The glob that lists every span and version of ``pattern`` (placeholders → ``*``)."""
    for token in (SPAN, VERSION, *_DATE):
        pattern = pattern.replace(token, "*")
    return pattern


def matched_files_fingerprint(pattern: str) -> str:
    """A hash of (path, size, mtime) of every file the pattern matches, in every span and version."""
    digest = hashlib.sha256()
    for path, size, mtime in fs.match(wildcard(pattern)):
        digest.update(f"{path}\0{size}\0{mtime}\0".encode())
    return digest.hexdigest()


def input_fingerprint(input_path: str | Mapping[str, str]) -> str:
    """One hash of what an input pattern (or one per split) matches now, across all spans and versions.

    ExampleGen records it with its Examples (``input_fingerprint``), and
    ``beam-ml watch --on-new-span`` compares it with the value recorded by the
    pipeline's last complete run: a new span, a new version or a changed file
    changes it; the same files do not, whoever asks and however often.
    """
    patterns = dict(input_path) if isinstance(input_path, Mapping) else {"": input_path}
    digest = hashlib.sha256()
    for name, pattern in sorted(patterns.items()):
        digest.update(f"{name}\0{matched_files_fingerprint(str(pattern))}\0".encode())
    return digest.hexdigest()


def _check(pattern: str) -> None:
    dates = [token in pattern for token in _DATE]
    if SPAN in pattern and any(dates):
        raise ValueError(f"{pattern!r}: use {{SPAN}} or the date placeholders {{YYYY}}/{{MM}}/{{DD}}, not both")
    if any(dates) and not all(dates):
        raise ValueError(f"{pattern!r}: a date span needs all of {{YYYY}}, {{MM}} and {{DD}}")
    if SPAN not in pattern and not any(dates):
        raise ValueError(f"{pattern!r}: {{VERSION}} needs a span placeholder ({{SPAN}} or {{YYYY}}/{{MM}}/{{DD}})")
    for token in (SPAN, VERSION, *_DATE):
        if pattern.count(token) > 1:
            raise ValueError(f"{pattern!r}: {token} may appear once")


def _regex(pattern: str) -> re.Pattern[str]:
    parts, end = [], 0
    for token in _TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[end:token.start()]))
        text = token.group()
        if text in _GROUPS:
            parts.append(_GROUPS[text])
        elif text == "**":
            parts.append(r".*")
        elif text == "*":
            parts.append(r"[^/]*")
        elif text == "?":
            parts.append(r"[^/]")
        else:  # a character class: the same in a regular expression, but for negation
            parts.append("[^" + text[2:] if text.startswith("[!") else text)
        end = token.end()
    parts.append(re.escape(pattern[end:]))
    return re.compile("".join(parts))


def list_spans(pattern: str) -> list[SpanFiles]:
    """Every span the pattern matches, oldest first, each at its latest version."""
    _check(pattern)
    local = fs.is_local(pattern)
    listed = fs.local_path(pattern) if local else pattern
    regex = _regex(listed)
    found: dict[tuple[int, int | None], list[str]] = {}
    for path, _size, _mtime in fs.match(wildcard(listed)):
        matched = regex.fullmatch(path)
        if matched is None:
            continue
        groups = matched.groupdict()
        if groups.get("span") is not None:
            span = int(groups["span"])
        else:
            try:
                day = datetime.date(int(groups["yyyy"]), int(groups["mm"]), int(groups["dd"]))
            except ValueError:
                continue  # not a date (month 13): not a span
            span = (day - _EPOCH).days
        version = int(groups["version"]) if groups.get("version") is not None else None
        found.setdefault((span, version), []).append(path)
    latest: dict[int, SpanFiles] = {}
    for (span, version), paths in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        latest[span] = SpanFiles(span, version, tuple(sorted(paths)))  # a higher version replaces a lower
    return [latest[span] for span in sorted(latest)]


def select_spans(
    pattern: str, *, span: int | None = None, rolling: int | None = None, span_range: Sequence[int] | None = None
) -> SpanSelection:
    """The spans to read: the latest (default), ``span``, the latest ``rolling`` ones, or
    ``span_range`` (first, last) inclusive. Fails naming the pattern when nothing matches."""
    chosen = [name for name, value in (("span", span), ("rolling", rolling), ("span_range", span_range))
              if value is not None]
    if len(chosen) > 1:
        raise ValueError(f"give at most one of span, rolling and span_range (got {', '.join(chosen)})")
    if rolling is not None and rolling < 1:
        raise ValueError(f"rolling must be at least 1, got {rolling}")
    available = list_spans(pattern)
    if not available:
        raise NoSpanError(f"no file matches the span pattern {pattern!r} (listed as {wildcard(pattern)!r})")
    names = [s.span for s in available]
    if span is not None:
        picked = [s for s in available if s.span == span]
        if not picked:
            raise NoSpanError(f"span {span} not found for {pattern!r}; it has spans {names}")
    elif span_range is not None:
        first, last = span_range
        picked = [s for s in available if first <= s.span <= last]
        if not picked:
            raise NoSpanError(f"no span in {first}..{last} for {pattern!r}; it has spans {names}")
    else:
        picked = available[-(rolling or 1):]
    return SpanSelection(pattern, tuple(picked))
