"""Valid inputs for each op of `adajudge.ops`, built from `Choices` (hypothesis draws or a seeded generator).

A `Case` is one call: the op's arguments by name, the inputs whose gradients are compared, and random
upstream gradients. `OP_SPECS[op].build(choices, dtype, layout)` draws one; the same builders serve the
hypothesis strategies (`adajudge.testing.strategies`) and `check_op`'s fixed cases without hypothesis.

What the builders cover (docs/design.md §2-§6 state what is valid):

- `multiview_pool`, layout `"padded"`: `[B, T, D]` with B in 1..4, T in 1..20, D in {1, 3, 8, 17, 40, 64};
  each row right-padded, left-padded or an arbitrary 0/1 pattern (prompt, response and padding tokens
  interleaved); empty responses, empty prompts and rows of padding only; `response_mask` given or None.
- `multiview_pool`, layout `"packed"`: `[total_T, D]` with 1..5 rows of 0..12 tokens (empty rows, and packs
  whose rows are all empty), int32 or int64 `cu_seqlens`, `max_seqlen` exact, omitted or larger than
  the longest row; an attention mask of ones or with holes.
- both pooling layouts: padding tokens holding finite values, NaN or +Inf (tokens outside a view never
  reach it).
- both pooling layouts: masks as int64, bool, int32, uint8 or int8; `attn_bias` absent, a scalar or a
  one-element tensor; a frozen `hidden` (no gradient) beside trainable pooling weights; hidden states
  ×100 (outlier features; bf16 and fp16); attention weights ×4 and bias ×30 (scores up to ±100, a saturated softmax).
- `router_mix` (layout `"dense"`): B in 1..150 rows, V in 1..5 views, temperature in [0.1, 5], logits
  scaled up to ×300 (a saturated router: probabilities that underflow to 0).
- `preference_loss` (layout `"dense"`): 1..100 pairs (none for the `"sum"` and `"none"` reductions),
  rewards scaled up to ×100 (a saturated σ), optional margins and weights, temperature, focal γ in
  {0, 0.5, 2, 3}, centering, every reduction, NormBT with D in {1, 7, 64, 100}, a duplicated pair (distance
  0) and μ as the batch mean, a float or a one-element tensor.
- every op: each float dtype (fp32, bf16, fp16, fp64); strided and non-contiguous inputs and upstream
  gradients (permuted axes, rows inside a wider buffer, every other element). The gaps of a strided
  tensor hold NaN (masks: 5), so a kernel that reads outside the view shows it.
"""
import dataclasses
from collections.abc import Callable, Sequence

import torch

from adajudge.testing.choices import Choices

DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
MASK_DTYPES = (torch.int64, torch.bool, torch.int32, torch.uint8, torch.int8)
POOL_DIMS = (1, 3, 8, 17, 40, 64)
# Magnitudes of the pooling inputs (scales of standard normal values): hidden states typical and ×100 (LLM
# outlier features); weights typical, and large enough that the attention scores reach ±100 and the softmax
# saturates (a one-hot β). Hidden ×100 is drawn in bf16 and fp16, not in fp32: there the scores (|a| ~ 10³)
# round at ~1e-4 in any fp32 implementation, and a rounding independent of PyTorch's lands beyond the rule's
# 2× PyTorch's own error in ~1-2 % of drawn cases (Triton kernels and the fused PyTorch path alike: the worst
# elements move with the rounding of single scores). The fp32 defect found there (the backward's d_attn_weight
# at 3-9× PyTorch's error on a saturated softmax) is fixed and kept as a test (tests/test_ops_multiview_pool.py).
POOL_HIDDEN_SCALES = (1.0, 100.0)
POOL_WEIGHT_SCALES = (1.0, 4.0)
POOL_BIAS_SCALES = (1.0, 30.0)
PADDING_VALUES = ("finite", "nan", "inf")  # what the hidden states of padding tokens hold
# Reward magnitudes of the loss: typical, and large enough that σ(Δ) saturates and softplus is linear (×1000
# is left out: fp16 gradients of the weights, |Δ|·10 (the NormBT cap)·|upstream|, then pass fp16's range).
LOSS_REWARD_SCALES = (1.0, 8.0, 100.0)
PRINTED_VALUES = 64  # integer tensors up to this size are printed whole in a case's description


