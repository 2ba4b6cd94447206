"""`AdaJudgeForRewardModeling` on packed batches (docs/packing.md): the same rewards, losses and gradients as on
padded batches, for every head, both padding sides of the padded reference, fp32 and bf16 (the suite's tolerance
rule); a sequence scores the same whatever it is packed with; backbones that would let attention cross from one
packed sequence to another are refused."""
import copy

import pytest
import torch
from transformers import AutoModel

import adajudge.modeling.packing as packing
from adajudge.data.collator import PackedPreferenceCollator, PreferenceCollator
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.packing import PackingUnsupportedError, check_packing_support
from adajudge.testing import assert_close
from adajudge.training.demo_data import make_demo_pairs
from adajudge.training.loop import model_forward
from adajudge.training.losses import build_loss

HEADS = [
    ("adajudge", {"num_blocks": 1, "scorer_hidden": 16, "router_hidden": 16}, "adajudge"),
    ("last", {}, "bt"),
    ("mean", {}, "normbt"),
    ("attn", {}, "focal"),
]
MAX_LENGTH = 128


@pytest.fixture(scope="module")
def pairs():
    """Pairs of different lengths (byte-level tokens: 20 to 70 per sequence), so that rows hold several."""
    short = [{"prompt": "2+2?", "chosen": "4", "rejected": "five, I think"},
             {"prompt": "Say hi", "chosen": "hi", "rejected": "no"},
             {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "It is Rome, of course."}]
    return [*short, *({k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=3)[:2])]


def reward_model(path, kind, options, seed=0, **kwargs):
    """A model whose head parameters are all random (its zero-initialised parts exercised too)."""
    model = AdaJudgeForRewardModeling.from_backbone(path, head=kind, **options, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model.eval()


def rewards_loss_and_gradients(model, batch, loss_name):
    """Rewards, the pair loss and the gradient of every trainable parameter, as one flat dict."""
    model.zero_grad(set_to_none=True)
    chosen, rejected = model_forward(model, batch).split_pairs()
    loss = build_loss(loss_name).pair_loss(chosen, rejected)
    loss.backward()
    values = {"reward": torch.cat([chosen.reward, rejected.reward]).detach(), "loss": loss.detach()}
    return {**values, **{f"d_{name}": p.grad for name, p in model.named_parameters() if p.requires_grad}}


def cast(batch, dtype):
    return {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in batch.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("kind, options, loss", HEADS, ids=[kind for kind, _, _ in HEADS])
def test_packed_model_equals_padded(tiny_backbone_path, tiny_llama_tokenizer, pairs, kind, options, loss, side, dtype):
    model = reward_model(tiny_backbone_path, kind, options)
    padded = PreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH, padding_side=side)(pairs)
    packed = PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    expected = rewards_loss_and_gradients(copy.deepcopy(model).double(), padded, loss)
    reference = rewards_loss_and_gradients(copy.deepcopy(model).to(dtype), padded, loss)
    actual = rewards_loss_and_gradients(copy.deepcopy(model).to(dtype), packed, loss)
    assert set(actual) == set(expected) and len(actual) > 20  # rewards, loss, every backbone and head parameter
    for name in expected:
        assert_close(f"{kind}/{name}", actual[name], expected[name], reference[name], dtype=dtype,
                     expected_dtype=reference[name].dtype)


def test_a_pair_s_rewards_do_not_depend_on_what_it_is_packed_with(tiny_backbone_path, tiny_llama_tokenizer):
    model = reward_model(tiny_backbone_path, *HEADS[0][:2], seed=1)
    examples = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=9)[:9]]
    target = examples[0]

    def rewards(module, neighbours, row_tokens=MAX_LENGTH):
        batch = PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH, row_tokens=row_tokens)(
            [*neighbours, target])
        with torch.no_grad():
            reward = module(**batch).logits[:, 0]
        n = len(neighbours) + 1
        return torch.stack([reward[n - 1], reward[2 * n - 1]])  # the target's chosen and rejected

    expected, reference = rewards(copy.deepcopy(model).double(), []), rewards(model, [])
    for neighbours, row_tokens in ((examples[1:3], MAX_LENGTH), (examples[3:9], MAX_LENGTH), (examples[5:9], 4 * MAX_LENGTH)):
        batch = PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH, row_tokens=row_tokens)(
            [*neighbours, target])
        assert (batch["position_ids"] == 0).sum() > batch["input_ids"].shape[0]  # rows hold several sequences
        assert_close(f"beside {len(neighbours)} pairs", rewards(model, neighbours, row_tokens), expected, reference,
                     dtype=torch.float32)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_attention_implementations_that_read_positions_pass_the_probe(tiny_backbone_path, implementation):
    backbone = AutoModel.from_pretrained(tiny_backbone_path, attn_implementation=implementation)
    check_packing_support(backbone)


