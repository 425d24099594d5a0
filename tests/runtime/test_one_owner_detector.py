"""The tests' two-owner detector, on answers made up for it (no daemons, no etcd).

``assert_one_owner_at_a_time`` judges fenced probe answers by their time
windows: an answer shows its daemon served at some instant between the probe's
send and its answer. It must catch two owners whose windows prove an overlap,
and must pass a clean handover even when a slow answer straddles it.
"""

from __future__ import annotations

import pytest

from .test_runtime_etcd import Answer, assert_one_owner_at_a_time


def _answers(*windows: tuple[str, float, float]) -> list[Answer]:
    return [Answer(daemon, sent, answered) for daemon, sent, answered in windows]


@pytest.mark.parametrize(("first", "then"), [("a", "b"), ("b", "a")])
def test_a_clean_handover_passes(first: str, then: str) -> None:
    assert_one_owner_at_a_time(
        _answers((first, 0.0, 0.1), (first, 0.2, 0.3), (then, 0.5, 0.6), (then, 0.7, 0.8))
    )


def test_a_handover_inside_a_slow_answer_passes() -> None:
    # b's first answer is slow: sent at 0.2, answered at 0.5. a answering at 0.34 and
    # b serving at 0.45 is a clean handover, though in the order of sending it reads
    # a, b, a, b.
    assert_one_owner_at_a_time(
        _answers(("a", 0.0, 0.1), ("b", 0.2, 0.5), ("a", 0.3, 0.35), ("b", 0.6, 0.7))
    )


def test_overlapping_owners_are_caught_by_time_not_by_the_order_of_sending() -> None:
    # Two probers. a answers a probe sent at 0.5 (it answers at 0.9 and never again);
    # b had answered at 0.3, and answers again a probe sent at 0.4, after a's first
    # answer (0.1): whichever owned first, the other served inside its stretch.
    answers = _answers(("a", 0.0, 0.1), ("b", 0.2, 0.3), ("b", 0.4, 0.45), ("a", 0.5, 0.9))
    with pytest.raises(AssertionError, match=r"owners overlapped: a answered .* b answered"):
        assert_one_owner_at_a_time(answers)
    with pytest.raises(AssertionError, match="owners overlapped"):
        assert_one_owner_at_a_time(list(reversed(answers)))  # the list's order does not matter


def test_an_owner_that_serves_again_after_its_successor_is_caught() -> None:
    with pytest.raises(AssertionError, match="owners overlapped"):
        assert_one_owner_at_a_time(_answers(("a", 0.0, 0.1), ("b", 0.2, 0.3), ("a", 0.4, 0.5)))


def test_three_daemons_one_pair_overlapping_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"owners overlapped: b answered .* c answered"):
        assert_one_owner_at_a_time(
            _answers(
                ("a", 0.0, 0.1),
                ("b", 1.0, 1.1),
                ("c", 1.2, 1.3),
                ("b", 1.4, 1.5),
            )
        )