@dataclasses.dataclass(frozen=True, repr=False)
class Case:
    """The arguments of one call of `op` (by name, in signature order; `None` where absent), the inputs whose
    gradients are compared (`differentiable`), one upstream gradient per output, and how it was drawn."""

    op: str
    dtype: torch.dtype
    layout: str
    inputs: dict
    differentiable: tuple[str, ...]
    grad_outputs: tuple[torch.Tensor, ...]
    note: str = ""

    def call(self, fn: Callable, inputs: dict | None = None):
        """`fn(*positional, **keywords)` as `adajudge.ops.<op>` takes them; keyword arguments left at their
        default (`None`) are not passed, so a function without packed support can still take padded cases."""
        inputs = self.inputs if inputs is None else inputs
        positional = OP_SPECS[self.op].positional
        keywords = {name: value for name, value in inputs.items() if name not in positional and value is not None}
        return fn(*(inputs.get(name) for name in positional), **keywords)

    def to(self, device) -> "Case":
        """The same case on `device` (strides kept)."""
        return self._map(lambda t: _to_device(t, device))

    def as_float64(self) -> "Case":
        """The same case with every float tensor in float64: the inputs of the expected values."""
        return self._map(lambda t: t.double() if t.is_floating_point() else t)

    def _map(self, convert) -> "Case":
        inputs = {k: convert(v) if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()}
        return dataclasses.replace(self, inputs=inputs, grad_outputs=tuple(convert(g) for g in self.grad_outputs))

    def describe(self) -> str:
        """Every argument (shapes, dtypes, strides; masks and boundaries with their values), on several lines."""
        lines = [f"{self.op}, layout {self.layout!r}, {_dtype_name(self.dtype)}" + (f" ({self.note})" if self.note else "")]
        for name, value in self.inputs.items():
            lines.append(f"  {name} = {_describe_value(value)}")
        lines.append(f"  gradients compared: {', '.join(self.differentiable) or 'none'}")
        lines.append("  upstream gradients: " + ", ".join(_describe_value(g) for g in self.grad_outputs))
        return "\n".join(lines)

    __repr__ = describe


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """What the kit knows of one op: how `adajudge.ops.<name>` is called, what it returns, its layouts, and
    the builder of its cases."""

    name: str
    positional: tuple[str, ...]
    outputs: tuple[str, ...]
    layouts: tuple[str, ...]
    build: Callable[[Choices, torch.dtype, str], Case]
    outputs_in_input_dtype: bool  # else fp32 (fp64 for fp64 input)

    def output_dtype(self, dtype: torch.dtype) -> torch.dtype:
        if self.outputs_in_input_dtype or dtype == torch.float64:
            return dtype
        return torch.float32


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """`tensor` on `device` with its strides (a plain `.to` makes strided views contiguous), the gaps of a
    strided view holding NaN (integers: 5) as `_relayout` leaves them."""
    if tensor.device == torch.device(device):
        return tensor
    moved = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=device)
    if not moved.is_contiguous():
        elements = moved.untyped_storage().nbytes() // moved.element_size()
        torch.as_strided(moved, (elements,), (1,)).fill_(float("nan") if tensor.is_floating_point() else 5)
    return moved.copy_(tensor)


def _describe_value(value) -> str:
    if not isinstance(value, torch.Tensor):
        return repr(value)
    text = f"[{', '.join(map(str, value.shape))}] {_dtype_name(value.dtype)}"
    if not value.is_contiguous():
        text += f" strides {tuple(value.stride())}"
    if not value.is_floating_point() and value.numel() <= PRINTED_VALUES:
        text += f" {value.int().tolist()}"
    elif value.numel() == 1:
        text += f" {value.item():.6g}"
    return text


