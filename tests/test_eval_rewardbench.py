"""RewardBench scoring: hand-computed cases and an independent copy of the official rules."""
import math
import random

import pytest

from adajudge.eval import score_rewardbench
from adajudge.eval.rewardbench import EXAMPLE_COUNTS, SUBSET_MAPPING


def official_rewardbench(rows, rewards_chosen, rewards_rejected):
    """allenai/reward-bench as written: `scripts/run_rm.py` (1 if chosen > rejected else 0, per-subset
    num_correct / num_total) and `rewardbench.utils.calculate_scores_per_section` (weighted by
    EXAMPLE_COUNTS over the subsets present); the leaderboard's score is the mean of the four sections."""
    results = [1 if c > r else 0 for c, r in zip(rewards_chosen, rewards_rejected)]
    metrics = {}
    for subset in sorted({row["subset"] for row in rows}):
        picked = [res for res, row in zip(results, rows) if row["subset"] == subset]
        metrics[subset] = sum(picked) / len(picked)
    sections = {}
    for section, tests in SUBSET_MAPPING.items():
        total_weighted_score, total_examples = 0, 0
        for test in tests:
            if test in metrics:
                total_weighted_score += metrics[test] * EXAMPLE_COUNTS[test]
                total_examples += EXAMPLE_COUNTS[test]
        if total_examples > 0:
            sections[section] = 100 * total_weighted_score / total_examples
    return metrics, sections


def table_reward(table):
    """reward_fn looking each response up in `table` (a deterministic reward with chosen ties)."""
    return lambda prompts, responses: [table[response] for response in responses]


def length_mod3(prompts, responses):
    return [len(response) % 3 for response in responses]


def row(subset, chosen, rejected, prompt="q"):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "subset": subset}


def test_hand_computed_sections_and_tie_is_wrong():
    rows = [
        row("alpacaeval-easy", "good", "bad"),     # 2 > 1: right
        row("alpacaeval-easy", "tieA", "tieB"),    # 1 == 1: tie, wrong
        row("mt-bench-easy", "good", "bad"),       # right
        row("math-prm", "good", "bad"),            # right
        row("hep-python", "bad", "good"),          # wrong
        row("hep-python", "tieA", "tieB"),         # wrong
    ]
    table = {"good": 2, "bad": 1, "tieA": 1, "tieB": 1}
    result = score_rewardbench(rows, table_reward(table))
    assert result["subsets"] == {"alpacaeval-easy": 50.0, "hep-python": 0.0, "math-prm": 100.0,
                                 "mt-bench-easy": 100.0}
    assert result["counts"] == {"alpacaeval-easy": 2, "hep-python": 2, "math-prm": 1, "mt-bench-easy": 1}
    # Chat: (0.5 * 100 + 1.0 * 28) / (100 + 28); Reasoning: (1.0 * 984 + 0 * 164) / (984 + 164)
    assert result["Chat"] == pytest.approx(100 * 78 / 128, abs=1e-12)
    assert result["Reasoning"] == pytest.approx(100 * 984 / 1148, abs=1e-12)
    assert "Chat Hard" not in result and "Safety" not in result
    assert result["overall"] == pytest.approx((100 * 78 / 128 + 100 * 984 / 1148) / 2, abs=1e-12)


def test_math_and_code_are_each_half_of_reasoning():
    code = ("hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust")
    rows = [row("math-prm", "good", "bad")] * 3 + [row("math-prm", "bad", "good")]  # math 75 %
    for index, subset in enumerate(code):  # code: 2 of 6 subsets right
        rows.append(row(subset, *(("good", "bad") if index < 2 else ("bad", "good"))))
    result = score_rewardbench(rows, table_reward({"good": 1.0, "bad": 0.0}))
    assert result["Reasoning"] == pytest.approx((75.0 + 100 * 2 / 6) / 2, abs=1e-12)


def test_headline_is_mean_of_four_sections():
    rows = [row(subset, "good", "bad" if index % 2 else "good") for index, subset in
            enumerate(s for subsets in SUBSET_MAPPING.values() for s in subsets)]
    result = score_rewardbench(rows, table_reward({"good": 1, "bad": 0}))
    sections = [result[name] for name in SUBSET_MAPPING]
    assert len(sections) == 4
    assert result["overall"] == pytest.approx(sum(sections) / 4, abs=1e-12)


