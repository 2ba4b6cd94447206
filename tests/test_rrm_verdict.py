"""parse_verdict: the RRM evaluation's rule by default (docs/design.md §7), the lenient rule on request."""
import pytest

from adajudge.rrm import parse_verdict
from adajudge.rrm.verdict import (
    NO_VERDICT_REASONS,
    boxed_contents,
    last_box,
    no_verdict_reason,
    opens_think_block,
    split_reasoning,
)

A1, A2 = "\\boxed{Assistant 1}", "\\boxed{Assistant 2}"

# (text, think_opened, official verdict, lenient verdict)
CASES = [
    # a box after </think>
    (f"<think>Assistant 2 is wrong about the sum.</think>\nFinal: {A1}", False, 1, 1),
    (f"</think>{A2}", False, 2, 2),
    # the last of several boxes after the reasoning
    (f"<think>hmm</think> {A1} no, on reflection {A2}", False, 2, 2),
    (f"{A2} then {A1}", False, 1, 1),
    # a box only inside the reasoning
    (f"<think>I lean to {A1}.</think> Both are fine.", False, None, None),
    (f"<think>{A2}</think>", False, None, None),
    # the conclusion's box wins over the reasoning's
    (f"<think>{A1}</think>{A2}", False, 2, 2),
    # reasoning opened by the reply and never closed: the budget ran out mid-thought
    (f"<think>so far {A1} but", False, None, None),
    # the prompt opened the think block: no </think> means the reasoning never ended
    (f"so far I think {A1}", True, None, None),
    (f"weighing both.</think>\n{A2}", True, 2, 2),
    (f"weighing both.</think>\n{A2}", False, 2, 2),
    # several think blocks: official reads between the first and the second </think>, lenient after the last
    (f"<think>a</think>{A1}<think>b</think>no box", False, 1, None),
    (f"<think>a</think>none here<think>b</think>{A2}", False, None, 2),
    # no box
    ("Assistant 1 is better.", False, None, None),
    ("", False, None, None),
    ("<think>long thought</think>I pick Assistant 2.", False, None, None),
    # content other than exactly "Assistant 1" / "Assistant 2"
    ("\\boxed{Assistant 3}", False, None, None),
    (f"<think>x</think>{A1} wait \\boxed{{Assistant 3}}", False, None, None),
    ("\\boxed{1}", False, None, None),
    ("\\boxed{Assistant 12}", False, None, None),
    ("\\boxed{Assistant 1 and 2}", False, None, None),
    ("\\boxed{both}", False, None, None),
    ("\\boxed{assistant 1}", False, None, None),
    # whitespace: official needs the exact content right after \boxed{; lenient forgives it
    ("\\boxed{ Assistant 1 }", False, None, 1),
    ("\\boxed{Assistant  2}", False, None, 2),
    ("\\boxed{\n  Assistant\t1\n}", False, None, 1),
    ("\\boxed {Assistant 2}", False, None, 2),
    ("\\boxed{Assistant2}", False, None, 2),
    # the last \boxed unclosed: official gives no verdict, lenient falls back to the last closed box
    (f"{A1} and then \\boxed{{Assistant 2", False, None, 1),
    # nested braces are one box (its content is not a verdict)
    (f"{A1} \\boxed{{\\text{{Assistant 2}}}}", False, None, None),
    (f"{A1} \\boxed{{Assistant {{2}}}}", False, None, None),
]


@pytest.mark.parametrize(("text", "think_opened", "official", "lenient"), CASES)
def test_parse_verdict(text, think_opened, official, lenient):
    assert parse_verdict(text, think_opened=think_opened) == official
    assert parse_verdict(text, think_opened=think_opened, lenient=True) == lenient


def test_parse_verdict_rejects_non_text():
    with pytest.raises(TypeError, match="text: expected a str, got NoneType"):
        parse_verdict(None)
    with pytest.raises(TypeError, match="lenient: expected a bool, got int"):
        parse_verdict("x", lenient=1)


def test_split_reasoning():
    assert split_reasoning("<think>a</think>b") == ("<think>a", "b")
    assert split_reasoning("a</think>b</think>c") == ("a", "b")
    assert split_reasoning("a</think>b</think>c", lenient=True) == ("a</think>b", "c")
    assert split_reasoning("<think>open") == ("<think>open", None)
    assert split_reasoning("cut off", think_opened=True) == ("cut off", None)
    assert split_reasoning("plain") == ("", "plain")


def test_last_box_reads_only_the_last_one():
    assert last_box("\\boxed{a} x \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_box("\\boxed{a} x \\boxed{b") is None
    assert last_box("\\boxed{a} x \\boxed {b}") is None
    assert last_box("no box") is None


def test_boxed_contents_keeps_order_and_nesting():
    assert boxed_contents("\\boxed{a} x \\boxed{\\frac{1}{2}} \\boxed{b") == ["a", "\\frac{1}{2}"]


@pytest.mark.parametrize(("prompt", "opened"), [
    ("<｜User｜>q<｜Assistant｜><think>\n", True),
    ("<|im_start|>assistant\n", False),
    ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False),
])
def test_opens_think_block(prompt, opened):
    assert opens_think_block(prompt) is opened


@pytest.mark.parametrize(
    ("text", "think_opened", "lenient", "reason"),
    [
        ("So: \\boxed{Assistant 2}", False, False, None),
        ("The first answer is right.", False, False, "no_boxed"),
        ("\\boxed Assistant 1", False, False, "no_boxed"),  # no brace right after \boxed
        ("\\boxed{Assistant 1} and \\boxed{B}", False, False, "not_a_candidate"),  # the last box counts
        ("\\boxed{ Assistant 1 }", False, False, "not_a_candidate"),
        ("\\boxed{ Assistant 1 }", False, True, None),
        ("reasoning that never ends", True, False, "no_think_end"),
        ("<think>a \\boxed{Assistant 1}", False, False, "no_think_end"),
        ("<think>a</think> no box", False, True, "no_boxed"),
    ],
)
def test_no_verdict_reason_says_why_parse_verdict_found_none(text, think_opened, lenient, reason):
    assert no_verdict_reason(text, think_opened=think_opened, lenient=lenient) == reason
    assert (parse_verdict(text, think_opened=think_opened, lenient=lenient) is None) == (reason is not None)
    assert reason is None or reason in NO_VERDICT_REASONS
