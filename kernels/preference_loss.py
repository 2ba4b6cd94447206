"""Bradley-Terry family loss (docs/design.md §6) in Triton: kernels, launcher, registered autograd, entry point.

With `Δ = (c − r − m)/τ`, `p = σ(Δ)`, `F = exp(−γ·softplus(Δ)) = σ(−Δ)^γ`, `ℓ₀ = softplus(−Δ)`:
    ℓ = w·f·F·ℓ₀ + κ(c + r)²,   f = min(μ/(‖h_c − h_r‖₂ + ε), NORMBT_MAX_FACTOR) (NormBT, stop-gradient) or 1
    ∂ℓ/∂Δ = −w·f·F·(γ·p·ℓ₀ + (1 − p))      (the focal factor is differentiated)
The forward kernel writes ℓ, d_delta = ∂ℓ/∂Δ / τ, d_center = 2κ(c + r) and unweighted = f·F·ℓ₀; the backward
only scales them by the upstream gradient (four elementwise products on [N] vectors, shared with the fused
PyTorch path: `adajudge.fused.preference_loss.preference_loss_bwd`).

Where μ comes from is a named mode (`NORM_*`): no representations (f = 1); a float (a kernel argument); a
one-element tensor (read on the device, e.g. `NormBTLoss`'s EMA); or the batch's mean distance, for which a
first kernel spreads the distances over a fixed number of programs and writes one partial sum per program,
and every program of the loss kernel sums those partials in the same order (deterministic, no atomics,
no host sync). Traffic: representations read once (2·N·D·e), rewards read once, 4 fp32 [N] vectors written.
"""
import torch
import triton
import triton.language as tl
from torch.library import triton_op

from adajudge.fused.preference_loss import preference_loss_bwd
from adajudge.reference.preference_loss import NORMBT_MAX_FACTOR

from .launch import SMALL_WARPS, launch, on_device, target_programs

BLOCK_N = 32
BLOCK_D = 32  # [BLOCK_N, BLOCK_D] distance tiles: larger ones spilled at sm_90 (compile check)
MAX_PARTIALS = 1024  # programs of the distance kernel, at most: the loss kernel loads their sums as one vector

NORM_NONE = tl.constexpr(0)  # no representations: plain or focal BT
NORM_SCALAR = tl.constexpr(1)  # μ is the float argument `norm_value`
NORM_TENSOR = tl.constexpr(2)  # μ is the one element of `norm_scale`
NORM_BATCH_MEAN = tl.constexpr(3)  # μ is the batch's mean distance, from the distance kernel's partials


MAX_FACTOR = tl.constexpr(NORMBT_MAX_FACTOR)


@triton.jit
def _log1p(x):
    """log(1 + x) for x ≥ 0, accurate to a few ulp where 1 + x rounds away most of x (Goldberg's
    correction: the rounding of u = 1 + x is divided back out); x itself where u rounds to 1. Written from
    `tl.log` because libdevice's log1p does not run under the interpreter."""
    u = 1.0 + x
    return tl.where(u == 1.0, x, tl.log(u) * (x / tl.where(u == 1.0, 1.0, u - 1.0)))


@triton.jit
def _softplus(x):
    """log(1 + eˣ) in fp32 without overflow, and without losing e⁻³⁰ = 9.4e-14 to 1 + e⁻³⁰ = 1."""
    return tl.maximum(x, 0.0) + _log1p(tl.exp(-tl.abs(x)))


