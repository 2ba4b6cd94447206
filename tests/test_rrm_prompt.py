"""The comparison prompt: chat template, answer order, and the documented fallbacks."""
import pytest

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.rrm.prompt import (
    PLAIN_TEXT_SUFFIX,
    RRM_PROMPT,
    SYSTEM_PROMPT,
    PromptTemplate,
    comparison_messages,
    encode_comparison,
    render_comparison,
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
    with pytest.raises(TypeError, match="question: expected a str, got"):
        comparison_messages(bad, "a", "b")
    with pytest.raises(TypeError, match="answer_2: expected a str, got"):
        comparison_messages("q", "a", bad)


def test_rrm_prompt_is_the_published_layout():
    """The RRM authors' template (microsoft/LMOps RRM-evaluation/rewardbench/generative.py, `Skywork_*`):
    the system turn asks for a boxed assistant, the user turn lays the answers out under markdown headers
    and ends with the analysis cue."""
    system, user = RRM_PROMPT("Q?", "first", "second")
    assert system["role"] == "system" and system["content"].startswith("You are a helpful assistant in evaluating")
    assert system["content"].endswith("'\\boxed{Assistant 2}' if assistant 2 is better. Omit any other output.\n\n")
    assert user == {"role": "user", "content": (
        "## Query\n\nQ?\n\n## Assistant responses\n\n### Assistant 1\n\nfirst\n\n\n### Assistant 2\n\nsecond\n\n"
        "## Analysis\n\nLet's analyze this step by step and decide which assistant is better, and then answer "
        "\\boxed{Assistant 1} or \\boxed{Assistant 2}.")}


def test_a_template_can_be_a_string_a_prompt_template_or_a_callable():
    tokenizer = tiny_tokenizer()
    assert comparison_messages("q", "a", "b", "Q: {question} 1: {answer_1} 2: {answer_2} {{x}}") == [
        {"role": "user", "content": "Q: q 1: a 2: b {x}"}]
    custom = PromptTemplate(user="{answer_2}|{answer_1}|{question}", system="judge")
    assert custom("q", "a", "b") == [{"role": "system", "content": "judge"}, {"role": "user", "content": "b|a|q"}]
    messages = lambda q, a, b: [{"role": "user", "content": f"{q}/{a}/{b}"}]  # noqa: E731
    assert render_comparison(tokenizer, "q", "a", "b", messages).startswith("<|im_start|>user\nq/a/b")


@pytest.mark.parametrize(("template", "error", "match"), [
    (3, TypeError, "prompt: expected a str template or a callable"),
    ("{question} {answer_1}", ValueError, r"user: expected a template that shows .* without \['answer_2'\]"),
    ("{question} {answer_1} {answer_2} {other}", ValueError, r"user: expected a template over the fields .* \['other'\]"),
    ("{question {answer_1} {answer_2}", ValueError, "user: expected a str.format template"),
    (lambda q, a, b: "text", TypeError, r"prompt\(question, answer_1, answer_2\): expected a non-empty list"),
])
def test_bad_templates_raise(template, error, match):
    with pytest.raises(error, match=match):
        comparison_messages("q", "a", "b", template)
