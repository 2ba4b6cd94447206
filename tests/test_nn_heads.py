"""Reward heads (docs/design.md §5): AdaJudgeHead, the static baselines, HeadOutput and build_head."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForSequenceClassification

from adajudge import reference
from adajudge.nn import (
    AdaJudgeHead,
    AttentionPoolHead,
    HeadOutput,
    LastTokenHead,
    MeanPoolHead,
    MultiViewPooling,
    NormBTLoss,
    build_head,
)
from adajudge.testing import assert_close

D = 64
OPTIONS = {
    "adajudge": {"num_blocks": 2, "num_heads": 4, "mlp_ratio": 1.5, "scorer_hidden": 16, "router_hidden": 8},
    "last": {},
    "mean": {},
    "attn": {},
}
KINDS = list(OPTIONS)
# (prompt length, response length) per row; the last row has an empty response.
ROWS = [(3, 4), (0, 6), (5, 1), (2, 0)]
LENGTH = 8


def randomize(module, seed=0, std=0.2):
    """Give every parameter random values (untrained AdaJudge heads have zero output projections and a
    zero router layer); norm weights stay near 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * std
            parameter.copy_(noise + 1.0 if name.endswith("norm.weight") else noise)
    return module


def make_head(kind, backend="torch", **extra):
    return randomize(build_head(kind, D, backend=backend, **{**OPTIONS[kind], **extra}))


def make_batch(padding_side="right", seed=0, rows=ROWS, length=LENGTH):
    """`hidden [B, T, D]`, `attention_mask`, `response_mask` for `rows`; same tokens for either side,
    random values in the padding."""
    generator = torch.Generator().manual_seed(seed)
    tokens = [torch.randn(p + r, D, generator=generator) for p, r in rows]
    hidden = torch.randn(len(rows), length, D, generator=generator) * 50
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    response_mask = torch.zeros_like(attention_mask)
    for b, ((prompt, response), row) in enumerate(zip(rows, tokens)):
        start = 0 if padding_side == "right" else length - prompt - response
        hidden[b, start : start + prompt + response] = row
        attention_mask[b, start : start + prompt + response] = 1
        response_mask[b, start + prompt : start + prompt + response] = 1
    return hidden, attention_mask, response_mask


FIELDS = ("reward", "view_scores", "router_probs", "router_entropy", "representation")


def as64(value):
    """A float64 copy of a module or floating tensor; tuples element-wise; anything else as is."""
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value).double()
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double()
    if isinstance(value, tuple):
        return tuple(map(as64, value))
    return value


def check(name, actual, compute, *args, dtype=torch.float32):
    """The suite's tolerance rule (`adajudge.testing`): `actual` (a tensor or `HeadOutput`, from `dtype`
    inputs) against `compute(*args)` in float64, with `compute(*args)` as the same-precision reference."""
    expected, reference_value = compute(*map(as64, args)), compute(*args)
    if isinstance(actual, HeadOutput):
        for field in FIELDS:
            assert_close(
                f"{name}.{field}", getattr(actual, field), getattr(expected, field), getattr(reference_value, field),
                dtype=dtype, expected_dtype=torch.float32,
            )
    else:
        assert_close(name, actual, expected, reference_value, dtype=dtype, expected_dtype=torch.float32)


def run(head, batch):
    return head(*batch)


def mlp(layers, x):
    """`MLP` written out: Linear, or Linear → SiLU → Linear."""
    if len(layers) == 1:
        return x @ layers[0].weight.T + layers[0].bias
    return F.silu(x @ layers[0].weight.T + layers[0].bias) @ layers[2].weight.T + layers[2].bias


@pytest.mark.parametrize("kind", KINDS)
def test_output_fields_shapes_and_dtypes(kind):
    hidden, attention_mask, response_mask = make_batch()
    out = make_head(kind)(hidden, attention_mask, response_mask)
    views = 3 if kind == "adajudge" else 1
    assert isinstance(out, HeadOutput)
    assert out.reward.shape == (4,) and out.router_entropy.shape == (4,)
    assert out.view_scores.shape == out.router_probs.shape == (4, views)
    assert out.representation.shape == (4, D)
    for value in vars(out).values():
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
    if views == 1:
        assert torch.equal(out.view_scores[:, 0], out.reward)
        assert torch.equal(out.router_probs, torch.ones(4, 1))
        assert torch.equal(out.router_entropy, torch.zeros(4))


