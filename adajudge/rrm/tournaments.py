"""Tournaments that turn pairwise verdicts into a choice among N candidates (docs/design.md §7).

``compare(i, j)`` returns 1 when candidate ``i`` wins, 2 when candidate ``j`` wins, None when the judge
gave no verdict. Candidate ``i`` is always shown first; debiasing the position is the judge's job
(``PairwiseJudge`` swaps the answers at random).

- ``knockout``: each round shuffles the survivors with ``random.Random(seed)`` and pairs them in that
  order, so who meets whom is a random permutation (as in the RRM authors' tournament data); with an
  odd count the survivor left over (a random one) gets a bye. Winners advance: N - 1 comparisons,
  ceil(log2 N) rounds, and every candidate has the same chance of winning under a coin-flip judge. A
  round holds its matches only (so the bracket's match count is the comparison count); the bye is the
  round's ``bye`` attribute.
- ``elo_ratings``: every pair once (N (N - 1) / 2 comparisons) in a seeded random order, each result
  applied with the ELO update below; the best rating wins. Defaults are evalica's ``elo`` (start 1000,
  scale 400, base 10, K = 4; dustalov/evalica ``python/evalica/__init__.py``, commit
  8c6e24b01f994e720221c31082ebecab8a5a16f8), with which the RRM scripts rate (microsoft/LMOps
  ``RRM-evaluation/scripts/elo_accuracy_results.py``, commit af6bc85e3e669ad5ec371d074c767905869c862e).

A missing verdict is decided by a coin flip from ``random.Random(seed)`` in both tournaments (the
knockout rule is *(ours)*: §7 names the coin flip for ELO only), and the match records that it was.

``best_of_n`` runs either tournament with a judge and, when the judge has ``judge_batch`` (as
``PairwiseJudge`` does), judges a whole knockout round, or the whole round-robin, in one call.
"""
import itertools
import numbers
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from adajudge.validation import check_callable, check_choice, check_float, check_int, check_str

from .verdict import Verdict

Compare = Callable[[int, int], Verdict]
# A round judge: the pairs of one round -> one (verdict, record) per pair.
_RoundJudge = Callable[[list[tuple[int, int]]], list[tuple[Verdict, Any]]]

METHODS = ("knockout", "elo")


class Match(NamedTuple):
    """One comparison of candidates ``first`` and ``second`` (shown in that order to ``compare``).

    ``verdict``: what the judge said (1: ``first`` won, 2: ``second`` won, None: no verdict);
    ``coin_flip``: True when the verdict was missing and a coin decided ``winner``;
    ``record``: what the judge returned beside the verdict (a ``Judgement`` with the generated texts
    for ``PairwiseJudge`` under ``best_of_n``), None for a plain ``compare``.
    """

    first: int
    second: int
    verdict: Verdict
    winner: int
    coin_flip: bool = False
    record: Any = None


class Round(tuple):
    """One knockout round: a tuple of its ``Match``es, plus ``bye``, the candidate that advanced without
    playing (the one left over by the round's shuffle when the survivors were odd), else None."""

    def __new__(cls, matches=(), bye: int | None = None):
        round_ = super().__new__(cls, matches)
        round_.bye = bye
        return round_

    def __repr__(self) -> str:
        return f"Round({tuple(self)!r}, bye={self.bye!r})"


class KnockoutResult(NamedTuple):
    """``winner``: index of the champion; ``bracket``: the ``Round``s in order (empty for one candidate)."""

    winner: int
    bracket: tuple[Round, ...]

    @property
    def matches(self) -> list[Match]:
        return [match for round_ in self.bracket for match in round_]

    @property
    def num_comparisons(self) -> int:
        return len(self.matches)


@dataclass(frozen=True)
class EloRatings(Sequence):
    """The final ratings, indexable like a list of floats (``ratings[i]`` is candidate ``i``'s).

    ``matches`` are in the order they were applied; ``winner`` is the best-rated index (the lowest
    index among equals); ``ranking`` lists the indices best first.
    """

    ratings: tuple[float, ...]
    matches: tuple[Match, ...]

    def __getitem__(self, index):
        return self.ratings[index]

    def __len__(self) -> int:
        return len(self.ratings)

    @property
    def ranking(self) -> list[int]:
        return sorted(range(len(self.ratings)), key=lambda i: (-self.ratings[i], i))

    @property
    def winner(self) -> int:
        return self.ranking[0]

    @property
    def num_comparisons(self) -> int:
        return len(self.matches)


def _check_candidates(candidates) -> int:
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise TypeError(f"candidates: expected a sequence (list or tuple), got {type(candidates).__name__}")
    if len(candidates) == 0:
        raise ValueError("candidates: expected at least one candidate, got an empty sequence")
    return len(candidates)


def _check_verdict(verdict, name: str) -> Verdict:
    if verdict is None:
        return None
    if isinstance(verdict, numbers.Integral) and not isinstance(verdict, bool) and verdict in (1, 2):
        return int(verdict)
    raise ValueError(f"{name}: expected 1, 2 or None, got {verdict!r}")


def _round_judge(compare) -> _RoundJudge:
    check_callable("compare", compare)
    return lambda pairs: [(_check_verdict(compare(i, j), f"compare({i}, {j})"), None) for i, j in pairs]


def _decide(pair, verdict, record, rng) -> Match:
    first, second = pair
    if verdict is None:
        winner = first if rng.random() < 0.5 else second
        return Match(first, second, None, winner, coin_flip=True, record=record)
    return Match(first, second, verdict, first if verdict == 1 else second, record=record)


