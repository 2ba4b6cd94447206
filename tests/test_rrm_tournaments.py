"""Knockout and ELO tournaments on deterministic, noisy and missing verdicts (docs/design.md §7)."""
import math
import random
from dataclasses import dataclass

import pytest

from adajudge.rrm import EloRatings, KnockoutResult, Round, best_of_n, elo_ratings, knockout


def strict_order(quality):
    """compare() for candidates whose true strength is `quality[i]`; counts its calls."""
    calls = []

    def compare(i, j):
        assert i != j
        calls.append((i, j))
        return 1 if quality[i] > quality[j] else 2

    return compare, calls


def shuffled_quality(n, seed):
    quality = list(range(n))
    random.Random(seed).shuffle(quality)
    return quality


def spearman(xs, ys):
    """Spearman rank correlation of two sequences without ties."""
    def ranks(values):
        order = sorted(range(len(values)), key=values.__getitem__)
        out = [0] * len(values)
        for rank, index in enumerate(order):
            out[index] = rank
        return out

    n = len(xs)
    rx, ry = ranks(xs), ranks(ys)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry)) / (n * (n * n - 1))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knockout_strict_order_picks_best_with_n_minus_1_comparisons(n, seed):
    quality = shuffled_quality(n, seed)
    compare, calls = strict_order(quality)
    result = knockout([f"answer {i}" for i in range(n)], compare)
    assert isinstance(result, KnockoutResult)
    assert result.winner == quality.index(n - 1)
    assert len(calls) == n - 1 == result.num_comparisons
    assert len(result.bracket) == math.ceil(math.log2(n)) if n > 1 else result.bracket == ()
    winner, bracket = result  # also unpacks as (winner, bracket)
    assert (winner, bracket) == (result.winner, result.bracket)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
def test_knockout_bracket_structure(n):
    compare, calls = strict_order(shuffled_quality(n, 7))
    result = knockout(list(range(n)), compare)
    assert [(m.first, m.second) for m in result.matches] == calls  # the bracket records every comparison
    assert sum(len(round_) for round_ in result.bracket) == n - 1
    alive = list(range(n))
    losers = []
    for round_ in result.bracket:
        assert isinstance(round_, Round)
        players = [p for match in round_ for p in (match.first, match.second)]
        assert (round_.bye is None) == (len(alive) % 2 == 0) and round_.bye not in players
        assert sorted(players + [round_.bye] * (round_.bye is not None)) == sorted(alive)
        for match in round_:
            assert match.winner == (match.first if match.verdict == 1 else match.second)
            losers.append(match.first if match.winner == match.second else match.second)
        alive = [match.winner for match in round_] + [round_.bye] * (round_.bye is not None)
    assert alive == [result.winner]
    assert sorted(losers + [result.winner]) == list(range(n))


def test_knockout_single_candidate_needs_no_comparison():
    def compare(i, j):
        raise AssertionError("no comparison expected")

    result = knockout(["only"], compare)
    assert result.winner == 0 and result.bracket == () and result.num_comparisons == 0


def chi_square(counts):
    """Pearson's statistic of `counts` against equal expected counts."""
    expected = sum(counts) / len(counts)
    return sum((count - expected) ** 2 / expected for count in counts)


# chi-square critical values at p = 0.001 for 4, 5 and 6 degrees of freedom
CHI2_999 = {5: 18.47, 6: 20.52, 7: 22.46}


@pytest.mark.parametrize("n", [5, 6, 7])
def test_knockout_is_fair_under_a_coin_flip_judge(n):
    """Every candidate wins 1 / n of the time when every comparison is a fair coin (2000 seeded tournaments:
    each count is within 4.5 standard deviations of 2000 / n, and Pearson's chi-square is below its
    p = 0.001 critical value). Pairing survivors in list order with the bye always last fails this: with
    n = 5 the last candidate, which skips the first round, wins about half the time."""
    runs = 2000
    wins = [0] * n
    for seed in range(runs):
        coin = random.Random(10_000 + seed)
        result = knockout(range(n), lambda i, j: coin.choice((1, 2)), seed=seed)
        assert result.num_comparisons == n - 1
        wins[result.winner] += 1
    mean, sd = runs / n, math.sqrt(runs * (1 / n) * (1 - 1 / n))
    assert all(abs(count - mean) <= 4.5 * sd for count in wins), wins
    assert chi_square(wins) < CHI2_999[n], wins


def test_knockout_byes_go_to_a_random_survivor():
    byes = [0] * 5
    for seed in range(1000):
        byes[knockout(range(5), lambda i, j: 1, seed=seed).bracket[0].bye] += 1
    assert chi_square(byes) < CHI2_999[5], byes