def pool_formula(pooling, hidden, attention_mask, response_mask):
    return reference.multiview_pool(
        hidden, attention_mask, response_mask, attn_weight=pooling.attn_weight, attn_bias=pooling.attn_bias
    )


def test_attn_bias_is_one_element_and_scalar_checkpoints_still_load():
    pooling = MultiViewPooling(D)
    assert pooling.attn_bias.shape == (1,)  # FSDP2 shards no scalar parameter
    old = {"attn_weight": torch.randn(D), "attn_bias": torch.tensor(0.25)}  # written while attn_bias was a scalar
    pooling.load_state_dict(old)
    assert torch.equal(pooling.attn_weight, old["attn_weight"]) and pooling.attn_bias.tolist() == [0.25]


def test_multiview_pooling_module_padded_and_packed():
    fresh = MultiViewPooling(D)
    assert set(fresh.state_dict()) == {"attn_weight", "attn_bias"}
    assert not fresh.attn_weight.any() and not fresh.attn_bias.any()
    pooling = randomize(MultiViewPooling(D, backend="torch"))
    batch = make_batch("left")
    check("views", pooling(*batch), pool_formula, pooling, *batch)
    hidden, attention_mask, response_mask = batch
    real = attention_mask.bool()
    cu_seqlens = F.pad(attention_mask.sum(1).cumsum(0), (1, 0)).int()
    packed = pooling(hidden[real], attention_mask[real], response_mask[real], cu_seqlens=cu_seqlens)
    check("packed views", packed, pool_formula, pooling, *batch)


def test_split_pairs_gives_chosen_then_rejected_halves():
    out = make_head("adajudge")(*make_batch())
    chosen, rejected = out.split_pairs()
    for field in FIELDS:
        assert torch.equal(getattr(chosen, field), getattr(out, field)[:2])
        assert torch.equal(getattr(rejected, field), getattr(out, field)[2:])
    with pytest.raises(ValueError, match="even batch"):
        HeadOutput(*(getattr(out, field)[:3] for field in FIELDS)).split_pairs()


def adajudge_formula(head, hidden, attention_mask, response_mask, *, refine=True):
    """docs/design.md §5 steps 3–5 written out, on `head.refinement`'s output (or on `hidden` itself)."""
    refined = head.refinement(hidden, attention_mask) if refine else hidden
    views = reference.multiview_pool(
        refined, attention_mask, response_mask, attn_weight=head.pool.attn_weight, attn_bias=head.pool.attn_bias
    )
    scores = torch.cat([mlp(head.scorers[v].layers, views[:, v]) for v in range(3)], dim=1)
    probs = torch.softmax(mlp(head.router.layers, views.flatten(1)) / head.router_temperature, dim=1)
    return HeadOutput(
        reward=(probs * scores).sum(1),
        view_scores=scores,
        router_probs=probs,
        router_entropy=-(probs * probs.log()).sum(1),
        representation=(probs[..., None] * views[:, :3]).sum(1),
    )


def test_untrained_adajudge_head_passes_hidden_through_and_mixes_views_uniformly():
    head = AdaJudgeHead(D, num_blocks=3, scorer_hidden=16, router_hidden=8, backend="reference")
    hidden, attention_mask, response_mask = make_batch()
    assert torch.equal(head.refinement(hidden, attention_mask), hidden)
    out = head(hidden, attention_mask, response_mask)
    check("untrained", out, lambda *args: adajudge_formula(*args, refine=False), head, *make_batch())
    torch.testing.assert_close(out.router_probs, torch.full((4, 3), 1 / 3))
    torch.testing.assert_close(out.router_entropy, torch.full((4,), math.log(3)))


@pytest.mark.parametrize("scorer_hidden", [16, 0])
def test_adajudge_head_matches_formula(scorer_hidden):
    head = make_head("adajudge", backend="reference", scorer_hidden=scorer_hidden, router_temperature=0.7)
    batch = make_batch()
    check("head", head(*batch), adajudge_formula, head, *batch)


@pytest.mark.parametrize("kind", KINDS)
def test_static_and_adajudge_heads_agree_across_padding_sides(kind):
    head = make_head(kind)
    check("left-padded", head(*make_batch("left")), run, head, make_batch("right"))