def test_matches_official_rules_with_ties_on_random_rows():
    rng = random.Random(0)
    subsets = [s for group in SUBSET_MAPPING.values() for s in group] + ["anthropic_helpful"]
    rows = []
    for index in range(600):
        rows.append(row(rng.choice(subsets), "x" * rng.randrange(1, 12), "y" * rng.randrange(1, 12),
                        prompt=f"prompt {index}"))
    result = score_rewardbench(rows, length_mod3, batch_size=37)
    chosen = [len(r["chosen"]) % 3 for r in rows]
    rejected = [len(r["rejected"]) % 3 for r in rows]
    assert any(c == r for c, r in zip(chosen, rejected)), "the reward must produce ties"
    metrics, sections = official_rewardbench(rows, chosen, rejected)
    assert result["subsets"] == pytest.approx({s: 100 * v for s, v in metrics.items()}, abs=1e-12)
    for name, value in sections.items():
        assert result[name] == pytest.approx(value, abs=1e-12)
    assert result["overall"] == pytest.approx(sum(sections.values()) / 4, abs=1e-12)
    assert "anthropic_helpful" in result["subsets"]  # scored, but in no section


def test_no_known_subset_gives_no_headline():
    result = score_rewardbench([row("shp", "good", "bad")], table_reward({"good": 1, "bad": 0}))
    assert result["overall"] is None and result["subsets"] == {"shp": 100.0}


def test_reward_fn_is_called_in_batches_of_at_most_batch_size():
    sizes = []

    def reward_fn(prompts, responses):
        assert len(prompts) == len(responses)
        sizes.append(len(responses))
        return [0.0] * len(responses)

    score_rewardbench([row("alpacaeval-easy", "a", "b")] * 5, reward_fn, batch_size=4)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("bad_row, error, match", [
    ({"prompt": "q", "chosen": "a", "subset": "math-prm"}, ValueError, "no 'rejected' field"),
    ({"prompt": "q", "chosen": 3, "rejected": "b", "subset": "math-prm"}, TypeError, r"\['chosen'\] must be a str"),
])
def test_bad_rows_raise(bad_row, error, match):
    with pytest.raises(error, match=match):
        score_rewardbench([row("math-prm", "a", "b"), bad_row], length_mod3)


@pytest.mark.parametrize("rows, error", [([], ValueError), ("abc", TypeError), ([["a"]], TypeError)])
def test_bad_row_containers_raise(rows, error):
    with pytest.raises(error, match="rows"):
        score_rewardbench(rows, length_mod3)


@pytest.mark.parametrize("returned, error, match", [
    (lambda n: [0.0] * (n - 1), ValueError, "returned 3 rewards .* expected 4"),
    (lambda n: "0" * n, TypeError, "list of floats"),
    (lambda n: [None] * n, TypeError, "real numbers"),
    (lambda n: [True] * n, TypeError, "real numbers"),
    (lambda n: [math.nan] * n, ValueError, "NaN"),
])
def test_bad_reward_fn_output_raises(returned, error, match):
    rows = [row("math-prm", "a", "b")] * 2
    with pytest.raises(error, match=match):
        score_rewardbench(rows, lambda prompts, responses: returned(len(responses)))


def test_reward_fn_may_return_numpy_and_torch():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    rows = [row("math-prm", "long answer", "short")]
    for convert in (np.asarray, torch.tensor):
        result = score_rewardbench(rows, lambda p, r: convert([float(len(x)) for x in r]))
        assert result["Reasoning"] == 100.0


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_batch_size_raises(batch_size, error):
    with pytest.raises(error, match="batch_size"):
        score_rewardbench([row("math-prm", "a", "b")], length_mod3, batch_size=batch_size)


def test_reward_fn_must_be_callable():
    with pytest.raises(TypeError, match="reward_fn must be callable"):
        score_rewardbench([row("math-prm", "a", "b")], None)