def test_knockout_missing_verdicts_are_seeded_fair_coin_flips():
    wins = [0] * 4
    for seed in range(400):
        result = knockout(range(4), lambda i, j: None, seed=seed)
        assert all(match.coin_flip and match.verdict is None for match in result.matches)
        assert result == knockout(range(4), lambda i, j: None, seed=seed)  # same seed, same bracket
        wins[result.winner] += 1
    assert all(60 <= w <= 140 for w in wins), wins  # each candidate wins ~100 of 400 under fair coins


def noisy_order(quality, seed, *, wrong=0.1, missing=0.1):
    rng = random.Random(seed)

    def compare(i, j):
        draw = rng.random()
        if draw < missing:
            return None
        right = 1 if quality[i] > quality[j] else 2
        return 3 - right if draw < missing + wrong else right

    return compare


def test_knockout_noisy_comparisons_are_reproducible_and_count_coin_flips():
    quality = shuffled_quality(13, 3)
    first = knockout(range(13), noisy_order(quality, 5), seed=11)
    again = knockout(range(13), noisy_order(quality, 5), seed=11)
    assert first == again
    assert first.num_comparisons == 12
    assert all(match.coin_flip == (match.verdict is None) for match in first.matches)


def test_knockout_noisy_comparisons_usually_pick_the_best():
    hits = sum(
        knockout(range(8), noisy_order(shuffled_quality(8, s), s, wrong=0.05, missing=0.05), seed=s).winner
        == shuffled_quality(8, s).index(7)
        for s in range(100)
    )
    # the best must win 3 matches, each right with p >= 0.95 + 0.05 / 2: P(win all) >= 0.93
    assert hits >= 80, hits


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_elo_strict_order_of_8_ranks_best_first(seed):
    quality = shuffled_quality(8, seed)
    compare, calls = strict_order(quality)
    ratings = elo_ratings(list(range(8)), compare, seed=seed)
    assert isinstance(ratings, EloRatings)
    assert len(ratings) == 8 and all(isinstance(r, float) for r in ratings)
    assert max(range(8), key=ratings.__getitem__) == quality.index(7) == ratings.winner
    assert ratings.ranking[0] == quality.index(7)
    assert spearman(list(ratings), quality) >= 0.9
    assert sorted(tuple(sorted(call)) for call in calls) == [(i, j) for i in range(8) for j in range(i + 1, 8)]
    assert ratings.num_comparisons == 28


def test_elo_update_formula():
    # one match from equal ratings: expected score 1/2, winner gains K/2
    ratings = elo_ratings(["a", "b"], lambda i, j: 2)  # evalica's defaults: K = 4
    assert list(ratings) == pytest.approx([998.0, 1002.0])
    ratings = elo_ratings(["a", "b"], lambda i, j: 1, k_factor=10.0, initial_rating=1500.0)
    assert list(ratings) == pytest.approx([1505.0, 1495.0])
    # three candidates, hand-computed in the order the matches were applied
    result = elo_ratings(range(3), lambda i, j: 1 if i < j else 2, seed=4)
    expected = [1000.0] * 3
    for match in result.matches:
        i, j = match.first, match.second
        e_i = 1 / (1 + 10 ** ((expected[j] - expected[i]) / 400))
        s_i = 1.0 if match.winner == i else 0.0
        expected[i] += 4 * (s_i - e_i)
        expected[j] -= 4 * (s_i - e_i)
    assert list(result) == pytest.approx(expected)
    assert result.ranking == [0, 1, 2]


def test_elo_scale_and_base_change_the_expected_score():
    # after a first win the second match's expected score depends on scale and base
    def ratings_for(**options):
        return list(elo_ratings(range(3), lambda i, j: 1 if i < j else 2, seed=0, **options))

    assert ratings_for() != pytest.approx(ratings_for(scale=100.0))
    assert ratings_for() != pytest.approx(ratings_for(base=2.0))


def test_elo_single_candidate():
    ratings = elo_ratings(["x"], lambda i, j: 1)
    assert list(ratings) == [1000.0] and ratings.winner == 0 and ratings.matches == ()


def test_elo_missing_verdicts_are_seeded_coin_flips_and_ratings_stay_zero_sum():
    ratings = elo_ratings(range(6), lambda i, j: None, seed=9)
    assert all(match.coin_flip for match in ratings.matches)
    assert sum(ratings) == pytest.approx(6000.0)
    assert ratings == elo_ratings(range(6), lambda i, j: None, seed=9)
    assert list(ratings) != list(elo_ratings(range(6), lambda i, j: None, seed=10))