def _run_knockout(num_candidates: int, judge_round: _RoundJudge, seed: int) -> KnockoutResult:
    rng = random.Random(seed)
    alive = list(range(num_candidates))
    bracket = []
    while len(alive) > 1:
        rng.shuffle(alive)
        pairs = list(zip(alive[0::2], alive[1::2]))
        results = judge_round(pairs)
        bye = alive[-1] if len(alive) % 2 else None
        round_ = Round([_decide(pair, verdict, record, rng) for pair, (verdict, record) in zip(pairs, results)], bye)
        bracket.append(round_)
        alive = [match.winner for match in round_] + ([bye] if bye is not None else [])
    return KnockoutResult(alive[0], tuple(bracket))


def _run_elo(num_candidates, judge_round, *, k_factor, initial_rating, scale, base, seed) -> EloRatings:
    k_factor = check_float("k_factor", k_factor, greater_than=0)
    scale = check_float("scale", scale, greater_than=0)
    base = check_float("base", base, greater_than=1)
    initial_rating = check_float("initial_rating", initial_rating)
    rng = random.Random(seed)
    pairs = list(itertools.combinations(range(num_candidates), 2))
    rng.shuffle(pairs)
    results = judge_round(pairs) if pairs else []
    ratings = [initial_rating] * num_candidates
    matches = []
    for pair, (verdict, record) in zip(pairs, results):
        match = _decide(pair, verdict, record, rng)
        i, j = pair
        expected_i = 1.0 / (1.0 + base ** ((ratings[j] - ratings[i]) / scale))
        delta = k_factor * ((1.0 if match.winner == i else 0.0) - expected_i)
        ratings[i] += delta
        ratings[j] -= delta
        matches.append(match)
    return EloRatings(tuple(ratings), tuple(matches))


def knockout(candidates: Sequence, compare: Compare, *, seed: int = 0) -> KnockoutResult:
    """Single-elimination bracket over ``candidates``; returns the winner's index and the bracket.

    Each round shuffles the survivors with ``random.Random(seed)`` and pairs them in that order (the
    first of a pair is shown first); with an odd count the one left over gets a bye (``Round.bye``) and
    advances unplayed. Exactly ``len(candidates) - 1`` calls to ``compare``; one candidate gives an empty
    bracket and no call. A missing verdict is a coin flip from the same generator.

    >>> knockout(["a", "b", "c"], lambda i, j: 1 if i > j else 2).winner
    2
    """
    num_candidates = _check_candidates(candidates)
    return _run_knockout(num_candidates, _round_judge(compare), check_int("seed", seed))


def elo_ratings(
    candidates: Sequence,
    compare: Compare,
    *,
    k_factor: float = 4.0,
    initial_rating: float = 1000.0,
    scale: float = 400.0,
    base: float = 10.0,
    seed: int = 0,
) -> EloRatings:
    """ELO ratings from a round-robin: every pair ``(i, j)``, ``i < j``, compared once.

    The pairs are played in an order shuffled by ``random.Random(seed)``, and after each match::

        E_i = 1 / (1 + base ** ((R_j - R_i) / scale))      # expected score of i
        S_i = 1 if i won else 0
        R_i += k_factor * (S_i - E_i);   R_j -= k_factor * (S_i - E_i)

    starting from ``initial_rating`` for everyone (defaults: evalica's, with which the RRM scripts rate:
    1000, scale 400, base 10, K = 4). A missing verdict is a coin flip from the same generator. The
    result indexes like a list of floats; ``.winner`` is the best-rated candidate.
    """
    num_candidates = _check_candidates(candidates)
    return _run_elo(
        num_candidates, _round_judge(compare), k_factor=k_factor, initial_rating=initial_rating,
        scale=scale, base=base, seed=check_int("seed", seed),
    )


def _judge_rounds(question, candidates, judge) -> _RoundJudge:
    batch = getattr(judge, "judge_batch", None)
    if callable(batch):
        def judge_round(pairs):
            judgements = batch([(question, candidates[i], candidates[j]) for i, j in pairs])
            return [(_check_verdict(item.verdict, f"judge.judge_batch(...)[{k}].verdict"), item)
                    for k, item in enumerate(judgements)]
        return judge_round
    check_callable("judge", judge)
    return _round_judge(lambda i, j: judge(question, candidates[i], candidates[j]))


def best_of_n(
    question: str,
    candidates: Sequence[str],
    judge,
    method: str = "knockout",
    *,
    seed: int = 0,
    k_factor: float = 4.0,
) -> KnockoutResult | EloRatings:
    """Pick the best answer to ``question`` among ``candidates`` with a pairwise ``judge``.

    ``judge(question, answer_1, answer_2) -> 1 | 2 | None``; a judge with ``judge_batch(items)`` (a list
    of ``(question, answer_1, answer_2)`` -> objects with ``.verdict``) is called once per knockout round,
    or once for the whole round-robin, and its objects are kept as each ``Match.record``.
    ``method``: ``"knockout"`` (N - 1 comparisons) or ``"elo"`` (N (N - 1) / 2, ``k_factor`` applies).
    Returns the tournament's result; ``.winner`` indexes ``candidates``.
    """
    check_str("question", question)
    check_choice("method", method, METHODS)
    num_candidates = _check_candidates(candidates)
    seed = check_int("seed", seed)
    judge_round = _judge_rounds(question, candidates, judge)
    if method == "knockout":
        return _run_knockout(num_candidates, judge_round, seed)
    return _run_elo(
        num_candidates, judge_round, k_factor=k_factor, initial_rating=1000.0, scale=400.0, base=10.0,
        seed=seed,
    )
