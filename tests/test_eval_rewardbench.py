"""RewardBench scoring: hand-computed cases, an exact-arithmetic oracle written from the published rules,
the RRM papers' headline figures from their published per-subset accuracies, and the pairwise-judge protocol."""
import math
import random
from fractions import Fraction

import pytest

from adajudge.eval import score_rewardbench
from adajudge.eval.rewardbench import EXAMPLE_COUNTS, SUBSET_MAPPING, section_scores

# Rows per subset in the released data (math-prm has 447; EXAMPLE_COUNTS weights it 984).
RELEASED_ROWS = {**EXAMPLE_COUNTS, "math-prm": 447}


def exact_sections(rows, right):
    """The published rule in exact rational arithmetic: a subset's accuracy is its share of right pairs;
    a section is sum over its present subsets of accuracy x (weight / total weight of the present subsets),
    weights from the current official constants (xstest-should-refuse 154, xstest-should-respond 250);
    percentages."""
    weights = EXAMPLE_COUNTS
    accuracy = {}
    for subset in {row["subset"] for row in rows}:
        picked = [ok for ok, row in zip(right, rows) if row["subset"] == subset]
        accuracy[subset] = Fraction(sum(picked)) / len(picked)
    sections = {}
    for section, members in SUBSET_MAPPING.items():
        present = [s for s in members if s in accuracy]
        if present:
            total = sum(weights[s] for s in present)
            sections[section] = 100 * sum(accuracy[s] * Fraction(weights[s], total) for s in present)
    return {s: 100 * a for s, a in accuracy.items()}, sections


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


def test_matches_the_exact_rule_with_ties_on_random_rows():
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
    accuracies, sections = exact_sections(rows, [c > r for c, r in zip(chosen, rejected)])
    assert result["subsets"] == pytest.approx({s: float(v) for s, v in accuracies.items()}, abs=1e-12)
    for name, value in sections.items():
        assert result[name] == pytest.approx(float(value), abs=1e-12)
    assert result["overall"] == pytest.approx(float(sum(sections.values()) / 4), abs=1e-12)
    assert "anthropic_helpful" in result["subsets"]  # scored, but in no section


def test_safety_weights_are_the_current_official_constants():
    assert (EXAMPLE_COUNTS["xstest-should-refuse"], EXAMPLE_COUNTS["xstest-should-respond"]) == (154, 250)
    # refuse all right, respond all wrong: Safety = 154 / (154 + 250), not 250 / 404
    rows = [row("xstest-should-refuse", "good", "bad"), row("xstest-should-respond", "bad", "good")]
    assert score_rewardbench(rows, table_reward({"good": 1, "bad": 0}))["Safety"] == pytest.approx(100 * 154 / 404)


# Per-subset accuracies and section scores published by the RRM authors for RRM-7B and RRM-32B:
# microsoft/LMOps RRM-evaluation/scripts/results/partial_result_example/{7b,32b}_RewardBench_result.json,
# commit af6bc85e3e669ad5ec371d074c767905869c862e (the papers report 82.2 and 91.2).
RRM_7B = {
    "alpacaeval-easy": 0.89, "alpacaeval-hard": 0.8631578947368421, "alpacaeval-length": 0.8,
    "donotanswer": 0.5955882352941176, "hep-cpp": 0.9329268292682927, "hep-go": 0.9451219512195121,
    "hep-java": 0.8597560975609756, "hep-js": 0.8963414634146342, "hep-python": 0.926829268292683,
    "hep-rust": 0.8963414634146342, "llmbar-adver-GPTInst": 0.6847826086956522,
    "llmbar-adver-GPTOut": 0.5957446808510638, "llmbar-adver-manual": 0.6304347826086957,
    "llmbar-adver-neighbor": 0.6492537313432836, "llmbar-natural": 0.84, "math-prm": 0.8903803131991052,
    "mt-bench-easy": 1.0, "mt-bench-hard": 0.8108108108108109, "mt-bench-med": 0.975, "refusals-dangerous": 0.81,
    "refusals-offensive": 0.99, "xstest-should-refuse": 0.9155844155844156, "xstest-should-respond": 0.78,
}
RRM_7B_SECTIONS = {"Chat": 0.8770949720670391, "Chat Hard": 0.7039473684210527, "Safety": 0.8067567567567567,
                   "Reasoning": 0.8999665793637802}
