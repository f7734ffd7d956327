"""Beam's CombineFn contract, as one harness every CombineFn of the project inherits.

A runner may split a CombineFn's input over any number of accumulators, merge
them in any grouping and order, compact partial results between merges, ship
them between workers (pickled), add more input to a merged accumulator, and
combine an empty input. The result must not depend on any of it. And
`merge_accumulators` may modify and return only its first accumulator: the
others may still be held by the runner (a combiner-lifted bundle, a retried
merge, a cached side input), so changing them — or keeping a reference to any
of their parts that later merges would change — corrupts results on runners
that reuse accumulators.

Usage: subclass `CombineFnContract` in a ``test_*.py`` file, name the class
``Test...``, and define two fixtures, ``combine_fn`` (may be parametrised) and
``inputs`` (a list of several input elements). Override `assert_same_output`
when the output is not comparable with ``==`` (floats summed in a different
order, sketches whose state depends on the merge order), and say there why.

The splits and merge plans are drawn by hypothesis; a failure prints the
smallest plan that breaks the contract.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@dataclass
class _Tracked:
    """An accumulator in the pool, and whether it must stay as it is from now on."""

    accumulator: Any
    label: str
    # Set once the accumulator was passed to merge_accumulators in a position other than first.
    frozen: bytes | None = None


@dataclass
class _Run:
    """One drawn execution: what was done, for the failure message, and the frozen accumulators."""

    steps: list[str] = field(default_factory=list)
    frozen: list[_Tracked] = field(default_factory=list)


class CombineFnContract:
    """Inherit in a ``Test...`` class and define the ``combine_fn`` and ``inputs`` fixtures."""

    # Draws per CombineFn; each draw adds every input once, so keep inputs small.
    max_examples = 40

    @pytest.fixture
    def combine_fn(self) -> beam.CombineFn:
        raise NotImplementedError("a contract test class defines the combine_fn fixture")

    @pytest.fixture
    def inputs(self) -> list[Any]:
        raise NotImplementedError("a contract test class defines the inputs fixture (several elements)")

    def assert_same_output(self, expected: Any, actual: Any) -> None:
        """Outputs of the same input computed two ways; equal unless a subclass says why not."""
        assert actual == expected

    # ------------------------------------------------------------------ the contract

    def test_inputs_are_several(self, inputs: list[Any]) -> None:
        """Splitting needs at least three elements to mean anything."""
        assert len(inputs) >= 3

    def test_any_split_merge_order_compaction_and_pickling_equal_one_shot(
        self, combine_fn: beam.CombineFn, inputs: list[Any]
    ) -> None:
        expected = one_shot(combine_fn, inputs)

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.data())
        def check(data: st.DataObject) -> None:
            run = _Run()
            result = _drawn_execution(combine_fn, inputs, data, run)
            self.assert_same_output(expected, result)
            _assert_unchanged(run)

        check()

    def test_empty_input(self, combine_fn: beam.CombineFn, inputs: list[Any]) -> None:
        """No input at all, empty accumulators merged (compacted, pickled) and merged into real ones."""
        empty = combine_fn.extract_output(combine_fn.create_accumulator())
        empties = [combine_fn.create_accumulator() for _ in range(3)]
        run = _Run()
        merged = combine_fn.compact(_merge(combine_fn, [_Tracked(a, f"empty {i}") for i, a in enumerate(empties)], run))
        shipped = _pickled(merged)
        self.assert_same_output(empty, combine_fn.extract_output(merged))
        self.assert_same_output(empty, combine_fn.extract_output(shipped))

        expected = one_shot(combine_fn, inputs)
        for position in ("first", "last"):
            full = combine_fn.create_accumulator()
            for element in inputs:
                full = combine_fn.add_input(full, element)
            pool = [_Tracked(combine_fn.create_accumulator(), "empty"), _Tracked(full, "all inputs")]
            if position == "last":
                pool.reverse()
            self.assert_same_output(expected, combine_fn.extract_output(_merge(combine_fn, pool, run)))
        _assert_unchanged(run)

    def test_merge_changes_no_accumulator_but_the_first(self, combine_fn: beam.CombineFn, inputs: list[Any]) -> None:
        """Every non-first accumulator pickles the same after merging, after the result was
        compacted, given more input and merged again: merge neither mutated nor adopted it."""
        half = len(inputs) // 2
        for first_is_empty in (True, False):
            run = _Run()
            others = []
            for i, element in enumerate(inputs[:half]):
                others.append(_Tracked(combine_fn.add_input(combine_fn.create_accumulator(), element), f"input {i}"))
            first = combine_fn.create_accumulator()
            if not first_is_empty:
                first = combine_fn.add_input(first, inputs[half])
            merged = _merge(combine_fn, [_Tracked(first, "first"), *others], run)
            merged = combine_fn.compact(merged)
            for element in inputs[half + 1 :]:
                merged = combine_fn.add_input(merged, element)
            extra = combine_fn.add_input(combine_fn.create_accumulator(), inputs[0])
            merged = combine_fn.merge_accumulators([merged, extra])
            combine_fn.extract_output(combine_fn.compact(merged))
            _assert_unchanged(run)


def one_shot(combine_fn: beam.CombineFn, inputs: list[Any]) -> Any:
    """Every input into one accumulator, in order: what a runner without splitting computes."""
    accumulator = combine_fn.create_accumulator()
    for element in inputs:
        accumulator = combine_fn.add_input(accumulator, element)
    return combine_fn.extract_output(accumulator)


def _pickled(accumulator: Any) -> Any:
    """The accumulator after a trip between workers."""
    return pickle.loads(pickle.dumps(accumulator))


def _merge(combine_fn: beam.CombineFn, group: list[_Tracked], run: _Run) -> Any:
    """merge_accumulators on the group, remembering how every non-first member looked before."""
    for member in group[1:]:
        if member.frozen is None:
            member.frozen = pickle.dumps(member.accumulator)
            run.frozen.append(member)
    run.steps.append("merge " + ", ".join(m.label for m in group))
    return combine_fn.merge_accumulators([m.accumulator for m in group])


def _assert_unchanged(run: _Run) -> None:
    for member in run.frozen:
        problem = (
            f"merge_accumulators changed accumulator {member.label!r}, which was not first "
            f"(or the result shares a part of it that later steps changed); steps: {run.steps}"
        )
        try:
            after = pickle.dumps(member.accumulator)
        except Exception as error:  # e.g. a sketch finalised by extract_output of a result that adopted it
            raise AssertionError(f"{problem}; it no longer pickles: {error}") from error
        assert after == member.frozen, problem


def _drawn_execution(combine_fn: beam.CombineFn, inputs: list[Any], data: st.DataObject, run: _Run) -> Any:
    """Adds the inputs to a drawn number of accumulators, merges them by a drawn plan, and
    adds a drawn tail of the inputs to the merged accumulator; returns the output."""
    n = len(inputs)
    tail = data.draw(st.integers(0, min(2, n)), label="inputs added after merging")
    head = inputs[: n - tail]
    # Up to two more accumulators than inputs, so some stay empty.
    num_accumulators = data.draw(st.integers(1, len(head) + 2), label="accumulators")
    owner = data.draw(
        st.lists(st.integers(0, num_accumulators - 1), min_size=len(head), max_size=len(head)),
        label="accumulator of each input",
    )
    pool = []
    for a in range(num_accumulators):
        accumulator = combine_fn.create_accumulator()
        mine = [i for i in range(len(head)) if owner[i] == a]
        for i in mine:
            accumulator = combine_fn.add_input(accumulator, head[i])
        pool.append(_Tracked(accumulator, f"acc{a}{mine}"))
    run.steps.append(f"split {[m.label for m in pool]}")
    step = 0
    while len(pool) > 1:
        order = data.draw(st.permutations(range(len(pool))), label="merge order")
        size = data.draw(st.integers(2, len(pool)), label="merge group size")
        group = [pool[i] for i in order[:size]]
        rest = [pool[i] for i in order[size:]]
        merged = _merge(combine_fn, group, run)
        if data.draw(st.booleans(), label="compact"):
            merged = combine_fn.compact(merged)
            run.steps.append("compact")
        if data.draw(st.booleans(), label="pickle"):
            merged = _pickled(merged)
            run.steps.append("pickle")
        step += 1
        rest.insert(data.draw(st.integers(0, len(rest)), label="position"), _Tracked(merged, f"merged{step}"))
        pool = rest
    accumulator = pool[0].accumulator
    for element in inputs[n - tail :]:
        accumulator = combine_fn.add_input(accumulator, element)
    if data.draw(st.booleans(), label="compact at the end"):
        accumulator = combine_fn.compact(accumulator)
    return combine_fn.extract_output(accumulator)
