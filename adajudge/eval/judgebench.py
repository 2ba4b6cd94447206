"""JudgeBench scoring (Tan et al., 2024; ScalerLab/JudgeBench), exactly as the official code does it.

Reward model (the official reward-model judges, `utils/judges.py`, run with `--single_game`): one order;
the decision is `A>B` iff `r(A) > r(B)`, so a tie gives `B>A`; a pair is right iff the decision equals its
label. Pairwise judge (`utils/metrics.py`, both orders): the second judgment, made with the answers swapped,
is flipped back; each decision equal to the label counts +1, each equal to the reverse of the label -1, no
decision 0; a pair is right iff the sum is > 0. Accuracy = 100 x right / pairs, over all pairs and per
source category (the `source` prefix: mmlu-pro = knowledge, livebench-reasoning, livebench-math,
livecodebench = coding).
"""
import numbers
from collections.abc import Callable

from adajudge.eval._rewards import DEFAULT_BATCH_SIZE, RewardFn, compute_rewards
from adajudge.eval._rows import as_rows, text_field

CATEGORIES: tuple[str, ...] = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")

LABELS: tuple[str, ...] = ("A>B", "B>A")

JudgeFn = Callable[[str, str, str], "int | None"]


def score_judgebench(rows, reward_fn: RewardFn | None = None, judge_fn: JudgeFn | None = None, *,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Score a reward function or a pairwise judge on JudgeBench rows; figures are percentages (0-100).

    Args:
        rows: dicts with `question`, `response_A`, `response_B`, `source` (str each) and `label`
            (`"A>B"` or `"B>A"`); other fields (`pair_id`, ...) are ignored.
        reward_fn: `reward_fn(prompts: list[str], responses: list[str]) -> list[float]`, called with at most
            `batch_size` pairs per call. Give exactly one of `reward_fn` and `judge_fn`.
        judge_fn: `judge_fn(question, answer_1, answer_2) -> 1 | 2 | None` (1: the first answer is better,
            2: the second, None: no verdict); called twice per row, (A, B) then (B, A).
        batch_size: most (prompt, response) pairs per `reward_fn` call.

    Returns:
        `{"overall": float, "mmlu-pro": float, "livebench-reasoning": float, "livebench-math": float,
        "livecodebench": float, "counts": {"overall": pairs, category: pairs}}`; a category with no row is
        left out. Rows whose source matches no category count in `overall` only.
    """
    if (reward_fn is None) == (judge_fn is None):
        raise ValueError("score_judgebench needs exactly one of reward_fn (a reward model, one order) and "
                         f"judge_fn (a pairwise judge, both orders); got reward_fn={reward_fn!r}, "
                         f"judge_fn={judge_fn!r}")
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
    for category in CATEGORIES:
        members = [ok for ok, source in zip(right, sources) if source.startswith(category)]
        if members:
            result[category] = 100 * sum(members) / len(members)
            counts[category] = len(members)
    result["counts"] = counts
    return result


def flip(decision: str | None) -> str | None:
    """`A>B` <-> `B>A`; anything else (None, a tie) unchanged."""
    return {"A>B": "B>A", "B>A": "A>B"}.get(decision, decision)


def _label(row, index: int) -> str:
    label = text_field(row, index, "label")
    if label not in LABELS:
        raise ValueError(f"rows[{index}]['label'] must be 'A>B' or 'B>A', got {label!r}")
    return label


def _right_by_reward(reward_fn, questions, answers_a, answers_b, labels, batch_size) -> list[bool]:
    n = len(questions)
    rewards = compute_rewards(reward_fn, questions + questions, answers_a + answers_b, batch_size=batch_size)
    decisions = ["A>B" if reward_a > reward_b else "B>A" for reward_a, reward_b in zip(rewards[:n], rewards[n:])]
    return [decision == label for decision, label in zip(decisions, labels)]


def _right_by_judge(judge_fn, questions, answers_a, answers_b, labels) -> list[bool]:
    if not callable(judge_fn):
        raise TypeError(f"judge_fn must be callable as judge_fn(question, answer_1, answer_2), "
                        f"got {type(judge_fn).__name__}")
    right = []
    for index, (question, answer_a, answer_b, label) in enumerate(zip(questions, answers_a, answers_b, labels)):
        first = _decision(judge_fn(question, answer_a, answer_b), index, "(A, B)")
        second = flip(_decision(judge_fn(question, answer_b, answer_a), index, "(B, A)"))
        score = sum(1 if decision == label else -1 if decision == flip(label) else 0
                    for decision in (first, second))
        right.append(score > 0)
    return right


def _decision(verdict, index: int, order: str) -> str | None:
    """A judge verdict for answers (answer_1, answer_2) as a JudgeBench decision in that order."""
    if verdict is None:
        return None
    if isinstance(verdict, bool) or not isinstance(verdict, numbers.Integral):
        raise TypeError(f"judge_fn must return 1, 2 or None, got {type(verdict).__name__} ({verdict!r}) for "
                        f"rows[{index}] in order {order}")
    if verdict not in (1, 2):
        raise ValueError(f"judge_fn must return 1, 2 or None, got {verdict!r} for rows[{index}] in order {order}")
    return "A>B" if verdict == 1 else "B>A"
