"""Span patterns as TFX's ExampleGen reads them: which files each span and version selects."""

from __future__ import annotations

import datetime

import pytest

from beam_ml.spans import NoSpanError, list_spans, select_spans, wildcard


def _write(path, text="a,b\n1,2\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture
def spans_dir(tmp_path):
    for span, version in [(1, 1), (2, 1), (2, 2), (3, 1), (10, 1)]:
        _write(tmp_path / f"span-{span}" / f"v{version}" / "part-0.csv")
    _write(tmp_path / "span-2" / "v2" / "part-1.csv")
    _write(tmp_path / "span-x" / "v1" / "part-0.csv")  # not a number: not a span
    return tmp_path


def test_latest_span_at_its_latest_version_by_default(spans_dir):
    pattern = str(spans_dir / "span-{SPAN}" / "v{VERSION}" / "*.csv")
    assert wildcard(pattern) == str(spans_dir / "span-*" / "v*" / "*.csv")
    assert [(s.span, s.version) for s in list_spans(pattern)] == [(1, 1), (2, 2), (3, 1), (10, 1)]
    latest = select_spans(pattern)
    assert (latest.span, latest.version) == (10, 1)  # numerically, not as text
    assert latest.paths == [str(spans_dir / "span-10" / "v1" / "part-0.csv")]


def test_span_rolling_and_range_select_spans(spans_dir):
    pattern = str(spans_dir / "span-{SPAN}" / "v{VERSION}" / "*.csv")
    two = select_spans(pattern, span=2)
    assert [s.span for s in two.spans] == [2]
    assert two.paths == [str(spans_dir / "span-2" / "v2" / f"part-{i}.csv") for i in (0, 1)]  # v1 is replaced
    assert [s.span for s in select_spans(pattern, rolling=2).spans] == [3, 10]
    assert [s.span for s in select_spans(pattern, span_range=(1, 3)).spans] == [1, 2, 3]
    with pytest.raises(NoSpanError, match=r"span 4 not found .* spans \[1, 2, 3, 10\]"):
        select_spans(pattern, span=4)
    with pytest.raises(ValueError, match="at most one of span, rolling and span_range"):
        select_spans(pattern, span=1, rolling=2)


def test_date_placeholders_count_days_since_1970(tmp_path):
    for day in ("2024-02-28", "2024-03-01", "2024-13-01"):
        _write(tmp_path / day / "data.csv")
    pattern = str(tmp_path / "{YYYY}-{MM}-{DD}" / "data.csv")
    spans = list_spans(pattern)
    epoch = datetime.date(1970, 1, 1)
    assert [s.span for s in spans] == [(datetime.date(2024, 2, 28) - epoch).days, (datetime.date(2024, 3, 1) - epoch).days]
    assert select_spans(pattern).paths == [str(tmp_path / "2024-03-01" / "data.csv")]


def test_a_pattern_without_spans_fails_naming_it(tmp_path):
    pattern = str(tmp_path / "nowhere-{SPAN}" / "*.csv")
    with pytest.raises(NoSpanError, match=r"nowhere-\{SPAN\}"):
        select_spans(pattern)
    with pytest.raises(ValueError, match="not both"):
        list_spans(str(tmp_path / "{SPAN}-{YYYY}-{MM}-{DD}.csv"))


def test_spans_on_s3_are_listed_through_beam_filesystems(s3_server, s3_bucket):
    from beam_ml import fs
    from beam_ml.dsl import FilePattern

    fs.configure(s3_server.beam_flags())
    client = s3_server.client()
    bucket = s3_bucket[len("s3://"):]
    for span, version in [(1, 1), (2, 1), (2, 3)]:
        client.put_object(Bucket=bucket, Key=f"in/span-{span}/v{version}/data.csv", Body=b"a,b\n1,2\n")
    pattern = f"{s3_bucket}/in/span-{{SPAN}}/v{{VERSION}}/*.csv"
    latest = select_spans(pattern)
    assert (latest.span, latest.version, latest.paths) == (2, 3, [f"{s3_bucket}/in/span-2/v3/data.csv"])
    assert [s.span for s in select_spans(pattern, rolling=2).spans] == [1, 2]
    before = FilePattern(pattern).fingerprint()
    client.put_object(Bucket=bucket, Key="in/span-3/v1/data.csv", Body=b"a,b\n1,2\n")
    assert select_spans(pattern).span == 3
    assert FilePattern(pattern).fingerprint() != before  # a new span changes the cache key
