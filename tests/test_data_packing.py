"""Packed batches (adajudge.data.packing, PackedPreferenceCollator) and token-budget batches (adajudge.data.sampler)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adajudge.backbones.tiny import tiny_tokenizer
from adajudge.data.collator import PackedPreferenceCollator, PreferenceCollator
from adajudge.data.encoding import encode_pairs
from adajudge.data.packing import pack_encodings, pack_rows, token_counts
from adajudge.data.sampler import TokenBudgetBatchSampler, token_budget_batches
from adajudge.training.demo_data import make_demo_pairs
from adajudge.training.loop import epoch_batches

EXAMPLES = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "five, I think", "margin": 1.0},
    {"prompt": [{"role": "user", "content": "Capital of France?"}], "chosen": "Paris", "rejected": "Rome", "margin": 0.5},
    {"prompt": "Say hi " * 30, "chosen": "hi", "rejected": "no", "margin": 2.0},
]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), max_size=30), row_tokens=st.integers(40, 90))
def test_pack_rows_places_every_sequence_once_within_the_budget(lengths, row_tokens):
    rows = pack_rows(lengths, row_tokens)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    fill = [sum(lengths[i] for i in row) for row in rows]
    assert all(f <= row_tokens for f in fill)
    # first fit: a row is opened only when the sequence fits no open row, so no two rows are both at most half full
    assert sum(2 * f <= row_tokens for f in fill) <= 1 or all(f == 0 for f in fill)


def test_pack_rows_is_first_fit_decreasing_and_refuses_a_sequence_longer_than_a_row():
    assert pack_rows([5, 3, 7, 2, 9], 10) == [[4], [2, 1], [0, 3]]
    with pytest.raises(ValueError, match=r"lengths\[1\].*never split"):
        pack_rows([3, 11], 10)
    with pytest.raises(ValueError, match="row_tokens"):
        pack_rows([3], 0)


@settings(max_examples=100, deadline=None)
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=12), row_tokens=st.integers(12, 30))
def test_pack_encodings_layout(lengths, row_tokens):
    generator = torch.Generator().manual_seed(len(lengths) * 31 + row_tokens)
    encodings = [{"input_ids": torch.randint(4, 200, (n,), generator=generator),
                  "response_mask": torch.randint(0, 2, (n,), generator=generator)} for n in lengths]
    batch = pack_encodings(encodings, pad_token_id=0, row_tokens=row_tokens)
    rows, width = batch["input_ids"].shape
    assert width <= row_tokens and batch["position_ids"].shape == (rows, width)
    cu = batch["cu_seqlens"]
    assert cu.dtype == torch.int32 and cu.tolist() == [0, *torch.tensor(lengths).cumsum(0).tolist()]
    assert batch["max_seqlen"] == max(lengths)
    flat_ids, flat_positions = batch["input_ids"].view(-1), batch["position_ids"].view(-1)
    for i, encoding in enumerate(encodings):
        index = batch["token_index"][cu[i] : cu[i + 1]]
        assert torch.equal(flat_ids[index], encoding["input_ids"])  # the sequence, whole and in order
        assert torch.equal(flat_positions[index], torch.arange(lengths[i]))  # positions restart at 0
        assert torch.equal(index, index[0] + torch.arange(lengths[i]))  # contiguous: never split across rows
        assert index[0] // width == index[-1] // width
        assert torch.equal(batch["response_mask"][cu[i] : cu[i + 1]], encoding["response_mask"])
    tails = torch.ones(rows * width, dtype=torch.bool)
    tails[batch["token_index"]] = False
    assert flat_ids[tails].eq(0).all() and flat_positions[tails].eq(0).all()


def test_packed_collator_holds_the_padded_collator_s_sequences_in_the_same_order(tokenizer):
    padded = PreferenceCollator(tokenizer, max_length=64)(EXAMPLES)
    packed = PackedPreferenceCollator(tokenizer, max_length=64)(EXAMPLES)
    assert torch.equal(packed["margin"], padded["margin"]) and "attention_mask" not in packed
    cu, flat = packed["cu_seqlens"], packed["input_ids"].view(-1)
    assert cu.numel() == 2 * len(EXAMPLES) + 1 and packed["input_ids"].shape[1] <= 64
    for row in range(2 * len(EXAMPLES)):  # chosen rows first, then rejected: the TRL layout
        real = padded["attention_mask"][row].bool()
        index = packed["token_index"][cu[row] : cu[row + 1]]
        assert torch.equal(flat[index], padded["input_ids"][row][real])
        assert torch.equal(packed["response_mask"][cu[row] : cu[row + 1]], padded["response_mask"][row][real])
    # the long prompt of the third example was cut from the left, as the padded collator cuts it
    assert packed["max_seqlen"] == 64 == int(padded["attention_mask"].sum(1).max())
    counts, padded_counts = token_counts(packed), token_counts(padded)
    assert counts["tokens"] == padded_counts["tokens"] == int(padded["attention_mask"].sum())
    assert counts["padded_tokens"] == padded_counts["padded_tokens"] == padded["input_ids"].numel()
    assert counts["computed_tokens"] == packed["input_ids"].numel() < padded_counts["computed_tokens"]


def test_packed_collator_takes_encoded_pairs_and_drops_what_cannot_fit(tokenizer):
    encoded, _ = encode_pairs(tokenizer, EXAMPLES[:2], max_length=64)
    batch = PackedPreferenceCollator(tokenizer, max_length=64, row_tokens=128)(encoded)
    assert batch["cu_seqlens"].numel() == 5 and batch["input_ids"].shape[1] <= 128
    collator = PackedPreferenceCollator(tokenizer, max_length=24)
    with pytest.warns(UserWarning, match="dropped 1 pair"):
        batch = collator([*EXAMPLES[:2], {"prompt": "x", "chosen": "a" * 40, "rejected": "b"}])
    assert batch["cu_seqlens"].numel() == 5 and collator.stats.dropped == 1
    with pytest.raises(ValueError, match="row_tokens"):
        PackedPreferenceCollator(tokenizer, max_length=64, row_tokens=32)
    too_long, _ = encode_pairs(tokenizer, EXAMPLES[:1], max_length=200)
    with pytest.raises(ValueError, match="more than 8"):
        PackedPreferenceCollator(tokenizer, max_length=8)(too_long)


def test_token_budget_batches_visit_every_pair_once_in_the_training_order():
    tokens = [len(p["chosen"]) + len(p["rejected"]) for p in make_demo_pairs(seed=0)[:50]]
    budget = 3 * max(tokens)
    batches = token_budget_batches(tokens, budget, seed=4, epoch=2)
    assert [i for batch in batches for i in batch] == [i for batch in epoch_batches(50, 7, 4, 2, 1) for i in batch]
    sums = [sum(tokens[i] for i in batch) for batch in batches]
    assert all(s <= budget for s in sums)
    assert all(s + tokens[nxt[0]] > budget for s, nxt in zip(sums, batches[1:]))  # closed only when the next would not fit
    assert token_budget_batches(tokens, budget, seed=4, epoch=2) == batches
    assert token_budget_batches(tokens, budget, seed=4, epoch=3) != batches
    with pytest.raises(ValueError, match="max_tokens"):
        token_budget_batches(tokens, max(tokens) - 1)

    sampler = TokenBudgetBatchSampler(tokens, budget, seed=4)
    sampler.set_epoch(2)
    assert list(sampler) == batches and len(sampler) == len(batches)
