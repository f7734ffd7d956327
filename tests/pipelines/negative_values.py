"""A user's statistics generator, for tests: the fraction of each numeric feature's values
that are negative, as a custom statistic named ``fraction_negative``.

It implements `StatsGenerator` directly, as a user would: per feature path, the
number of non-NaN values and of negative ones, merged into the first accumulator.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tensorflow_metadata.proto.v0 import statistics_pb2

from beam_ml.transforms.statistics import StatsBatch, StatsGenerator

NAME = "fraction_negative"
_NUMERIC = (statistics_pb2.FeatureNameStatistics.INT, statistics_pb2.FeatureNameStatistics.FLOAT)

# Feature path → [values that are not NaN, negative values].
Counts = dict[tuple[str, ...], list[int]]


class NegativeValues(StatsGenerator[Counts]):
    def create_accumulator(self) -> Counts:
        return {}

    def add_input(self, accumulator: Counts, batch: StatsBatch) -> Counts:
        for path, feature in batch.features.items():
            if feature.feature_type not in _NUMERIC:
                continue
            values = feature.values.to_numpy(zero_copy_only=False)
            counts = accumulator.setdefault(path, [0, 0])
            counts[0] += int(np.count_nonzero(~np.isnan(values))) if values.dtype.kind == "f" else values.size
            counts[1] += int(np.count_nonzero(values < 0))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Counts]) -> Counts:
        parts = iter(accumulators)
        result = next(parts)
        for other in parts:
            for path, (total, negative) in other.items():
                counts = result.setdefault(path, [0, 0])  # a new list: `other` stays as it was
                counts[0] += total
                counts[1] += negative
        return result

    def extract_output(self, accumulator: Counts) -> statistics_pb2.DatasetFeatureStatistics:
        result = statistics_pb2.DatasetFeatureStatistics()
        for path, (total, negative) in accumulator.items():
            if total:
                feature = result.features.add()
                feature.path.step.extend(path)
                feature.custom_stats.add(name=NAME, num=negative / total)
        return result
