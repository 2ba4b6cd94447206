"""JudgeBench scoring (Tan et al., 2024; ScalerLab/JudgeBench), exactly as the official code does it.

Reward model (the official reward-model judges, `utils/judges.py`, run with `--single_game`): one order;
the decision is `A>B` iff `r(A) > r(B)`, so a tie gives `B>A`; a pair is right iff the decision equals its
label. Pairwise judge (`run_judge.py`, `utils/metrics.py`): exactly two games, (A, B) and then (B, A); the
second decision, made with the answers swapped, is flipped back; each decision equal to the label counts
+1, each equal to the reverse of the label -1, no decision 0; a pair is right iff the sum is > 0. The two
games reach the judge in those orders whatever its own settings: a judge that reorders answers itself
opts in with `judge_in_order` (`adajudge.eval._judge`), so a judge that always prefers the first answer
shown scores 0. Accuracy = 100 x right / pairs, over all pairs and per source category (the `source`
prefix: mmlu-pro = knowledge, livebench-reasoning, livebench-math, livecodebench = coding). Each accuracy
carries its 95% Wilson score interval (`ci95`, `adajudge.eval.intervals`): every pair is right or wrong.
"""
from adajudge.eval._judge import JudgeFn, verdicts_in_order
from adajudge.eval._rewards import DEFAULT_BATCH_SIZE, RewardFn, compute_rewards
from adajudge.eval._rows import as_rows, text_field
from adajudge.eval.intervals import wilson

CATEGORIES: tuple[str, ...] = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")

LABELS: tuple[str, ...] = ("A>B", "B>A")


def score_judgebench(rows, reward_fn: RewardFn | None = None, judge_fn: JudgeFn | None = None, *,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Score a reward function or a pairwise judge on JudgeBench rows; figures are percentages (0-100).

    Args:
        rows: dicts with `question`, `response_A`, `response_B`, `source` (str each) and `label`
            (`"A>B"` or `"B>A"`); other fields (`pair_id`, ...) are ignored.
        reward_fn: `reward_fn(prompts: list[str], responses: list[str]) -> list[float]`, called with at most
            `batch_size` pairs per call. Give exactly one of `reward_fn` and `judge_fn`.
        judge_fn: `judge_fn(question, answer_1, answer_2) -> 1 | 2 | None` (1: the first answer is better,
            2: the second, None: no verdict); called twice per row, (A, B) then (B, A). A judge with
            `judge_in_order(items)` gets all games in one call (`adajudge.eval._judge`).
        batch_size: most (prompt, response) pairs per `reward_fn` call.

    Returns:
        `{"overall": float, "mmlu-pro": float, "livebench-reasoning": float, "livebench-math": float,
        "livecodebench": float, "ci95": {key: [low, high]}, "ci95_method": "wilson", "counts": {"overall":
        pairs, category: pairs}}`; a category with no row is left out. Rows whose source matches no category
        count in `overall` only.
    """
    if (reward_fn is None) == (judge_fn is None):
        raise ValueError("reward_fn, judge_fn: expected exactly one (a reward model, one order, or a pairwise "
                         f"judge, both orders), got reward_fn={reward_fn!r}, judge_fn={judge_fn!r}")
    rows = as_rows(rows)
    questions = [text_field(row, i, "question") for i, row in enumerate(rows)]
    answers_a = [text_field(row, i, "response_A") for i, row in enumerate(rows)]
    answers_b = [text_field(row, i, "response_B") for i, row in enumerate(rows)]
    sources = [text_field(row, i, "source") for i, row in enumerate(rows)]
    labels = [_label(row, i) for i, row in enumerate(rows)]

    if reward_fn is not None:
        right = _right_by_reward(reward_fn, questions, answers_a, answers_b, labels, batch_size)
    else:
        right = _right_by_judge(judge_fn, questions, answers_a, answers_b, labels)

    result = {"overall": 100 * sum(right) / len(right)}
    counts = {"overall": len(right)}
    ci = {"overall": wilson(sum(right), len(right))}
    for category in CATEGORIES:
        members = [ok for ok, source in zip(right, sources) if source.startswith(category)]
        if members:
            result[category] = 100 * sum(members) / len(members)
            counts[category] = len(members)
            ci[category] = wilson(sum(members), len(members))
    result["ci95"] = ci
    result["ci95_method"] = "wilson"
    result["counts"] = counts
    return result


def flip(decision: str | None) -> str | None:
    """`A>B` <-> `B>A`; anything else (None, a tie) unchanged."""
    return {"A>B": "B>A", "B>A": "A>B"}.get(decision, decision)


def _label(row, index: int) -> str:
    label = text_field(row, index, "label")
    if label not in LABELS:
        raise ValueError(f"rows[{index}]['label']: expected 'A>B' or 'B>A', got {label!r}")
    return label


def _right_by_reward(reward_fn, questions, answers_a, answers_b, labels, batch_size) -> list[bool]:
    n = len(questions)
    rewards = compute_rewards(reward_fn, questions + questions, answers_a + answers_b, batch_size=batch_size)
    decisions = ["A>B" if reward_a > reward_b else "B>A" for reward_a, reward_b in zip(rewards[:n], rewards[n:])]
    return [decision == label for decision, label in zip(decisions, labels)]


def _right_by_judge(judge_fn, questions, answers_a, answers_b, labels) -> list[bool]:
    """Games 2k and 2k + 1 are row k shown (A, B) and (B, A)."""
    items, names = [], []
    for index, (question, answer_a, answer_b) in enumerate(zip(questions, answers_a, answers_b)):
        items += [(question, answer_a, answer_b), (question, answer_b, answer_a)]
        names += [f"rows[{index}], order (A, B)", f"rows[{index}], order (B, A)"]
    verdicts = verdicts_in_order(judge_fn, items, names)
    right = []
    for label, first, second in zip(labels, verdicts[0::2], verdicts[1::2]):
        decisions = (_decision(first), flip(_decision(second)))
        score = sum(1 if decision == label else -1 if decision == flip(label) else 0 for decision in decisions)
        right.append(score > 0)
    return right


def _decision(verdict: int | None) -> str | None:
    """A judge verdict on (answer_1, answer_2) as a JudgeBench decision in that order."""
    return {1: "A>B", 2: "B>A"}.get(verdict)
