"""parse_verdict: the last box after the reasoning, Assistant 1 or 2 only (DESIGN.md §7)."""
import pytest

from adajudge.rrm import parse_verdict
from adajudge.rrm.verdict import boxed_contents, split_reasoning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a box after </think>
        ("<think>Assistant 2 is wrong about the sum.</think>\nFinal: \\boxed{Assistant 1}", 1),
        ("</think>\\boxed{Assistant 2}", 2),
        # the last of several boxes
        ("<think>hmm</think> \\boxed{Assistant 1} no, on reflection \\boxed{Assistant 2}", 2),
        ("\\boxed{Assistant 2} then \\boxed{Assistant 1}", 1),
        # a box only inside the reasoning
        ("<think>I lean to \\boxed{Assistant 1}.</think> Both are fine.", None),
        ("<think>\\boxed{Assistant 2}</think>", None),
        # reasoning opened and never closed: the budget ran out mid-thought
        ("<think>so far \\boxed{Assistant 1} but", None),
        # the conclusion's box wins over the reasoning's
        ("<think>\\boxed{Assistant 1}</think>\\boxed{Assistant 2}", 2),
        # several think blocks: only after the last one counts
        ("<think>a</think>\\boxed{Assistant 1}<think>b</think>no box", None),
        # no box
        ("Assistant 1 is better.", None),
        ("", None),
        ("<think>long thought</think>I pick Assistant 2.", None),
        # Assistant 3 or other content
        ("\\boxed{Assistant 3}", None),
        ("<think>x</think>\\boxed{Assistant 1} wait \\boxed{Assistant 3}", None),
        ("\\boxed{1}", None),
        ("\\boxed{Assistant 12}", None),
        ("\\boxed{Assistant 1 and 2}", None),
        ("\\boxed{both}", None),
        # no think tag: the last box in the text
        ("Reasoning... Therefore \\boxed{Assistant 2}.", 2),
        # whitespace inside the box (and between \boxed and the brace)
        ("\\boxed{ Assistant 1 }", 1),
        ("\\boxed{Assistant  2}", 2),
        ("\\boxed{\n  Assistant\t1\n}", 1),
        ("\\boxed {Assistant 2}", 2),
        ("\\boxed{Assistant2}", 2),
        # an unclosed box is not a box; the last closed one is
        ("\\boxed{Assistant 1} and then \\boxed{Assistant 2", 1),
        # nested braces are one box (its content is not a verdict)
        ("\\boxed{Assistant 1} \\boxed{\\text{Assistant 2}}", None),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


def test_parse_verdict_rejects_non_text():
    with pytest.raises(TypeError, match="text must be a str"):
        parse_verdict(None)


def test_split_reasoning():
    assert split_reasoning("<think>a</think>b") == ("<think>a", "b")
    assert split_reasoning("a</think>b</think>c") == ("a</think>b", "c")
    assert split_reasoning("<think>open") == ("<think>open", None)
    assert split_reasoning("plain") == ("", "plain")


def test_boxed_contents_keeps_order_and_nesting():
    assert boxed_contents("\\boxed{a} x \\boxed{\\frac{1}{2}} \\boxed{b") == ["a", "\\frac{1}{2}"]