@triton.jit
def _pair_distances(chosen_repr, rejected_repr, offs_n, mask_n, D, stride_cr, stride_rr, BLOCK_D: tl.constexpr):
    """‖h_c − h_r‖₂ for a block of pairs, D swept in chunks. [BLOCK_N] fp32."""
    squares = tl.zeros([offs_n.shape[0]], dtype=tl.float32)
    rows = offs_n.to(tl.int64)[:, None]
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask = mask_n[:, None] & (offs_d[None, :] < D)
        diff = (tl.load(chosen_repr + rows * stride_cr + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
                - tl.load(rejected_repr + rows * stride_rr + offs_d[None, :], mask=mask, other=0.0).to(tl.float32))
        squares += tl.sum(diff * diff, axis=1)
    return tl.sqrt(squares)


@triton.jit(do_not_specialize=["N"])
def preference_loss_distance_kernel(
    chosen_repr, rejected_repr, distance, partial_sums,
    N, D, stride_cr, stride_rr,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Each program takes every num_programs-th block of pairs: their distances, and their sum."""
    pid = tl.program_id(0)
    total = 0.0
    for n0 in range(pid * BLOCK_N, N, tl.num_programs(0) * BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        dist = _pair_distances(chosen_repr, rejected_repr, offs_n, mask_n, D, stride_cr, stride_rr, BLOCK_D)
        tl.store(distance + offs_n, dist, mask=mask_n)
        total += tl.sum(tl.where(mask_n, dist, 0.0), axis=0)
    tl.store(partial_sums + pid, total)


@triton.jit(do_not_specialize=["N", "num_partials"])
def preference_loss_fwd_kernel(
    chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, distance, partial_sums,
    loss, d_delta, d_center, unweighted,
    N, D, num_partials, inv_temperature, gamma, center_coef, eps, norm_value,
    stride_c, stride_r, stride_m, stride_w, stride_cr, stride_rr,
    HAS_MARGIN: tl.constexpr, HAS_WEIGHTS: tl.constexpr, NORM_MODE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_P: tl.constexpr,
):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    rows = offs_n.to(tl.int64)
    c = tl.load(chosen + rows * stride_c, mask=mask_n, other=0.0).to(tl.float32)  # [BLOCK_N]
    r = tl.load(rejected + rows * stride_r, mask=mask_n, other=0.0).to(tl.float32)
    delta = c - r
    if HAS_MARGIN:
        delta -= tl.load(margin + rows * stride_m, mask=mask_n, other=0.0).to(tl.float32)
    delta *= inv_temperature
    base = _softplus(-delta)
    focal = tl.exp(-gamma * _softplus(delta))
    grad = -focal * (gamma * tl.sigmoid(delta) * base + tl.sigmoid(-delta))
    base *= focal
    if NORM_MODE != NORM_NONE:
        if NORM_MODE == NORM_BATCH_MEAN:
            offs_p = tl.arange(0, BLOCK_P)
            mu = tl.sum(tl.load(partial_sums + offs_p, mask=offs_p < num_partials, other=0.0), axis=0) / N
            dist = tl.load(distance + offs_n, mask=mask_n, other=0.0)
        else:
            if NORM_MODE == NORM_TENSOR:
                mu = tl.load(norm_scale).to(tl.float32)
            else:
                mu = norm_value
            dist = _pair_distances(chosen_repr, rejected_repr, offs_n, mask_n, D, stride_cr, stride_rr, BLOCK_D)
        factor = tl.minimum(mu / (dist + eps), MAX_FACTOR)
        base *= factor
        grad *= factor
    grad *= inv_temperature
    tl.store(unweighted + offs_n, base, mask=mask_n)
    if HAS_WEIGHTS:
        w = tl.load(weights + rows * stride_w, mask=mask_n, other=0.0).to(tl.float32)
        base *= w
        grad *= w
    total_reward = c + r
    tl.store(loss + offs_n, base + center_coef * total_reward * total_reward, mask=mask_n)
    tl.store(d_delta + offs_n, grad, mask=mask_n)
    tl.store(d_center + offs_n, 2.0 * center_coef * total_reward, mask=mask_n)


def _row_contiguous(x):
    return None if x is None else (x if x.stride(-1) == 1 else x.contiguous())


@triton_op("adajudge::preference_loss_fwd", mutates_args=())
def preference_loss_fwd(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: torch.Tensor | None,
    weights: torch.Tensor | None,
    chosen_repr: torch.Tensor | None,
    rejected_repr: torch.Tensor | None,
    norm_scale: torch.Tensor | None,
    norm_value: float | None,
    temperature: float,
    gamma: float,
    center_coef: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns `(loss, d_delta, d_center, unweighted)`, each `[N]` fp32. μ: `norm_scale` (a one-element
    tensor) or `norm_value` (a float) when given, else the batch mean distance; no representations: no μ."""
    pairs, device = chosen.shape[0], chosen.device
    chosen_repr, rejected_repr = _row_contiguous(chosen_repr), _row_contiguous(rejected_repr)
    if chosen_repr is None:
        mode = NORM_NONE.value
    elif norm_scale is not None:
        mode = NORM_TENSOR.value
    elif norm_value is not None:
        mode = NORM_SCALAR.value
    else:
        mode = NORM_BATCH_MEAN.value

    def new(size):
        return torch.empty(size, dtype=torch.float32, device=device)

    loss, d_delta, d_center, unweighted = new(pairs), new(pairs), new(pairs), new(pairs)
    distance = partial_sums = None
    num_partials = 0
    with on_device(chosen):
        if mode == NORM_BATCH_MEAN.value:
            num_partials = max(1, min(triton.cdiv(pairs, BLOCK_N), target_programs(device), MAX_PARTIALS))
            distance, partial_sums = new(pairs), new(num_partials)
            launch(
                preference_loss_distance_kernel, (num_partials,),
                chosen_repr=chosen_repr, rejected_repr=rejected_repr, distance=distance, partial_sums=partial_sums,
                N=pairs, D=chosen_repr.shape[1], stride_cr=chosen_repr.stride(0), stride_rr=rejected_repr.stride(0),
                BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D, num_warps=SMALL_WARPS,
            )
        launch(
            preference_loss_fwd_kernel, (triton.cdiv(pairs, BLOCK_N),),
            chosen=chosen, rejected=rejected, margin=margin, weights=weights,
            chosen_repr=chosen_repr, rejected_repr=rejected_repr, norm_scale=norm_scale, distance=distance,
            partial_sums=partial_sums, loss=loss, d_delta=d_delta, d_center=d_center, unweighted=unweighted,
            N=pairs, D=1 if chosen_repr is None else chosen_repr.shape[1], num_partials=num_partials,
            inv_temperature=1.0 / temperature, gamma=gamma, center_coef=center_coef, eps=eps,
            norm_value=1.0 if norm_value is None else norm_value,
            stride_c=chosen.stride(0), stride_r=rejected.stride(0),
            stride_m=0 if margin is None else margin.stride(0), stride_w=0 if weights is None else weights.stride(0),
            stride_cr=0 if chosen_repr is None else chosen_repr.stride(0),
            stride_rr=0 if rejected_repr is None else rejected_repr.stride(0),
            HAS_MARGIN=margin is not None, HAS_WEIGHTS=weights is not None, NORM_MODE=mode,
            BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D, BLOCK_P=MAX_PARTIALS, num_warps=SMALL_WARPS,
        )
    return loss, d_delta, d_center, unweighted


def _save_for_preference_loss_bwd(ctx, inputs, output):
    """`setup_context` of `preference_loss_fwd`'s autograd: the per-pair factors the backward scales."""
    _, *saved = output
    ctx.mark_non_differentiable(*saved)
    ctx.save_for_backward(*saved)
    ctx.dtypes = [None if t is None else t.dtype for t in inputs[:4]]  # chosen, rejected, margin, weights


def _preference_loss_backward(ctx, grad_loss, *_):
    """Gradients of `chosen`, `rejected`, `margin`, `weights` in their dtypes; none for the representations
    (the NormBT factor is a stop-gradient) or the scalars. First order only."""
    return (*preference_loss_bwd(grad_loss, ctx.saved_tensors, ctx.dtypes), *[None] * 8)


preference_loss_fwd.register_autograd(_preference_loss_backward, setup_context=_save_for_preference_loss_bwd)


def preference_loss_triton(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options):
    """Per-pair `[N]` fp32 loss of `adajudge.ops.preference_loss` on the Triton kernels, for validated
    fp32/bf16/fp16 input; `norm_scale` a float, a one-element tensor or None; `options` =
    `(temperature, gamma, center_coef, eps)` as floats."""
    scale_tensor = norm_scale if isinstance(norm_scale, torch.Tensor) else None
    scale_value = None if norm_scale is None or scale_tensor is not None else float(norm_scale)
    loss, *_ = torch.ops.adajudge.preference_loss_fwd(
        chosen, rejected, margin, weights, chosen_repr, rejected_repr, scale_tensor, scale_value, *options
    )
    return loss
