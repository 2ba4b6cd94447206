"""Calling a user's pairwise judge with the two answers in the order the benchmark's protocol sets.

`judge_fn(question, answer_1, answer_2) -> 1 | 2 | None`: 1 when `answer_1` is the better answer, 2 when
`answer_2` is, None when the judge gave no verdict. The benchmark scorers fix the order in which each pair
is shown (JudgeBench: (A, B), then (B, A); RewardBench: a seeded random order per row), so a judge that
reorders the answers itself would undo the protocol.

How a judge opts in *(ours)*: a judge object that reorders answers on its own exposes
`judge_in_order(items) -> list[1 | 2 | None]`, one verdict per `(question, answer_1, answer_2)`, each
judged with `answer_1` shown first. The scorers call it once with every game of the benchmark (so a
batching judge batches them all), and call a judge without it once per game, taking it to show the
answers as given. `adajudge.rrm.PairwiseJudge` has `judge_in_order`, whatever its `randomize_order`.
"""
import numbers
from collections.abc import Callable, Sequence

from adajudge.validation import check_callable

JudgeFn = Callable[[str, str, str], "int | None"]


def verdicts_in_order(judge_fn: JudgeFn, items: Sequence[tuple[str, str, str]],
                      names: Sequence[str]) -> list[int | None]:
    """One verdict (1, 2 or None) per item, each judged with the answers in the item's order.

    `names[k]` says which game item `k` is (`rows[3], order (B, A)`), for the error raised when the judge
    returns anything but 1, 2 or None.
    """
    check_callable("judge_fn", judge_fn)
    in_order = getattr(judge_fn, "judge_in_order", None)
    if callable(in_order):
        verdicts = list(in_order(list(items)))
        if len(verdicts) != len(items):
            raise ValueError(f"judge_fn.judge_in_order: expected {len(items)} verdicts (one per item), "
                             f"got {len(verdicts)}")
    else:
        verdicts = [judge_fn(*item) for item in items]
    return [_check_verdict(verdict, name) for verdict, name in zip(verdicts, names)]


def _check_verdict(verdict, name: str) -> int | None:
    if verdict is None:
        return None
    if isinstance(verdict, bool) or not isinstance(verdict, numbers.Integral):
        raise TypeError(f"judge_fn({name}): expected 1, 2 or None, got {type(verdict).__name__} ({verdict!r})")
    if verdict not in (1, 2):
        raise ValueError(f"judge_fn({name}): expected 1, 2 or None, got {verdict!r}")
    return int(verdict)