# ----- strides: the same values, laid out differently in memory


def _relayout(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """`tensor`'s values in another memory layout: `contiguous`; `reversed` (axes in reverse order in
    memory); `swap01` (the first two axes swapped in memory); `wide_rows` (rows of a buffer 3 elements
    wider); `every_other` (every other element of the last axis). Gaps hold NaN (integers: 5)."""
    if how == "contiguous" or tensor.ndim == 0:
        return tensor
    if how in ("reversed", "swap01"):
        order = list(reversed(range(tensor.ndim))) if how == "reversed" else [1, 0, *range(2, tensor.ndim)]
        inverse = [order.index(axis) for axis in range(tensor.ndim)]
        return tensor.permute(order).contiguous().permute(inverse)
    width, step = {"wide_rows": (tensor.shape[-1] + 3, 1), "every_other": (2 * tensor.shape[-1], 2)}[how]
    gap = float("nan") if tensor.is_floating_point() else 5
    buffer = torch.full((*tensor.shape[:-1], width), gap, dtype=tensor.dtype)
    view = buffer[..., : step * tensor.shape[-1] : step]
    view.copy_(tensor)
    return view


def _values(generator: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64) * scale


# ----- multiview_pool


def _padded_masks(choices: Choices, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """attention and response masks `[B, T]` (int64): per row a right- or left-padded prompt + response
    (either may be empty, the row may be all padding), or any pattern of padding, prompt and response."""
    attention = torch.zeros(batch, length, dtype=torch.long)
    response = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        style = choices.sample(("right", "left", "scattered"))
        if style == "scattered":
            kinds = torch.tensor([choices.integer(0, 3) for _ in range(length)])  # 0 padding, 1 prompt, 2-3 response
            attention[b], response[b] = (kinds > 0).long(), (kinds > 1).long()
        else:
            real = choices.integer(0, length)
            prompt = choices.integer(0, real)
            start = 0 if style == "right" else length - real
            attention[b, start : start + real] = 1
            response[b, start + prompt : start + real] = 1
    return attention, response


def _packed_masks(choices: Choices, lengths: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """attention and response masks `[total_T]` (int64) of packed rows: per row a prompt then a response,
    every token real; or any pattern of padding (holes in the row), prompt and response."""
    attention, response = [], []
    for length in lengths:
        if choices.sample(("dense", "scattered")) == "dense":
            prompt = choices.integer(0, length)
            attention.append(torch.ones(length, dtype=torch.long))
            response.append((torch.arange(length) >= prompt).long())
        else:
            kinds = torch.tensor([choices.integer(0, 3) for _ in range(length)], dtype=torch.long)
            attention.append((kinds > 0).long())
            response.append((kinds > 1).long())
    return torch.cat(attention), torch.cat(response)


def _multiview_pool_case(choices: Choices, dtype: torch.dtype, layout: str) -> Case:
    seed = choices.integer(0, 2**16)
    generator = torch.Generator().manual_seed(seed)
    dim = choices.sample(POOL_DIMS)
    packed = {}
    if layout == "padded":
        batch, length = choices.integer(1, 4), choices.integer(1, 20)
        attention, response = _padded_masks(choices, batch, length)
        token_shape, mask_layouts, hidden_layouts = (batch, length), ("contiguous", "reversed"), ("swap01",)
    else:
        lengths = [choices.integer(0, 12) for _ in range(choices.integer(1, 5))]
        attention, response = _packed_masks(choices, lengths)
        batch, token_shape, mask_layouts, hidden_layouts = len(lengths), (sum(lengths),), ("contiguous", "every_other"), ()
        cu_seqlens = torch.tensor([0, *torch.tensor(lengths, dtype=torch.long).cumsum(0).tolist()],
                                  dtype=choices.sample((torch.int32, torch.int64)))
        max_seqlen = {"longest": max(lengths), "absent": None, "larger": max(lengths) + 3}[
            choices.sample(("longest", "absent", "larger"))]
        packed = {"cu_seqlens": _relayout(cu_seqlens, choices.sample(("contiguous", "every_other"))), "max_seqlen": max_seqlen}
    response_given = choices.boolean()
    mask_dtype = choices.sample(MASK_DTYPES)
    mask_layout = choices.sample(mask_layouts)
    hidden_scale = choices.sample(POOL_HIDDEN_SCALES) if dtype in (torch.bfloat16, torch.float16) else 1.0
    weight_scale = choices.sample(POOL_WEIGHT_SCALES)
    bias_kind = choices.sample(("none", "scalar", "one_element"))
    bias_scale = choices.sample(POOL_BIAS_SCALES) if bias_kind != "none" else 1.0
    frozen_hidden = choices.boolean()

    hidden = _values(generator, *token_shape, dim, scale=hidden_scale)
    padding = choices.sample(PADDING_VALUES)
    if padding != "finite":  # tokens outside every view hold NaN or ±Inf: no view may read them
        hidden[~attention.bool()] = float("nan") if padding == "nan" else float("inf")
    hidden = hidden.to(dtype)
    hidden = _relayout(hidden, choices.sample(("contiguous", *hidden_layouts, "wide_rows", "every_other")))
    attn_weight = _relayout(_values(generator, dim, scale=weight_scale).to(dtype), choices.sample(("contiguous", "every_other")))
    bias_shape = {"none": None, "scalar": (), "one_element": (1,)}[bias_kind]
    attn_bias = None if bias_shape is None else _values(generator, *bias_shape, scale=bias_scale).to(dtype)
    grad_views = _values(generator, batch, 4, dim).to(dtype)
    grad_views = _relayout(grad_views, choices.sample(("contiguous", "reversed")))
    inputs = {
        "hidden": hidden,
        "attention_mask": _relayout(attention.to(mask_dtype), mask_layout),
        "response_mask": _relayout(response.to(mask_dtype), mask_layout) if response_given else None,
        "attn_weight": attn_weight,
        "attn_bias": attn_bias,
        "cu_seqlens": packed.get("cu_seqlens"),
        "max_seqlen": packed.get("max_seqlen"),
    }
    differentiable = (*(() if frozen_hidden else ("hidden",)), "attn_weight", *(() if attn_bias is None else ("attn_bias",)))
    note = f"values: seed {seed}, hidden ×{hidden_scale:g}, attn_weight ×{weight_scale:g}" + (
        f", attn_bias ×{bias_scale:g}" if attn_bias is not None else "") + (
        f", padding tokens hold {padding}" if padding != "finite" else "")
    return Case("multiview_pool", dtype, layout, inputs, differentiable, (grad_views,), note)


# ----- router_mix


def _router_mix_case(choices: Choices, dtype: torch.dtype, layout: str) -> Case:
    seed = choices.integer(0, 2**16)
    generator = torch.Generator().manual_seed(seed)
    batch, views = choices.integer(1, 150), choices.integer(1, 5)
    temperature = choices.real(0.1, 5.0)
    scale = choices.sample((1.0, 30.0, 300.0))
    logits = _relayout(_values(generator, batch, views, scale=scale).to(dtype), choices.sample(("contiguous", "reversed")))
    scores = _relayout(_values(generator, batch, views).to(dtype), choices.sample(("contiguous", "every_other")))
    out = torch.float64 if dtype == torch.float64 else torch.float32
    grads = (_values(generator, batch).to(out),
             _relayout(_values(generator, batch, views).to(out), choices.sample(("contiguous", "reversed"))),
             _values(generator, batch).to(out))
    inputs = {"router_logits": logits, "view_scores": scores, "temperature": temperature}
    return Case("router_mix", dtype, layout, inputs, ("router_logits", "view_scores"), grads,
                f"values: seed {seed}, router_logits ×{scale:g}")


# ----- preference_loss


def _preference_loss_case(choices: Choices, dtype: torch.dtype, layout: str) -> Case:
    seed = choices.integer(0, 2**16)
    generator = torch.Generator().manual_seed(seed)
    reduction = choices.sample(("mean", "sum", "none"))
    pairs = choices.integer(1 if reduction == "mean" else 0, 100)  # no pairs: an empty loss, or 0
    scale = choices.sample(LOSS_REWARD_SCALES)
    reward_layout = choices.sample(("contiguous", "every_other"))
    inputs = {
        "chosen": _relayout(_values(generator, pairs, scale=scale).to(dtype), reward_layout),
        "rejected": _relayout(_values(generator, pairs, scale=scale).to(dtype), reward_layout),
        "margin": _values(generator, pairs).abs().to(dtype) if choices.boolean() else None,
        "temperature": choices.sample((1.0, 0.5, 2.0)),
        "gamma": choices.sample((0.0, 0.5, 2.0, 3.0)),
        "weights": torch.rand(pairs, generator=generator, dtype=torch.float64).to(dtype) if choices.boolean() else None,
        "center_coef": choices.sample((0.0, 0.01)),
        "chosen_repr": None,
        "rejected_repr": None,
        "norm_scale": None,
        "reduction": reduction,
    }
    if choices.boolean():  # NormBT
        dim = choices.sample((1, 7, 64, 100))
        repr_layout = choices.sample(("contiguous", "reversed", "wide_rows"))
        chosen_repr, rejected_repr = _values(generator, pairs, dim), _values(generator, pairs, dim)
        if pairs and choices.boolean():  # a duplicated pair: distance 0
            rejected_repr[0] = chosen_repr[0]
        inputs["chosen_repr"] = _relayout(chosen_repr.to(dtype), repr_layout)
        inputs["rejected_repr"] = _relayout(rejected_repr.to(dtype), repr_layout)
        norm_scale = choices.sample(("batch_mean", "float", "tensor"))
        if norm_scale == "float":
            inputs["norm_scale"] = choices.sample((0.5, 3.0))
        elif norm_scale == "tensor":
            inputs["norm_scale"] = torch.tensor(choices.sample((0.5, 3.0)), dtype=dtype)
    differentiable = tuple(name for name in ("chosen", "rejected", "margin", "weights") if inputs[name] is not None)
    out = torch.float64 if dtype == torch.float64 else torch.float32
    grad = _values(generator, *((pairs,) if inputs["reduction"] == "none" else ())).to(out)
    return Case("preference_loss", dtype, layout, inputs, differentiable, (grad,), f"values: seed {seed}, rewards ×{scale:g}")


OP_SPECS = {
    "multiview_pool": OpSpec("multiview_pool", ("hidden", "attention_mask", "response_mask"), ("views",),
                             ("padded", "packed"), _multiview_pool_case, outputs_in_input_dtype=True),
    "router_mix": OpSpec("router_mix", ("router_logits", "view_scores"), ("reward", "probs", "entropy"), ("dense",),
                         _router_mix_case, outputs_in_input_dtype=False),
    "preference_loss": OpSpec("preference_loss", ("chosen", "rejected"), ("loss",), ("dense",), _preference_loss_case,
                              outputs_in_input_dtype=False),
}


def op_spec(op: str) -> OpSpec:
    """The `OpSpec` of `op`, or a ValueError naming the ops there are."""
    if op not in OP_SPECS:
        raise ValueError(f"op: expected one of {', '.join(map(repr, OP_SPECS))}, got {op!r}")
    return OP_SPECS[op]


def padded_masks(choices: Choices, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooling builder's padded attention/response masks `[B, T]` (int64), for strategies of their own."""
    return _padded_masks(choices, batch, length)
