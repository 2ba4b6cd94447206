"""Reading the verdict out of a judge's generated text (docs/design.md §7).

The official rule, that of the RRM authors' evaluation (microsoft/LMOps, `RRM-evaluation/scripts/
run_generative.py`, commit af6bc85e3e669ad5ec371d074c767905869c862e, `model_modifier="Skywork"`):

1. the conclusion is the text after the first ``</think>`` (up to a second ``</think>``, if any: the
   official code takes ``text.split("</think>")[1]``);
2. in it, the last ``\\boxed`` must open a balanced ``{...}`` right away (``\\boxed{...}``; the official
   ``last_boxed_only_string`` and ``remove_boxed``), else there is no verdict;
3. its content must be exactly ``Assistant 1`` or ``Assistant 2``; anything else is no verdict.

A reply without ``</think>`` has no verdict when the prompt opened a think block (DeepSeek-R1-style chat
templates end the prompt with ``<think>``, so reasoning cut off by the token budget holds no tag at all)
or when the reply opened one itself. A reply with no think tag at all, to a prompt that opened none, is
all conclusion *(ours: the official evaluation always opens a think block)*. A generation cut off by the
token budget has no verdict either (the official evaluation counts it as an error); that rule needs the
generation's length and is applied by ``PairwiseJudge``.

Every vote without a verdict records why (``no_verdict_reason``, one of ``NO_VERDICT_REASONS``): the request
failed, the reply was truncated at the token limit, the reasoning never closed its think block, the
conclusion holds no ``\\boxed{...}``, or the box's content is not a candidate (``Assistant 1``/``2``).

``lenient=True`` *(ours)* reads more replies: the conclusion follows the last ``</think>``, the last
closed box counts (whitespace allowed before its brace), and its content may carry whitespace
(``\\boxed{ Assistant  2 }`` is 2).
"""
import re
from typing import Literal

from adajudge.validation import check_bool, check_str

THINK_START = "<think>"
THINK_END = "</think>"
BOXED = "\\boxed"

Verdict = Literal[1, 2] | None

VERDICT_RULES: tuple[str, ...] = ("official", "lenient")

# Why a vote has no verdict: code (as reports record it) -> what it means.
NO_VERDICT_REASONS: dict[str, str] = {
    "request_failed": "the request failed",
    "truncated": "truncated at the token limit",
    "no_think_end": "reasoning never closed (no </think>)",
    "no_boxed": "no \\boxed{} in the conclusion",
    "not_a_candidate": "\\boxed{} content not a candidate",
}

_OFFICIAL_CONTENTS = {"Assistant 1": 1, "Assistant 2": 2}
_BOX_OPEN = re.compile(r"\\boxed\s*\{")
_ASSISTANT = re.compile(r"Assistant\s*([12])")


def opens_think_block(prompt: str) -> bool:
    """Whether the prompt text leaves a think block open for the reply (it ends with ``<think>``, up to
    whitespace, as DeepSeek-R1-style templates' generation prompt does)."""
    return check_str("prompt", prompt).rstrip().endswith(THINK_START)


def split_reasoning(text: str, *, think_opened: bool = False, lenient: bool = False) -> tuple[str, str | None]:
    """``(reasoning, conclusion)``: the conclusion is the part a verdict is read from (see the module
    docstring), None when the reasoning never ended. Without think tags, and with ``think_opened``
    False, the reasoning is ``""`` and the whole text is the conclusion."""
    check_str("text", text)
    check_bool("think_opened", think_opened)
    end = text.rfind(THINK_END) if lenient else text.find(THINK_END)
    if end < 0:
        return (text, None) if think_opened or THINK_START in text else ("", text)
    conclusion = text[end + len(THINK_END):]
    return text[:end], conclusion if lenient else conclusion.split(THINK_END)[0]


def last_box(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` when that box opens a brace right away and
    the brace closes (nested braces kept), else None, as the official ``last_boxed_only_string`` and
    ``remove_boxed`` read it: an earlier box never stands in for a broken last one."""
    start = text.rfind(BOXED)
    if start < 0:
        return None
    start += len(BOXED)
    if not text.startswith("{", start):
        return None
    depth = 0
    for position in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        if depth == 0:
            return text[start + 1:position]
    return None


def boxed_contents(text: str) -> list[str]:
    """The contents of every closed ``\\boxed{...}`` in ``text`` (whitespace allowed before the brace), in
    order, nested braces kept; the lenient rule reads the last one."""
    contents = []
    for match in _BOX_OPEN.finditer(text):
        depth, start = 1, match.end()
        for position in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                contents.append(text[start:position])
                break
    return contents


def no_verdict_reason(text: str, *, think_opened: bool = False, lenient: bool = False) -> str | None:
    """Why ``parse_verdict`` finds no verdict in ``text`` (a code of ``NO_VERDICT_REASONS``: ``"no_think_end"``,
    ``"no_boxed"`` or ``"not_a_candidate"``), or None when it finds one. Same arguments as ``parse_verdict``;
    the reasons that need more than the text (a failed request, a truncated reply) are the judge's.

    >>> no_verdict_reason("I prefer the first answer.")
    'no_boxed'
    """
    if parse_verdict(text, think_opened=think_opened, lenient=lenient) is not None:
        return None
    _, conclusion = split_reasoning(text, think_opened=think_opened, lenient=lenient)
    if conclusion is None:
        return "no_think_end"
    boxed = boxed_contents(conclusion) if lenient else last_box(conclusion)
    return "no_boxed" if not boxed else "not_a_candidate"


def parse_verdict(text: str, *, think_opened: bool = False, lenient: bool = False) -> Verdict:
    """1 or 2 for ``\\boxed{Assistant 1}`` / ``\\boxed{Assistant 2}`` as the verdict of ``text``, else None.

    Args:
        text: the generated reply (without the prompt).
        think_opened: the prompt ended inside an open think block (``opens_think_block``).
        lenient: the lenient rule instead of the official one (module docstring).

    >>> parse_verdict("<think>maybe \\\\boxed{Assistant 1}</think> So: \\\\boxed{Assistant 2}")
    2
    """
    check_bool("lenient", lenient)
    _, conclusion = split_reasoning(text, think_opened=think_opened, lenient=lenient)
    if conclusion is None:
        return None
    if not lenient:
        return _OFFICIAL_CONTENTS.get(last_box(conclusion))
    boxes = boxed_contents(conclusion)
    chosen = _ASSISTANT.fullmatch(boxes[-1].strip()) if boxes else None
    return int(chosen.group(1)) if chosen else None
