"""Tokenisation of (prompt, response) pairs and the truncation policy (adajudge.data.encoding)."""
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.data.encoding import (
    ResponseTooLongError,
    TruncationStats,
    encode_pair,
    encode_pairs,
    encode_prompt_response,
    fit_to_length,
    tokenize_prompt_response,
)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def plain_tokenizer():
    """The same byte-level tokenizer without a chat template."""
    tok = tiny_tokenizer()
    tok.chat_template = None
    return tok


def masked_text(tokenizer, encoding, value):
    ids = [i for i, m in zip(encoding["input_ids"], encoding["response_mask"]) if m == value]
    return tokenizer.decode(ids)


def test_chat_template_marks_exactly_the_assistant_turn(tokenizer):
    enc = encode_prompt_response(tokenizer, "What is 2+2?", "4", max_length=512)
    assert len(enc["input_ids"]) == len(enc["response_mask"])
    assert masked_text(tokenizer, enc, 0) == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert masked_text(tokenizer, enc, 1) == "4<|im_end|>\n"
    # the response is one contiguous block at the end
    mask = enc["response_mask"]
    first = mask.index(1)
    assert all(mask[first:]) and not any(mask[:first])
    # the whole sequence is the rendered conversation
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}], tokenize=False
    )
    assert tokenizer.decode(enc["input_ids"]) == full


def test_chat_messages_prompt_and_response(tokenizer):
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "2+2?"},
    ]
    enc = encode_prompt_response(tokenizer, prompt, [{"role": "assistant", "content": "4"}], max_length=512)
    assert masked_text(tokenizer, enc, 1) == "4<|im_end|>\n"
    assert masked_text(tokenizer, enc, 0).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    # a str response means the same single assistant message
    assert enc == encode_prompt_response(tokenizer, prompt, "4", max_length=512)


def test_without_chat_template_text_is_prompt_response_eos(plain_tokenizer):
    enc = encode_prompt_response(plain_tokenizer, "Q: 2+2?\nA:", " 4", max_length=512)
    assert masked_text(plain_tokenizer, enc, 0) == "Q: 2+2?\nA:"
    assert masked_text(plain_tokenizer, enc, 1) == " 4<|im_end|>"
    assert enc["input_ids"][-1] == plain_tokenizer.eos_token_id


def test_without_chat_template_messages_are_rejected(plain_tokenizer):
    with pytest.raises(TypeError, match="no chat template"):
        encode_prompt_response(plain_tokenizer, [{"role": "user", "content": "hi"}], "yo", max_length=64)


def test_bad_messages_name_the_argument(tokenizer):
    with pytest.raises(TypeError, match=r"prompt\[0\]"):
        encode_prompt_response(tokenizer, [{"role": "user"}], "yo", max_length=64)
    with pytest.raises(TypeError, match="response"):
        encode_prompt_response(tokenizer, "hi", 3, max_length=64)


@pytest.mark.parametrize("max_length", [0, -3, 2.5, True, None])
def test_max_length_is_validated(tokenizer, max_length):
    with pytest.raises(ValueError, match="max_length"):
        encode_prompt_response(tokenizer, "hi", "yo", max_length=max_length)


def test_truncation_cuts_the_prompt_from_the_left(tokenizer):
    prompt_ids, response_ids = tokenize_prompt_response(tokenizer, "a long question " * 10, "short answer")
    max_length = len(response_ids) + 7
    enc = encode_prompt_response(tokenizer, "a long question " * 10, "short answer", max_length=max_length)
    assert len(enc["input_ids"]) == max_length
    assert enc["input_ids"] == prompt_ids[-7:] + response_ids
    assert enc["response_mask"] == [0] * 7 + [1] * len(response_ids)


def test_response_exactly_max_length_keeps_no_prompt(tokenizer):
    _, response_ids = tokenize_prompt_response(tokenizer, "question", "answer")
    enc = encode_prompt_response(tokenizer, "question", "answer", max_length=len(response_ids))
    assert enc == {"input_ids": response_ids, "response_mask": [1] * len(response_ids)}


def test_response_longer_than_max_length_raises(tokenizer):
    with pytest.raises(ResponseTooLongError, match="max_length=4"):
        encode_prompt_response(tokenizer, "q", "a response far longer than four tokens", max_length=4)


@settings(max_examples=60, deadline=None)
@given(
    prompt=st.lists(st.integers(0, 9), max_size=20),
    response=st.lists(st.integers(10, 19), max_size=20),
    max_length=st.integers(1, 30),
)
def test_fit_to_length_policy(prompt, response, max_length):
    if len(response) > max_length:
        with pytest.raises(ResponseTooLongError):
            fit_to_length(prompt, response, max_length)
        return
    enc, cut = fit_to_length(prompt, response, max_length)
    ids, mask = enc["input_ids"], enc["response_mask"]
    kept = len(ids) - len(response)
    assert len(ids) == min(len(prompt) + len(response), max_length)
    assert ids[kept:] == response and mask == [0] * kept + [1] * len(response)
    assert ids[:kept] == prompt[len(prompt) - kept:]  # a suffix of the prompt
    assert cut == (kept < len(prompt))


def test_encode_pairs_counts_truncated_and_dropped(tokenizer):
    short = {"prompt": "q", "chosen": "yes", "rejected": "no"}
    long_prompt = {"prompt": "context " * 20, "chosen": "yes", "rejected": "no", "margin": 1.5}
    too_long = {"prompt": "q", "chosen": "a" * 200, "rejected": "no"}
    with pytest.warns(UserWarning, match="1 dropped"):
        encoded, stats = encode_pairs(tokenizer, [short, long_prompt, too_long], max_length=48)
    assert (stats.pairs, stats.truncated, stats.dropped, stats.kept) == (3, 1, 1, 2)
    assert len(encoded) == 2
    assert encoded[1]["margin"] == 1.5 and "margin" not in encoded[0]
    for item in encoded:
        assert len(item["chosen_input_ids"]) <= 48 and len(item["rejected_input_ids"]) <= 48


def test_encode_pairs_without_drops_does_not_warn(tokenizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoded, stats = encode_pairs(tokenizer, [{"prompt": "q", "chosen": "y", "rejected": "n"}], max_length=64)
    assert stats == TruncationStats(pairs=1, truncated=0, dropped=0) and len(encoded) == 1


def test_encode_pair_drops_when_only_rejected_is_too_long(tokenizer):
    stats = TruncationStats()
    item = encode_pair(tokenizer, {"prompt": "q", "chosen": "y", "rejected": "n" * 100}, max_length=40, stats=stats)
    assert item is None and stats.dropped == 1 and stats.pairs == 1


def test_encode_pair_missing_key(tokenizer):
    with pytest.raises(ValueError, match="missing keys \\['rejected'\\]"):
        encode_pair(tokenizer, {"prompt": "q", "chosen": "y"}, max_length=40)