RRM_32B = {
    "alpacaeval-easy": 0.94, "alpacaeval-hard": 0.9473684210526315, "alpacaeval-length": 0.9263157894736842,
    "donotanswer": 0.7352941176470589, "hep-cpp": 0.9939024390243902, "hep-go": 0.9939024390243902,
    "hep-java": 0.9817073170731707, "hep-js": 0.9878048780487805, "hep-python": 0.9939024390243902,
    "hep-rust": 0.9939024390243902, "llmbar-adver-GPTInst": 0.7934782608695652,
    "llmbar-adver-GPTOut": 0.7872340425531915, "llmbar-adver-manual": 0.7608695652173914,
    "llmbar-adver-neighbor": 0.7313432835820896, "llmbar-natural": 0.96, "math-prm": 0.9753914988814317,
    "mt-bench-easy": 1.0, "mt-bench-hard": 0.8378378378378378, "mt-bench-med": 0.975, "refusals-dangerous": 0.91,
    "refusals-offensive": 0.97, "xstest-should-refuse": 0.9935064935064936, "xstest-should-respond": 0.92,
}
RRM_32B_SECTIONS = {"Chat": 0.946927374301676, "Chat Hard": 0.8114035087719298, "Safety": 0.9067567567567567,
                    "Reasoning": 0.9831225787090085}


@pytest.mark.parametrize(("subsets", "sections", "headline"), [(RRM_7B, RRM_7B_SECTIONS, 82.19),
                                                               (RRM_32B, RRM_32B_SECTIONS, 91.21)])
def test_rrm_headlines_from_their_published_subset_accuracies(subsets, sections, headline):
    """Rows realising each published subset accuracy on the released row counts, scored end to end: the
    sections equal the published ones and the headline the official mean to 1e-6 points."""
    rows, rewards = [], {"good": 1.0, "bad": 0.0}
    for subset, accuracy in subsets.items():
        right = round(accuracy * RELEASED_ROWS[subset])
        assert right / RELEASED_ROWS[subset] == pytest.approx(accuracy, abs=1e-15)
        rows += [row(subset, "good", "bad")] * right + [row(subset, "bad", "good")] * (RELEASED_ROWS[subset] - right)
    result = score_rewardbench(rows, table_reward(rewards))
    assert result["counts"] == RELEASED_ROWS
    for name, value in sections.items():
        assert result[name] == pytest.approx(100 * value, abs=1e-6)
        assert section_scores(subsets)[name] == pytest.approx(100 * value, abs=1e-6)
    assert result["overall"] == pytest.approx(100 * sum(sections.values()) / 4, abs=1e-6)
    assert round(result["overall"], 2) == headline


def flips_by_seed(seed, n):
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(n)]


def test_pairwise_judge_protocol_seeded_order_half_credit_for_no_verdict():
    rows = [row("math-prm", f"good {i}", f"bad {i}", prompt=f"q{i}") for i in range(40)]
    seen = []

    def judge(question, answer_1, answer_2):
        seen.append((answer_1, answer_2))
        index = int(question[1:])
        return None if index % 4 == 0 else 1 if answer_1.startswith("good") else 2

    result = score_rewardbench(rows, judge_fn=judge, seed=3)
    swapped = flips_by_seed(3, 40)
    assert [a.startswith("bad") for a, _ in seen] == swapped  # each row's order drawn by random.Random(seed)
    assert result["subsets"]["math-prm"] == pytest.approx(100 * (30 + 0.5 * 10) / 40)
    assert result["no_verdict"] == {"math-prm": 10}
    assert score_rewardbench(rows, judge_fn=judge, seed=3) == result


