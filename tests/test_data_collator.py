"""Padding and the chosen-then-rejected batch layout (adajudge.data.collator)."""
import pytest
import torch

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.data.collator import PreferenceCollator, pad_encodings
from adajudge.data.encoding import encode_pairs, encode_prompt_response

EXAMPLES = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "five, I think"},
    {"prompt": [{"role": "user", "content": "Capital of France?"}], "chosen": "Paris", "rejected": "Rome"},
    {"prompt": "Say hi", "chosen": "hi", "rejected": "no"},
]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_encodings_layout(side):
    encodings = [{"input_ids": [5, 6, 7], "response_mask": [0, 1, 1]}, {"input_ids": [8], "response_mask": [1]}]
    batch = pad_encodings(encodings, pad_token_id=0, padding_side=side)
    if side == "right":
        expected_ids = [[5, 6, 7], [8, 0, 0]]
        expected_attention = [[1, 1, 1], [1, 0, 0]]
        expected_response = [[0, 1, 1], [1, 0, 0]]
    else:
        expected_ids = [[5, 6, 7], [0, 0, 8]]
        expected_attention = [[1, 1, 1], [0, 0, 1]]
        expected_response = [[0, 1, 1], [0, 0, 1]]
    assert batch["input_ids"].tolist() == expected_ids
    assert batch["attention_mask"].tolist() == expected_attention
    assert batch["response_mask"].tolist() == expected_response
    assert all(t.dtype == torch.long for t in batch.values())


def test_pad_encodings_multiple_of():
    batch = pad_encodings([{"input_ids": [1, 2, 3], "response_mask": [0, 0, 1]}], 9, pad_to_multiple_of=8)
    assert batch["input_ids"].shape == (1, 8) and batch["input_ids"][0, 3:].eq(9).all()


def test_pad_encodings_validation():
    with pytest.raises(ValueError, match="padding_side"):
        pad_encodings([{"input_ids": [1], "response_mask": [1]}], 0, padding_side="middle")
    with pytest.raises(ValueError, match=r"encodings\[0\]"):
        pad_encodings([{"input_ids": [1, 2], "response_mask": [1]}], 0)
    with pytest.raises(ValueError, match="empty"):
        pad_encodings([], 0)
    with pytest.raises(TypeError, match="pad_token_id"):
        pad_encodings([{"input_ids": [1], "response_mask": [1]}], None)


@pytest.mark.parametrize("side", ["right", "left"])
def test_collator_chosen_rows_first_then_rejected(tokenizer, side):
    batch = PreferenceCollator(tokenizer, max_length=128, padding_side=side)(EXAMPLES)
    n = len(EXAMPLES)
    assert batch["input_ids"].shape[0] == 2 * n
    assert set(batch) == {"input_ids", "attention_mask", "response_mask"}
    for row in range(2 * n):
        example, side_key = EXAMPLES[row % n], ("chosen", "rejected")[row // n]
        expected = encode_prompt_response(tokenizer, example["prompt"], example[side_key], max_length=128)
        real = batch["attention_mask"][row].bool()
        assert batch["input_ids"][row][real].tolist() == expected["input_ids"]
        assert batch["response_mask"][row][real].tolist() == expected["response_mask"]
        assert batch["input_ids"][row][~real].eq(tokenizer.pad_token_id).all()
        assert not (batch["response_mask"][row].bool() & ~real).any()
        # padding on the requested side: the real tokens are one contiguous block at that end
        positions = real.nonzero().flatten()
        if side == "right":
            assert positions[0] == 0
        else:
            assert positions[-1] == real.numel() - 1


def test_collator_margin_and_weight(tokenizer):
    examples = [dict(e, margin=float(i), weight=0.5 + i) for i, e in enumerate(EXAMPLES)]
    batch = PreferenceCollator(tokenizer, max_length=128)(examples)
    assert batch["margin"].tolist() == [0.0, 1.0, 2.0] and batch["margin"].dtype == torch.float32
    assert batch["weight"].tolist() == [0.5, 1.5, 2.5]


def test_collator_rejects_partial_margin(tokenizer):
    examples = [dict(EXAMPLES[0], margin=1.0), EXAMPLES[1]]
    with pytest.raises(ValueError, match="'margin' is given for 1 of 2"):
        PreferenceCollator(tokenizer, max_length=128)(examples)


def test_collator_accepts_pre_encoded_examples(tokenizer):
    encoded, _ = encode_pairs(tokenizer, EXAMPLES, max_length=128)
    collator = PreferenceCollator(tokenizer, max_length=128)
    from_raw, from_encoded = collator(EXAMPLES), collator(encoded)
    assert all(torch.equal(from_raw[k], from_encoded[k]) for k in from_raw)


def test_collator_drops_and_counts_pairs_that_cannot_fit(tokenizer):
    too_long = {"prompt": "q", "chosen": "x" * 100, "rejected": "y"}
    collator = PreferenceCollator(tokenizer, max_length=64)
    with pytest.warns(UserWarning, match="dropped 1 pair"):
        batch = collator([EXAMPLES[0], too_long, EXAMPLES[2]])
    assert batch["input_ids"].shape[0] == 4
    assert (collator.stats.pairs, collator.stats.dropped, collator.stats.kept) == (3, 1, 2)
    with pytest.raises(ValueError, match="all 1 pairs were dropped"):
        collator([too_long])
    assert collator.stats.dropped == 2


def test_collator_counts_truncated_prompts(tokenizer):
    collator = PreferenceCollator(tokenizer, max_length=40)
    batch = collator([{"prompt": "long context " * 10, "chosen": "a", "rejected": "b"}])
    assert batch["input_ids"].shape[1] == 40 and collator.stats.truncated == 1 and collator.stats.dropped == 0


def test_collator_needs_a_pad_token():
    tok = tiny_tokenizer()
    tok.pad_token = None
    with pytest.raises(ValueError, match="pad_token_id"):
        PreferenceCollator(tok)


def test_collator_default_padding_side_is_the_tokenizer_s():
    tok = tiny_tokenizer()
    tok.padding_side = "left"
    assert PreferenceCollator(tok).padding_side == "left"
