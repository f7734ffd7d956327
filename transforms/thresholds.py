"""Blessing thresholds on evaluation metrics: `ValueThreshold`, `ChangeThreshold`, `validate_metrics`.

A threshold is a small frozen dataclass that a pipeline file passes as an
Evaluator parameter; `validate_metrics` checks a candidate's metrics
(``{slice: {metric: value}}``, as `beam_ml.transforms.metrics.ComputeMetrics`
gives them) against a list of them and says why a model is not blessed.

This module imports neither Beam nor numpy: a pipeline file that names
thresholds, and a fully cached rerun of it, must not pay for the metric
CombineFns' imports. ``beam_ml.transforms.metrics`` re-exports everything here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["OVERALL", "ChangeThreshold", "ValueThreshold", "validate_metrics"]

#: The slice of every example; a threshold applies to it unless it names another slice.
OVERALL = "Overall"


@dataclass(frozen=True)
class ValueThreshold:
    """``lower_bound <= metrics[slice][metric] <= upper_bound`` (either bound optional)."""

    metric: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    slice: str = OVERALL

    def __post_init__(self) -> None:
        if self.lower_bound is None and self.upper_bound is None:
            raise ValueError(f"ValueThreshold on {self.metric!r} needs a lower or an upper bound")


@dataclass(frozen=True)
class ChangeThreshold:
    """The candidate may be worse than the baseline by at most ``absolute`` and/or ``relative``.

    "Worse" follows `direction`: for ``higher_is_better`` the candidate may
    not fall below ``baseline - absolute`` nor ``baseline - relative·|baseline|``;
    for ``lower_is_better`` not rise above ``baseline + ...``. Tolerances are
    non-negative; 0 means "no worse than the baseline".
    """

    metric: str
    direction: Literal["higher_is_better", "lower_is_better"]
    absolute: float | None = None
    relative: float | None = None
    slice: str = OVERALL

    def __post_init__(self) -> None:
        if self.direction not in ("higher_is_better", "lower_is_better"):
            raise ValueError(f"direction must be 'higher_is_better' or 'lower_is_better', got {self.direction!r}")
        if self.absolute is None and self.relative is None:
            raise ValueError(f"ChangeThreshold on {self.metric!r} needs an absolute or a relative tolerance")
        for name in ("absolute", "relative"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"ChangeThreshold.{name} is an allowed worsening and must be >= 0, got {value}")


def _lookup(metrics: Mapping[str, Mapping[str, float]], slice_name: str, metric: str) -> float | None:
    value = metrics.get(slice_name, {}).get(metric)
    return None if value is None else float(value)


def validate_metrics(
    metrics: Mapping[str, Mapping[str, float]],
    thresholds: Sequence[ValueThreshold | ChangeThreshold],
    baseline_metrics: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[bool, list[str]]:
    """(blessed, reasons): blessed when every threshold holds; one reason per failure.

    A metric missing or NaN in the candidate fails its threshold. Without a
    baseline, change thresholds are not checked (the first model is judged on
    value thresholds alone); with one, a metric missing from the baseline fails.
    """
    reasons: list[str] = []
    for threshold in thresholds:
        where = f"{threshold.metric} on slice {threshold.slice!r}"
        value = _lookup(metrics, threshold.slice, threshold.metric)
        if value is None or math.isnan(value):
            reasons.append(f"{where}: {'missing' if value is None else 'NaN'} in the candidate's metrics")
            continue
        if isinstance(threshold, ValueThreshold):
            if threshold.lower_bound is not None and value < threshold.lower_bound:
                reasons.append(f"{where} = {value:.6g} is below the lower bound {threshold.lower_bound:.6g}")
            if threshold.upper_bound is not None and value > threshold.upper_bound:
                reasons.append(f"{where} = {value:.6g} is above the upper bound {threshold.upper_bound:.6g}")
            continue
        if baseline_metrics is None:
            continue
        baseline = _lookup(baseline_metrics, threshold.slice, threshold.metric)
        if baseline is None or math.isnan(baseline):
            reasons.append(f"{where}: {'missing' if baseline is None else 'NaN'} in the baseline's metrics")
            continue
        worse_by = baseline - value if threshold.direction == "higher_is_better" else value - baseline
        allowed = []
        if threshold.absolute is not None:
            allowed.append((threshold.absolute, f"absolute tolerance {threshold.absolute:.6g}"))
        if threshold.relative is not None:
            allowed.append(
                (threshold.relative * abs(baseline), f"relative tolerance {threshold.relative:.6g} (= {threshold.relative * abs(baseline):.6g})")
            )
        for limit, description in allowed:
            if worse_by > limit:
                reasons.append(
                    f"{where} = {value:.6g} is worse than the baseline's {baseline:.6g} by {worse_by:.6g} "
                    f"({threshold.direction}), more than the {description}"
                )
    return not reasons, reasons
