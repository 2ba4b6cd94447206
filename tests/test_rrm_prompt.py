"""The comparison prompt: chat template, answer order, and the documented fallbacks."""
import pytest

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.rrm.prompt import (
    PLAIN_TEXT_SUFFIX, SYSTEM_PROMPT, comparison_messages, encode_comparison, render_comparison,
)

NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
    "{{ '<' + m['role'] + '>' + m['content'] + '</' + m['role'] + '>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant>' }}{% endif %}"
)


def test_messages_label_answers_in_order_and_ask_for_a_box():
    system, user = comparison_messages("What is 2+2?", "four", "five")
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "\\boxed{Assistant 1}" in SYSTEM_PROMPT and "\\boxed{Assistant 2}" in SYSTEM_PROMPT
    content = user["content"]
    assert user["role"] == "user"
    assert content.index("What is 2+2?") < content.index("Assistant 1]\nfour") < content.index("Assistant 2]\nfive")
    assert content.endswith("\\boxed{Assistant 1} or \\boxed{Assistant 2}.")


def test_braces_in_the_texts_are_kept_verbatim():
    _, user = comparison_messages("f(x) = {x}", "{answer_1}", "\\boxed{Assistant 2}")
    assert "f(x) = {x}" in user["content"] and "{answer_1}" in user["content"]


def test_chat_template_renders_both_turns_and_the_generation_prompt():
    tokenizer = tiny_tokenizer()
    text = render_comparison(tokenizer, "q", "a", "b")
    assert text.startswith("<|im_start|>system\n" + SYSTEM_PROMPT)
    assert "<|im_start|>user\n[Query]\nq" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(encode_comparison(tokenizer, "q", "a", "b")) == text


def test_plain_text_fallback_without_a_chat_template():
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = None
    text = render_comparison(tokenizer, "q", "a", "b")
    assert text.startswith(SYSTEM_PROMPT + "\n\n[Query]\nq") and text.endswith(PLAIN_TEXT_SUFFIX)
    assert "<|im_start|>" not in text
    assert tokenizer.decode(encode_comparison(tokenizer, "q", "a", "b")) == text


def test_template_without_system_role_gets_the_instruction_in_the_user_turn():
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = NO_SYSTEM_TEMPLATE
    text = render_comparison(tokenizer, "q", "a", "b")
    assert text.startswith("<user>" + SYSTEM_PROMPT + "\n\n[Query]\nq") and text.endswith("</user><assistant>")


@pytest.mark.parametrize("bad", [None, 3, ["q"]])
def test_non_string_inputs_are_rejected(bad):
    with pytest.raises(TypeError, match="question must be a str"):
        comparison_messages(bad, "a", "b")
    with pytest.raises(TypeError, match="answer_2 must be a str"):
        comparison_messages("q", "a", bad)