@pytest.mark.parametrize("kind", KINDS)
def test_row_alone_equals_row_in_batch(kind):
    head = make_head(kind)
    for b, (prompt, response) in enumerate(ROWS[:3]):
        alone = head(*(t[b : b + 1, : prompt + response] for t in make_batch()))
        check(f"row {b} alone", alone.reward, lambda head, batch: head(*batch).reward[b : b + 1], head, make_batch())
        check(
            f"row {b} alone",
            alone.representation,
            lambda head, batch: head(*batch).representation[b : b + 1],
            head,
            make_batch(),
        )


@pytest.mark.parametrize("kind", KINDS)
def test_torch_backend_matches_reference_backend(kind):
    batch = make_batch()
    check("torch backend", make_head(kind, backend="torch")(*batch), run, make_head(kind, backend="reference"), batch)


def static_formula(head, view, hidden, attention_mask, response_mask):
    """`score(z_view)` written out; the attention weight is the head's own, or zero for last and mean."""
    weight = head.attention.attn_weight if view == 2 else torch.zeros_like(head.score.weight[0])
    bias = head.attention.attn_bias if view == 2 else None
    pooled = reference.multiview_pool(hidden, attention_mask, response_mask, attn_weight=weight, attn_bias=bias)[:, view]
    return pooled @ head.score.weight[0] + (head.score.bias if head.score.bias is not None else 0)


@pytest.mark.parametrize(("kind", "view"), [("last", 0), ("mean", 1), ("attn", 2)])
def test_static_heads_score_their_view(kind, view):
    head = make_head(kind)
    batch = make_batch()
    check(kind, head(*batch).reward, static_formula, head, view, *batch)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_last_token_head_equals_transformers_sequence_classification_score(padding_side):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100,
        hidden_size=D,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=0,
    )
    model = LlamaForSequenceClassification(config).eval()
    lengths = [7, 3, 5]
    input_ids = torch.zeros(3, 7, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for b, n in enumerate(lengths):
        span = slice(0, n) if padding_side == "right" else slice(7 - n, 7)
        input_ids[b, span] = torch.randint(1, 100, (n,))
        attention_mask[b, span] = 1
    head = LastTokenHead(D, bias=False, backend="torch")
    head.score.load_state_dict(model.score.state_dict())

    def transformers_logits(model, input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0]  # [B]

    with torch.no_grad():
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        check("reward", head(hidden, attention_mask).reward, transformers_logits, model, input_ids, attention_mask)


def test_empty_response_row_gives_finite_outputs_and_gradients():
    head = make_head("adajudge")
    hidden, attention_mask, response_mask = make_batch()
    hidden.requires_grad_(True)
    out = head(hidden, attention_mask, response_mask)  # row 3 has no response token
    (out.reward.sum() + out.router_entropy.sum()).backward()
    assert all(torch.isfinite(value).all() for value in vars(out).values())
    assert torch.isfinite(hidden.grad).all()


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    head = make_head(kind)
    hidden, attention_mask, response_mask = make_batch()
    out = head(hidden, attention_mask, response_mask)
    (out.reward.square().sum() + out.router_entropy.sum()).backward()
    parameters = dict(head.named_parameters())
    for name, parameter in parameters.items():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        if name.endswith("attn_bias"):  # softmax is shift-invariant: the gradient is 0 up to rounding
            weight_grad = parameters[name.replace("attn_bias", "attn_weight")].grad
            assert parameter.grad.abs() <= 1e-4 * weight_grad.abs().max(), name
        else:
            assert parameter.grad.abs().sum() > 0, name


def test_half_precision_hidden_gives_fp32_outputs():
    hidden, attention_mask, response_mask = make_batch()
    bf16_batch = (hidden.bfloat16(), attention_mask, response_mask)
    # An fp32 head casts bf16 hidden states up and computes in fp32.
    check("fp32 head", make_head("adajudge")(*bf16_batch), run, make_head("adajudge", backend="reference"), bf16_batch)
    # A bf16 head computes in bf16 and still returns fp32 rewards, probabilities and representations.
    bf16_head = make_head("adajudge").to(torch.bfloat16)
    reference_head = make_head("adajudge", backend="reference").to(torch.bfloat16)
    check("bf16 head", bf16_head(*bf16_batch), run, reference_head, bf16_batch, dtype=torch.bfloat16)


def test_default_num_heads_and_sizes():
    head = AdaJudgeHead(576, num_blocks=1, mlp_ratio=2.0, scorer_hidden=0, router_hidden=0)
    assert head.hidden_size == 576 and head.num_heads == 9
    assert head.refinement.blocks[0].down_proj.in_features == 1152
    assert isinstance(head.scorers[0].layers[0], torch.nn.Linear) and len(head.router.layers) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_build_head_takes_json_options(kind):
    options = json.loads(json.dumps({**OPTIONS[kind], "backend": "reference"}))
    head = build_head(kind, D, **options)
    assert head.hidden_size == D
    assert type(head) is {"adajudge": AdaJudgeHead, "last": LastTokenHead, "mean": MeanPoolHead, "attn": AttentionPoolHead}[kind]


def test_build_head_rejects_unknown_kind_and_option():
    with pytest.raises(ValueError, match="kind: expected one of"):
        build_head("linear", D)
    with pytest.raises(TypeError, match="num_blocks"):
        build_head("last", D, num_blocks=2)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"hidden_size": 0}, ValueError, "hidden_size"),
        ({"hidden_size": 64.0}, TypeError, "hidden_size"),
        ({"num_heads": 5}, ValueError, "num_heads"),
        ({"num_blocks": -1}, ValueError, "num_blocks"),
        ({"scorer_hidden": -4}, ValueError, "scorer_hidden"),
        ({"router_hidden": 1.5}, TypeError, "router_hidden"),
        ({"router_temperature": 0.0}, ValueError, "router_temperature"),
        ({"mlp_ratio": -1.0}, ValueError, "mlp_ratio"),
        ({"backend": "cuda"}, ValueError, "backend"),
    ],
)
def test_bad_adajudge_options_raise(options, error, match):
    with pytest.raises(error, match=match):
        AdaJudgeHead(**{"hidden_size": D, **options})