def test_elo_noisy_comparisons_keep_the_order_on_average():
    correlations = []
    for seed in range(20):
        quality = shuffled_quality(8, seed)
        ratings = elo_ratings(range(8), noisy_order(quality, seed), seed=seed)
        correlations.append(spearman(list(ratings), quality))
    assert sum(correlations) / len(correlations) >= 0.8, correlations


@dataclass
class Reply:
    verdict: int | None


class BatchJudge:
    """A judge with judge_batch, preferring the longer answer; records each batch."""

    def __init__(self):
        self.batches = []

    def judge_batch(self, items):
        self.batches.append(list(items))
        return [Reply(1 if len(a) > len(b) else 2) for _, a, b in items]


@pytest.mark.parametrize("method", ["knockout", "elo"])
def test_best_of_n_with_a_plain_judge_function(method):
    candidates = ["aa", "a", "aaaaa", "aaa", "aaaa"]
    seen = []

    def judge(question, answer_1, answer_2):
        seen.append(question)
        return 1 if len(answer_1) > len(answer_2) else 2

    result = best_of_n("q?", candidates, judge, method=method)
    assert result.winner == 2
    assert set(seen) == {"q?"}
    assert len(seen) == (4 if method == "knockout" else 10)


def test_best_of_n_batches_each_knockout_round_and_keeps_records():
    judge = BatchJudge()
    candidates = ["a" * length for length in (3, 1, 4, 8, 5, 9, 2, 6, 7)]
    result = best_of_n("q", candidates, judge, method="knockout")
    assert result.winner == 5
    assert [len(batch) for batch in judge.batches] == [4, 2, 1, 1]  # 9 -> 5 -> 3 -> 2 -> 1
    assert len(result.matches) == 8 and all(isinstance(match.record, Reply) for match in result.matches)


def test_best_of_n_elo_judges_the_round_robin_in_one_batch():
    judge = BatchJudge()
    result = best_of_n("q", ["a" * length for length in (2, 5, 1, 3)], judge, method="elo", k_factor=16.0)
    assert [len(batch) for batch in judge.batches] == [6]
    assert result.winner == 1 and result.ranking == [1, 3, 0, 2]


def test_validation_errors():
    compare = lambda i, j: 1  # noqa: E731
    with pytest.raises(ValueError, match="candidates: expected at least one candidate, got an empty sequence"):
        knockout([], compare)
    with pytest.raises(ValueError, match="candidates: expected at least one candidate"):
        elo_ratings((), compare)
    with pytest.raises(TypeError, match=r"candidates: expected a sequence \(list or tuple\), got str"):
        knockout("abc", compare)
    with pytest.raises(TypeError, match="candidates: expected a sequence .* got set"):
        elo_ratings({1, 2}, compare)
    with pytest.raises(TypeError, match="compare: expected a callable, got str"):
        knockout([1, 2], "first")
    for bad in (3, 0, "1", True, 1.0):
        with pytest.raises(ValueError, match=r"compare\([01], [01]\): expected 1, 2 or None, got"):
            knockout([1, 2], lambda i, j, bad=bad: bad)
    with pytest.raises(ValueError, match=r"k_factor: expected a finite float > 0, got 0.0"):
        elo_ratings([1, 2], compare, k_factor=0)
    with pytest.raises(ValueError, match="scale: expected a finite float > 0, got -400.0"):
        elo_ratings([1, 2], compare, scale=-400)
    with pytest.raises(ValueError, match="base: expected a finite float > 1, got 1.0"):
        elo_ratings([1, 2], compare, base=1)
    with pytest.raises(TypeError, match="initial_rating: expected a float, got str"):
        elo_ratings([1, 2], compare, initial_rating="1000")
    with pytest.raises(TypeError, match="seed: expected an int, got float"):
        knockout([1, 2], compare, seed=0.5)
    with pytest.raises(ValueError, match=r"method: expected one of \('knockout', 'elo'\), got 'swiss'"):
        best_of_n("q", ["a", "b"], lambda q, a, b: 1, method="swiss")
    with pytest.raises(TypeError, match="question: expected a str, got NoneType"):
        best_of_n(None, ["a", "b"], lambda q, a, b: 1)
    with pytest.raises(TypeError, match="judge: expected a callable, got int"):
        best_of_n("q", ["a", "b"], 42)
    with pytest.raises(ValueError, match=r"compare\([01], [01]\): expected 1, 2 or None, got 'Assistant 1'"):
        best_of_n("q", ["a", "b"], lambda q, a, b: "Assistant 1")
