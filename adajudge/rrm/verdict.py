"""Reading the verdict out of a judge's generated text (DESIGN.md §7).

The verdict is the content of the last ``\\boxed{...}`` written after the reasoning ends, and it counts
only when that content is ``Assistant 1`` or ``Assistant 2`` (whitespace inside the box is free:
``\\boxed{ Assistant  2 }`` is 2). Where the reasoning ends:

- the text has ``</think>``: after the last ``</think>``; boxes inside the reasoning do not count;
- the text opens ``<think>`` and never closes it: the reasoning never ended (the thinking budget ran
  out), so there is no verdict *(ours)*;
- no think tag at all: the whole text is the conclusion, and its last box is the verdict.

Anything else (no box, a box holding ``Assistant 3`` or prose, an unclosed box) is no verdict: None.
"""
import re
from typing import Literal

THINK_START = "<think>"
THINK_END = "</think>"

Verdict = Literal[1, 2] | None

_BOX_OPEN = re.compile(r"\\boxed\s*\{")
_ASSISTANT = re.compile(r"Assistant\s*([12])")


def split_reasoning(text: str) -> tuple[str, str | None]:
    """``(reasoning, conclusion)``: the conclusion is the part a verdict is read from, None when the
    reasoning was opened with ``<think>`` and never closed. Without think tags the reasoning is ``""``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    end = text.rfind(THINK_END)
    if end >= 0:
        return text[:end], text[end + len(THINK_END):]
    if THINK_START in text:
        return text, None
    return "", text


def boxed_contents(text: str) -> list[str]:
    """The contents of every closed ``\\boxed{...}`` in ``text``, in order (nested braces kept)."""
    contents = []
    for match in _BOX_OPEN.finditer(text):
        depth, start = 1, match.end()
        for position in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                contents.append(text[start:position])
                break
    return contents


def parse_verdict(text: str) -> Verdict:
    """1 or 2 for ``\\boxed{Assistant 1}`` / ``\\boxed{Assistant 2}`` as the last box after the reasoning,
    else None. See the module docstring for where the reasoning ends.

    >>> parse_verdict("<think>maybe \\\\boxed{Assistant 1}</think> So: \\\\boxed{Assistant 2}")
    2
    """
    _, conclusion = split_reasoning(text)
    if conclusion is None:
        return None
    boxes = boxed_contents(conclusion)
    if not boxes:
        return None
    chosen = _ASSISTANT.fullmatch(boxes[-1].strip())
    return int(chosen.group(1)) if chosen else None
