"""RM-Bench scoring: hand-computed cases and an exact-arithmetic oracle written from the published rules."""
import os
import random
from fractions import Fraction
from pathlib import Path

import pytest

from adajudge.eval import loaders, score_rm_bench


def data_dir() -> Path:
    return Path(os.environ.get("ADAJUDGE_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


def exact_scores(score_pairs):
    """The published rule for one set of rows, in exact rational arithmetic, counted row by row: each row
    adds its wins among the 3 pairs with the chosen style plainer than the rejected one (hard), the 3 of
    the same style (normal) and the 3 with it fancier (easy); each is its count over 3 x rows; the set
    scores their mean. `score_pairs`: (chosen rewards [3], rejected rewards [3]) per row; percentages."""
    counts = {"hard": 0, "normal": 0, "easy": 0}
    for chosen, rejected in score_pairs:
        for i in range(3):
            for j in range(3):
                kind = "hard" if i < j else "normal" if i == j else "easy"
                counts[kind] += chosen[i] > rejected[j]
    scores = {kind: Fraction(100 * count, 3 * len(score_pairs)) for kind, count in counts.items()}
    scores["avg"] = sum(scores.values()) / 3
    return scores


def exact_by_domain(rows, reward):
    """Rows split by the first of chat, math, code, safety their domain starts with; per domain the exact
    scores; the headline hard / normal / easy / avg are the plain means over the domains."""
    groups = {}
    for row in rows:
        domain = next(d for d in ("chat", "math", "code", "safety") if row["domain"].startswith(d))
        groups.setdefault(domain, []).append(([reward(t) for t in row["chosen"]], [reward(t) for t in row["rejected"]]))
    by_domain = {domain: exact_scores(pairs) for domain, pairs in groups.items()}
    headline = {key: sum(d[key] for d in by_domain.values()) / len(by_domain)
                for key in ("hard", "normal", "easy", "avg")}
    return by_domain, headline


def length_mod3(prompts, responses):
    return [len(response) % 3 for response in responses]


def table_reward(table):
    return lambda prompts, responses: [table[response] for response in responses]


def rm_row(chosen, rejected, **extra):
    return {"id": 0, "prompt": "q", "chosen": list(chosen), "rejected": list(rejected), **extra}


def test_hand_computed_matrix():
    # chosen rewards (3, 2, 1) vs rejected (2, 2, 0): A = [[1, 1, 1], [0, 0, 1], [0, 0, 1]] (2 vs 2 ties lose)
    table = {"c0": 3, "c1": 2, "c2": 1, "r0": 2, "r1": 2, "r2": 0}
    result = score_rm_bench([rm_row(["c0", "c1", "c2"], ["r0", "r1", "r2"])], table_reward(table))
    assert result["matrix"] == [[100.0, 100.0, 100.0], [0.0, 0.0, 100.0], [0.0, 0.0, 100.0]]
    assert result["hard"] == pytest.approx(100.0)
    assert result["normal"] == pytest.approx(200 / 3)
    assert result["easy"] == pytest.approx(0.0)
    assert result["avg"] == pytest.approx((100 + 200 / 3) / 3)
    assert "domains" not in result and result["counts"] == {"all": 1}


def test_hard_is_upper_triangle_chosen_plainer_than_rejected():
    # A reward that only likes long answers: chosen concise (short) loses to rejected markdown (long).
    table = {"c0": 1, "c1": 5, "c2": 9, "r0": 0, "r1": 4, "r2": 8}
    result = score_rm_bench([rm_row(["c0", "c1", "c2"], ["r0", "r1", "r2"])], table_reward(table))
    assert result["hard"] == 0.0 and result["normal"] == 100.0 and result["easy"] == 100.0


def test_domains_pool_safety_and_headline_is_mean_of_domains():
    table = {"w": 1, "l": 0}
    win, lose = (["w"] * 3, ["l"] * 3), (["l"] * 3, ["w"] * 3)
    rows = [rm_row(*win, domain="chat"), rm_row(*lose, domain="chat"),
            rm_row(*win, domain="safety-refuse"), rm_row(*win, domain="safety-refuse"),
            rm_row(*lose, domain="safety-response")]
    result = score_rm_bench(rows, table_reward(table))
    assert list(result["domains"]) == ["chat", "safety"]
    assert result["domains"]["chat"]["avg"] == pytest.approx(50.0)
    assert result["domains"]["safety"]["avg"] == pytest.approx(200 / 3)  # 2 of 3 pooled rows, not (100+0)/2
    assert result["avg"] == pytest.approx((50.0 + 200 / 3) / 2)
    assert result["hard"] == pytest.approx((50.0 + 200 / 3) / 2)  # mean over the domains
    assert result["pooled"]["hard"] == pytest.approx(60.0)  # all 5 rows as one set, under its own key
    assert result["counts"] == {"all": 5, "chat": 2, "safety": 3}


def test_headline_hard_normal_easy_are_means_over_domains_not_pooled():
    # chat: 1 row, all wins; math: 3 rows, hard lost everywhere. Pooled hard = 1/4, mean over domains = 1/2.
    table = {"c0": 1, "c1": 5, "c2": 9, "r0": 0, "r1": 4, "r2": 8, "w": 1, "l": 0}
    rows = [rm_row(["w"] * 3, ["l"] * 3, domain="chat")] + [
        rm_row(["c0", "c1", "c2"], ["r0", "r1", "r2"], domain="math")] * 3
    result = score_rm_bench(rows, table_reward(table))
    assert result["hard"] == pytest.approx(50.0) and result["pooled"]["hard"] == pytest.approx(25.0)
    assert result["normal"] == result["easy"] == 100.0
    assert sum(result["matrix"], []) == pytest.approx([100.0, 50.0, 50.0, 100.0, 100.0, 50.0, 100.0, 100.0, 100.0])


def test_matches_the_exact_rule_with_ties_on_random_rows():
    rng = random.Random(1)
    domains = ["chat", "code", "math", "safety-refuse", "safety-response"]

    def text():
        return "z" * rng.randrange(1, 10)

    rows = [rm_row([text() for _ in range(3)], [text() for _ in range(3)], domain=rng.choice(domains))
            for _ in range(300)]
    result = score_rm_bench(rows, length_mod3, batch_size=50)
    by_domain, headline = exact_by_domain(rows, lambda t: len(t) % 3)
    assert list(result["domains"]) == ["chat", "math", "code", "safety"]
    for domain, scores in by_domain.items():
        for key, value in scores.items():
            assert result["domains"][domain][key] == pytest.approx(float(value), abs=1e-12), (domain, key)
    for key, value in headline.items():
        assert result[key] == pytest.approx(float(value), abs=1e-12), key
    pooled = exact_scores([([len(t) % 3 for t in r["chosen"]], [len(t) % 3 for t in r["rejected"]]) for r in rows])
    for key in ("hard", "normal", "easy", "avg"):
        assert result["pooled"][key] == pytest.approx(float(pooled[key]), abs=1e-12)


@pytest.mark.parametrize("name", ["rm-bench-chat.json", "rm-bench-safety-refuse.json"])
def test_real_file_matches_official_rules(name):
    path = data_dir() / name
    if not path.is_file():
        pytest.skip(f"benchmark file {path} absent (set ADAJUDGE_DATA to the shared data folder)")
    rows = loaders.load_rm_bench(path)
    result = score_rm_bench(rows, length_mod3)
    by_domain, headline = exact_by_domain(rows, lambda t: len(t) % 3)
    (domain,) = by_domain
    assert list(result["domains"]) == [domain]
    for key in ("hard", "normal", "easy", "avg"):
        assert result["domains"][domain][key] == pytest.approx(float(by_domain[domain][key]), abs=1e-12)
        assert result[key] == pytest.approx(float(headline[key]), abs=1e-12)
        assert result["pooled"][key] == result[key]  # one domain: pooled = domain


def test_rows_must_all_or_none_carry_a_domain():
    rows = [rm_row("abc", "def", domain="chat"), rm_row("abc", "def")]
    with pytest.raises(ValueError, match=r"rows\[1\]: expected a 'domain' field, as the other rows have"):
        score_rm_bench(rows, length_mod3)


def test_a_domain_outside_the_four_raises():
    with pytest.raises(ValueError, match=r"rows\[0\]\['domain'\]: expected a domain starting with one of .* got 'poetry'"):
        score_rm_bench([rm_row("abc", "def", domain="poetry")], length_mod3)


@pytest.mark.parametrize("chosen, error, match", [
    (["a", "b"], ValueError, r"rows\[0\]\['chosen'\]: expected a list of 3 responses, got 2"),
    ("abc", TypeError, r"rows\[0\]\['chosen'\]: expected a list of 3 str, got str"),
    (["a", "b", 3], TypeError, r"rows\[0\]\['chosen'\]\[2\]: expected a str, got int"),
])
def test_bad_response_lists_raise(chosen, error, match):
    with pytest.raises(error, match=match):
        score_rm_bench([{"prompt": "q", "chosen": chosen, "rejected": ["a", "b", "c"]}], length_mod3)


def test_wrong_reward_count_raises():
    with pytest.raises(ValueError, match=r"reward_fn\(pairs \[0:6\]\): expected 6 rewards"):
        score_rm_bench([rm_row("abc", "def")], lambda p, r: [0.0])