def test_bad_static_options_raise():
    with pytest.raises(TypeError, match="bias"):
        LastTokenHead(D, bias="no")
    with pytest.raises(ValueError, match="backend"):
        MeanPoolHead(D, backend="gpu")


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_raise(kind):
    head = make_head(kind)
    hidden, attention_mask, response_mask = make_batch()
    with pytest.raises(ValueError, match="hidden: expected shape"):
        head(hidden[..., :32], attention_mask)
    with pytest.raises(ValueError, match="hidden: expected shape"):
        head(hidden[0], attention_mask[0])
    with pytest.raises(TypeError, match="hidden"):
        head(hidden.long(), attention_mask)
    with pytest.raises(ValueError, match="attention_mask"):
        head(hidden, attention_mask[:, :-1])
    with pytest.raises(TypeError, match="attention_mask"):
        head(hidden, attention_mask.float())
    with pytest.raises(ValueError, match="response_mask"):
        head(hidden, attention_mask, response_mask[:2])
    with pytest.raises(ValueError, match="response_mask"):  # response outside the real tokens
        head(hidden, attention_mask, torch.ones_like(response_mask))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_compiled_head_and_norm_bt_loss_match_eager(backend):
    """`torch.compile(fullgraph=True)` of an AdaJudgeHead training step (head + NormBT loss) equals eager."""
    head = make_head("adajudge", backend=backend, num_blocks=1)
    loss_fn = NormBTLoss(gamma=2.0, backend=backend)
    hidden, attention_mask, response_mask = make_batch(rows=[(3, 4), (0, 6), (5, 1), (2, 3)])

    def step(hidden, attention_mask, response_mask):
        out = head(hidden, attention_mask, response_mask)
        return loss_fn(
            out.reward[:2], out.reward[2:], chosen_repr=out.representation[:2], rejected_repr=out.representation[2:]
        )

    eager = step(hidden, attention_mask, response_mask)
    eager_grads = torch.autograd.grad(eager, list(head.parameters()))
    loss_fn.load_state_dict(NormBTLoss().state_dict())  # the compiled step starts from the same EMA
    compiled = torch.compile(step, fullgraph=True)(hidden, attention_mask, response_mask)
    # Inductor reorders fp32 reductions: 1e-4 relative, the suite's fp32 bound for fused vs reference.
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    compiled_grads = torch.autograd.grad(compiled, list(head.parameters()))
    torch.testing.assert_close(compiled_grads, eager_grads, rtol=1e-4, atol=1e-5)
    assert loss_fn.num_batches_tracked == 1
