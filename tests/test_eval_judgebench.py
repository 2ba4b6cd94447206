"""JudgeBench scoring: reward-model and pairwise-judge modes against oracles written from the published rules."""
import itertools
import os
import random
from pathlib import Path

import pytest

from adajudge.eval import loaders, score_judgebench


def data_dir() -> Path:
    return Path(os.environ.get("ADAJUDGE_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


def reward_mode_right(score_a, score_b, label):
    """One game: the judge says A is better iff r(A) > r(B) (so a tie says B); right iff that is the label."""
    return (label == "A>B") == (score_a > score_b)


def judge_mode_right(first, second, label):
    """Two games, `first` a verdict on (A, B) and `second` on (B, A), each 1, 2 or None. Each verdict names
    a winner, A or B (or nobody); the pair is right iff more verdicts name the labelled winner than name
    the other one."""
    winners = [{1: "A", 2: "B"}.get(first), {1: "B", 2: "A"}.get(second)]
    labelled = label[0]
    other = "B" if labelled == "A" else "A"
    return winners.count(labelled) > winners.count(other)


def accuracy(flags):
    return 100 * sum(flags) / len(flags)


def jb_row(a, b, label, source="livebench-math", question="q"):
    return {"pair_id": "p", "source": source, "question": question, "response_A": a, "response_B": b,
            "label": label}


def length_mod3(prompts, responses):
    return [len(response) % 3 for response in responses]


def test_reward_mode_tie_gives_b_over_a():
    reward = lambda prompts, responses: [1.0 for _ in responses]  # always a tie
    assert score_judgebench([jb_row("a", "b", "B>A")], reward_fn=reward)["overall"] == 100.0
    assert score_judgebench([jb_row("a", "b", "A>B")], reward_fn=reward)["overall"] == 0.0


def test_reward_mode_scores_one_order_with_question_as_prompt():
    seen = []

    def reward(prompts, responses):
        seen.extend(zip(prompts, responses))
        return [len(response) for response in responses]

    result = score_judgebench([jb_row("long answer", "short", "A>B", question="Q?")], reward_fn=reward)
    assert result["overall"] == 100.0
    assert sorted(seen) == [("Q?", "long answer"), ("Q?", "short")]


# (verdict on (A, B), verdict on (B, A)) -> right for label A>B, by the +1/-1 rule, hand-computed
JUDGE_CASES = {
    (1, 2): True,      # A>B, A>B: +2
    (1, 1): False,     # A>B, B>A: 0
    (2, 2): False,     # B>A, A>B: 0
    (2, 1): False,     # -2
    (1, None): True,   # +1
    (None, 2): True,   # +1
    (2, None): False,  # -1
    (None, None): False,
}


@pytest.mark.parametrize("verdicts, right", JUDGE_CASES.items())
def test_judge_mode_hand_computed(verdicts, right):
    calls = []

    def judge(question, answer_1, answer_2):
        calls.append((answer_1, answer_2))
        return verdicts[len(calls) - 1]

    result = score_judgebench([jb_row("A", "B", "A>B")], judge_fn=judge)
    assert calls == [("A", "B"), ("B", "A")]
    assert result["overall"] == (100.0 if right else 0.0)


def test_judge_mode_matches_the_rule_for_every_verdict_combination():
    verdicts = [1, 2, None]
    rows, plan = [], []
    for label, first, second in itertools.product(["A>B", "B>A"], verdicts, verdicts):
        rows.append(jb_row(f"a{len(rows)}", f"b{len(rows)}", label, source="mmlu-pro-law"))
        plan.append((first, second))
    answers = {}
    for (first, second), r in zip(plan, rows):
        answers[(r["response_A"], r["response_B"])] = first
        answers[(r["response_B"], r["response_A"])] = second
    result = score_judgebench(rows, judge_fn=lambda q, x, y: answers[(x, y)])
    expected = accuracy([judge_mode_right(f, s, r["label"]) for r, (f, s) in zip(rows, plan)])
    assert result["overall"] == pytest.approx(expected, abs=1e-12)
    assert result["mmlu-pro"] == result["overall"]


def test_a_judge_that_always_prefers_the_first_answer_scores_zero():
    rows = [jb_row(f"a{i}", f"b{i}", "A>B" if i % 2 else "B>A") for i in range(30)]
    assert score_judgebench(rows, judge_fn=lambda q, a, b: 1)["overall"] == 0.0
    assert score_judgebench(rows, judge_fn=lambda q, a, b: 2)["overall"] == 0.0


class ReorderingJudge:
    """Prefers the first answer it shows, and when called shows the two in a random order of its own; it
    opts in to the benchmark's fixed orders with `judge_in_order`."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.batches = []

    def __call__(self, question, answer_1, answer_2):
        return 1 if self.rng.random() < 0.5 else 2

    def judge_in_order(self, items):
        self.batches.append(list(items))
        return [1] * len(items)


def test_a_reordering_judge_opts_in_with_judge_in_order():
    rows = [jb_row(f"a{i}", f"b{i}", "A>B" if i % 2 else "B>A") for i in range(50)]
    judge = ReorderingJudge(0)
    assert score_judgebench(rows, judge_fn=judge)["overall"] == 0.0
    (games,) = judge.batches
    assert games == [game for r in rows for game in (("q", r["response_A"], r["response_B"]),
                                                       ("q", r["response_B"], r["response_A"]))]
    # called plainly instead, its own coin flips would score it about 25 (both games right 1 time in 4)
    assert 10 <= score_judgebench(rows, judge_fn=lambda *item: judge(*item))["overall"] <= 40


def test_categories_are_source_prefixes():
    rows = [jb_row("aa", "b", "A>B", source="mmlu-pro-law"), jb_row("aa", "b", "B>A", source="mmlu-pro-math"),
            jb_row("aa", "b", "A>B", source="livebench-math"), jb_row("aa", "b", "A>B", source="livecodebench"),
            jb_row("aa", "b", "A>B", source="other")]
    result = score_judgebench(rows, reward_fn=lambda p, r: [len(x) for x in r])
    assert result["mmlu-pro"] == 50.0 and result["livebench-math"] == 100.0 and result["livecodebench"] == 100.0
    assert "livebench-reasoning" not in result
    assert result["overall"] == 80.0
    assert result["counts"] == {"overall": 5, "mmlu-pro": 2, "livebench-math": 1, "livecodebench": 1}


def test_reward_mode_matches_the_rule_on_random_rows_with_ties():
    rng = random.Random(2)
    sources = ["mmlu-pro-law", "livebench-reasoning", "livebench-math", "livecodebench"]
    rows = [jb_row("x" * rng.randrange(1, 9), "y" * rng.randrange(1, 9), rng.choice(["A>B", "B>A"]),
                   source=rng.choice(sources)) for _ in range(400)]
    result = score_judgebench(rows, reward_fn=length_mod3, batch_size=64)
    for category in ["overall", *sources]:
        picked = [r for r in rows if category == "overall" or r["source"] == category]
        expected = accuracy([reward_mode_right(len(r["response_A"]) % 3, len(r["response_B"]) % 3, r["label"])
                             for r in picked])
        key = "mmlu-pro" if category == "mmlu-pro-law" else category
        assert result[key] == pytest.approx(expected, abs=1e-12)


def test_real_file_both_modes_match_the_rules():
    path = data_dir() / "judgebench-gpt-4o.jsonl"
    if not path.is_file():
        pytest.skip(f"benchmark file {path} absent (set ADAJUDGE_DATA to the shared data folder)")
    rows = loaders.load_judgebench(path)
    reward = lambda text: len(text) % 3

    def judge(question, answer_1, answer_2):
        r1, r2 = reward(answer_1), reward(answer_2)
        return 1 if r1 > r2 else 2 if r2 > r1 else None

    by_reward = score_judgebench(rows, reward_fn=length_mod3)
    by_judge = score_judgebench(rows, judge_fn=judge)
    for category in ["overall", "mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench"]:
        picked = [r for r in rows if category == "overall" or r["source"].startswith(category)]
        single = [reward_mode_right(reward(r["response_A"]), reward(r["response_B"]), r["label"]) for r in picked]
        double = [judge_mode_right(judge(r["question"], r["response_A"], r["response_B"]),
                                   judge(r["question"], r["response_B"], r["response_A"]), r["label"]) for r in picked]
        assert by_reward[category] == pytest.approx(accuracy(single), abs=1e-12)
        assert by_judge[category] == pytest.approx(accuracy(double), abs=1e-12)
    assert by_reward["counts"]["overall"] == 350
    assert score_judgebench(rows, judge_fn=lambda q, a, b: 1)["overall"] == 0.0  # position-biased judge


@pytest.mark.parametrize("kwargs", [{}, {"reward_fn": length_mod3, "judge_fn": lambda q, a, b: 1}])
def test_exactly_one_of_reward_fn_and_judge_fn(kwargs):
    with pytest.raises(ValueError, match="reward_fn, judge_fn: expected exactly one"):
        score_judgebench([jb_row("a", "b", "A>B")], **kwargs)


@pytest.mark.parametrize("verdict, error", [(3, ValueError), (0, ValueError), ("1", TypeError),
                                            (True, TypeError), (1.0, TypeError)])
def test_bad_judge_verdict_raises(verdict, error):
    with pytest.raises(error, match=r"judge_fn\(rows\[0\], order \(A, B\)\): expected 1, 2 or None, got"):
        score_judgebench([jb_row("a", "b", "A>B")], judge_fn=lambda q, a, b: verdict)


@pytest.mark.parametrize("label", ["A=B", "a>b", None])
def test_bad_label_raises(label):
    with pytest.raises((ValueError, TypeError), match=r"rows\[0\]\['label'\]: expected"):
        score_judgebench([jb_row("a", "b", label)], reward_fn=length_mod3)


def test_missing_field_raises():
    bad = jb_row("a", "b", "A>B")
    del bad["source"]
    with pytest.raises(ValueError, match=r"rows\[0\]: expected a 'source' field, got only the fields"):
        score_judgebench([bad], reward_fn=length_mod3)