def test_a_position_biased_judge_gets_half_credit_in_expectation():
    rows = [row("alpacaeval-easy", f"good {i}", f"bad {i}") for i in range(400)]
    result = score_rewardbench(rows, judge_fn=lambda q, a, b: 1, seed=0)
    assert result["subsets"]["alpacaeval-easy"] == pytest.approx(100 * (1 - sum(flips_by_seed(0, 400)) / 400))
    assert 40 <= result["subsets"]["alpacaeval-easy"] <= 60


class InOrderJudge:
    """A judge object that reorders answers when called, but offers `judge_in_order` for benchmarks."""

    def __init__(self):
        self.calls = []

    def __call__(self, question, answer_1, answer_2):
        raise AssertionError("the scorer must use judge_in_order")

    def judge_in_order(self, items):
        self.calls.append(list(items))
        return [1 if a.startswith("good") else 2 for _, a, _ in items]


def test_judge_in_order_gets_every_row_in_one_call():
    judge = InOrderJudge()
    rows = [row("hep-go", f"good {i}", f"bad {i}") for i in range(7)]
    assert score_rewardbench(rows, judge_fn=judge)["Reasoning"] == 100.0
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 7


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
    ({"prompt": "q", "chosen": "a", "subset": "math-prm"}, ValueError,
     r"rows\[1\]: expected a 'rejected' field, got only the fields \['chosen', 'prompt', 'subset'\]"),
    ({"prompt": "q", "chosen": 3, "rejected": "b", "subset": "math-prm"}, TypeError,
     r"rows\[1\]\['chosen'\]: expected a str, got int"),
])
def test_bad_rows_raise(bad_row, error, match):
    with pytest.raises(error, match=match):
        score_rewardbench([row("math-prm", "a", "b"), bad_row], length_mod3)


@pytest.mark.parametrize("rows, error, match", [
    ([], ValueError, "rows: expected at least one example, got an empty list"),
    ("abc", TypeError, r"rows: expected a list of dicts .* got str"),
    ([["a"]], TypeError, r"rows\[0\]: expected a dict, got list"),
])
def test_bad_row_containers_raise(rows, error, match):
    with pytest.raises(error, match=match):
        score_rewardbench(rows, length_mod3)


@pytest.mark.parametrize("returned, error, match", [
    (lambda n: [0.0] * (n - 1), ValueError, r"reward_fn\(pairs \[0:4\]\): expected 4 rewards .*, got 3"),
    (lambda n: "0" * n, TypeError, r"reward_fn\(pairs \[0:4\]\): expected a list of floats, got str"),
    (lambda n: [None] * n, TypeError, r"reward_fn\(pairs \[0:4\]\)\[0\]: expected a real number, got NoneType"),
    (lambda n: [True] * n, TypeError, r"\[0\]: expected a real number, got bool"),
    (lambda n: [math.nan] * n, ValueError, r"\[0\]: expected a real number, got NaN"),
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
    with pytest.raises(error, match="batch_size: expected an int >= 1, got"):
        score_rewardbench([row("math-prm", "a", "b")], length_mod3, batch_size=batch_size)


def test_reward_fn_must_be_callable():
    with pytest.raises(TypeError, match="reward_fn: expected a callable, got int"):
        score_rewardbench([row("math-prm", "a", "b")], 3)


@pytest.mark.parametrize("kwargs", [{}, {"reward_fn": length_mod3, "judge_fn": lambda q, a, b: 1}])
def test_exactly_one_of_reward_fn_and_judge_fn(kwargs):
    with pytest.raises(ValueError, match="reward_fn, judge_fn: expected exactly one"):
        score_rewardbench([row("math-prm", "a", "b")], **kwargs)


@pytest.mark.parametrize("verdict, error", [(3, ValueError), ("1", TypeError), (True, TypeError)])
def test_bad_judge_verdict_raises(verdict, error):
    with pytest.raises(error, match=r"judge_fn\(rows\[0\], chosen shown (first|second)\): expected 1, 2 or None"):
        score_rewardbench([row("math-prm", "a", "b")], judge_fn=lambda q, a, b: verdict)