class _PaddingMaskBackbone(torch.nn.Module):
    """A backbone that builds its own all-ones 2-D mask: packed sequences then attend to one another."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return self.inner(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)


def test_a_backbone_that_lets_packed_sequences_mix_is_refused(tiny_backbone_path, tiny_llama_tokenizer, pairs):
    backbone = AutoModel.from_pretrained(tiny_backbone_path)
    with pytest.raises(PackingUnsupportedError, match="not kept apart with attn_implementation='sdpa'"):
        check_packing_support(_PaddingMaskBackbone(backbone))
    model = reward_model(tiny_backbone_path, "last", {})
    model.backbone = _PaddingMaskBackbone(model.backbone)
    with pytest.raises(PackingUnsupportedError, match="--no-packing"):
        model(**PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs))
    model(**PreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs))  # padded batches still run


def _emulated_varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """flash-attn's varlen contract in plain PyTorch: causal attention within each `cu_seq_lens_q` segment of
    the one flattened row (`[1, H, total, Dh]`); the whole row when no boundaries are given."""
    total = query.shape[2]
    bounds = kwargs["cu_seq_lens_q"].tolist() if kwargs.get("cu_seq_lens_q") is not None else [0, total]
    longest = max(end - start for start, end in zip(bounds, bounds[1:]))
    assert kwargs.get("max_length_q", longest) == longest
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    out = torch.empty_like(query)
    for start, end in zip(bounds[:-1], bounds[1:]):
        out[:, :, start:end] = torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], is_causal=True, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def test_flash_attention_backbones_get_one_row_and_the_varlen_boundaries(
        tiny_backbone_path, tiny_llama_tokenizer, pairs, monkeypatch):
    """The flash-attention way (module docstring of adajudge.modeling.packing), with flash-attn's varlen kernel
    emulated on CPU by an attention function registered with transformers (flash-attn itself needs a GPU)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register("varlen_emulated", _emulated_varlen_attention)
    AttentionMaskInterface.register("varlen_emulated", ALL_MASK_ATTENTION_FUNCTIONS["flash_attention_2"])
    monkeypatch.setattr(packing, "uses_flash_varlen", lambda config: config._attn_implementation == "varlen_emulated")
    model = reward_model(tiny_backbone_path, *HEADS[0][:2])
    emulated = copy.deepcopy(model)
    emulated.backbone.set_attn_implementation("varlen_emulated")
    packed = PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs)
    padded = PreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs)
    with torch.no_grad():
        expected64 = copy.deepcopy(model).double()(**padded).logits
        reference, actual = model(**padded).logits, emulated(**packed).logits
    assert emulated._packing_supported
    assert_close("reward", actual, expected64, reference, dtype=torch.float32)


def test_packed_forward_arguments_are_checked(tiny_backbone_path, tiny_llama_tokenizer, pairs):
    model = reward_model(tiny_backbone_path, "last", {})
    batch = PackedPreferenceCollator(tiny_llama_tokenizer, max_length=MAX_LENGTH)(pairs)
    with pytest.raises(ValueError, match="attention_mask: expected None with cu_seqlens"):
        model(**batch, attention_mask=torch.ones_like(batch["input_ids"]))
    with pytest.raises(ValueError, match="position_ids, token_index"):
        model(**{k: v for k, v in batch.items() if k != "position_ids"})
    with pytest.raises(ValueError, match="token_index: expected positions in the rows"):
        model(**{**batch, "token_index": batch["token_index"] + batch["input_ids"].numel()})
    model.config.response_header_ids = [1, 2]
    with pytest.raises(ValueError, match="response_mask: expected the packed response mask"):
        model(**{k: v for k, v in batch.items() if k != "response_mask"})
