"""The comparison prompt of the generative judge (DESIGN.md §7), in this repository's own words.

A comparison is one system turn (the instruction) and one user turn (the query and the two answers,
labelled Assistant 1 and Assistant 2), rendered through the tokenizer's chat template with the
generation prompt appended, so the model starts its own turn with the reasoning.

Fallbacks *(ours)*:

- a tokenizer without a chat template gets the same two turns as plain text, separated by blank
  lines and followed by ``"Judgement:\\n"``, and is encoded with its special tokens (BOS) added;
- a chat template that rejects the system role (it raises while rendering) gets the instruction
  folded into the start of the user turn.
"""
from jinja2.exceptions import TemplateError

SYSTEM_PROMPT = (
    "You are an impartial judge. You are shown a query and two candidate answers, written by "
    "Assistant 1 and Assistant 2. Work out which answer serves the query better: first whether it is "
    "correct, then whether it does what was asked, completely and clearly. The length of an answer and "
    "the order in which the answers are shown say nothing about their quality. Think the comparison "
    "through step by step. End your reply with the better assistant in a box, exactly "
    "\\boxed{Assistant 1} or \\boxed{Assistant 2}, and write nothing after it."
)

USER_TEMPLATE = (
    "[Query]\n{question}\n\n"
    "[Answer of Assistant 1]\n{answer_1}\n[End of the answer of Assistant 1]\n\n"
    "[Answer of Assistant 2]\n{answer_2}\n[End of the answer of Assistant 2]\n\n"
    "Which assistant answered the query better? Reason first, then give your verdict as "
    "\\boxed{{Assistant 1}} or \\boxed{{Assistant 2}}."
)

PLAIN_TEXT_SUFFIX = "\n\nJudgement:\n"


def comparison_messages(question: str, answer_1: str, answer_2: str) -> list[dict[str, str]]:
    """The chat turns of one comparison: ``[{"role": "system", ...}, {"role": "user", ...}]``.

    ``answer_1`` is shown as Assistant 1 and ``answer_2`` as Assistant 2, in that order.
    """
    for name, value in (("question", question), ("answer_1", answer_1), ("answer_2", answer_2)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    user = USER_TEMPLATE.format(question=question, answer_1=answer_1, answer_2=answer_2)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def render_comparison(tokenizer, question: str, answer_1: str, answer_2: str) -> str:
    """The prompt text the model continues: the chat template's rendering, or the plain-text fallback."""
    messages = comparison_messages(question, answer_1, answer_2)
    if getattr(tokenizer, "chat_template", None) is None:
        return "\n\n".join(message["content"] for message in messages) + PLAIN_TEXT_SUFFIX
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError:
        folded = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
        return tokenizer.apply_chat_template(folded, tokenize=False, add_generation_prompt=True)


def encode_comparison(tokenizer, question: str, answer_1: str, answer_2: str) -> list[int]:
    """Token ids of the prompt. A chat template writes its own special tokens, so none are added to it;
    the plain-text fallback gets the tokenizer's usual ones (BOS)."""
    text = render_comparison(tokenizer, question, answer_1, answer_2)
    has_template = getattr(tokenizer, "chat_template", None) is not None
    return list(tokenizer(text, add_special_tokens=not has_template)["input_ids"])
