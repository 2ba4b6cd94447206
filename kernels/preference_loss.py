"""Bradley-Terry family loss (DESIGN.md §6) in one Triton launch: per-pair loss and local gradients.

With `Δ = (c − r − m)/τ`, `p = σ(Δ)`, `F = exp(−γ·softplus(Δ)) = σ(−Δ)^γ`, `ℓ₀ = softplus(−Δ)`:
    ℓ = w·f·F·ℓ₀ + κ(c + r)²,   f = μ/(‖h_c − h_r‖₂ + ε) (NormBT, stop-gradient) or 1
    ∂ℓ/∂Δ = −w·f·F·(γ·p·ℓ₀ + (1 − p))      (the focal factor is differentiated)
The kernel writes ℓ, d_delta = ∂ℓ/∂Δ / τ, d_center = 2κ(c + r) and unweighted = f·F·ℓ₀; the backward
only scales them by the upstream gradient. NormBT distances come from the same launch: when μ is the
batch mean distance, one program makes two sweeps (distances, then losses) so no second launch is needed.
"""
import torch
import triton
import triton.language as tl

from adajudge.kernels.launch import NUM_STAGES, SMALL_WARPS

BLOCK_N = 32
BLOCK_D = 32  # [BLOCK_N, BLOCK_D] distance tiles: larger ones spill at sm_90 (compile check)


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


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


@triton.jit
def preference_loss_fwd_kernel(
    chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale,
    loss, d_delta, d_center, unweighted, distance,
    N, D, inv_temperature, gamma, center_coef, eps,
    stride_c, stride_r, stride_m, stride_w, stride_cr, stride_rr,
    HAS_MARGIN: tl.constexpr, HAS_WEIGHTS: tl.constexpr, HAS_REPR: tl.constexpr, BATCH_MEAN_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid, num_programs = tl.program_id(0), tl.num_programs(0)
    mu = 1.0
    if HAS_REPR:
        if BATCH_MEAN_SCALE:  # one program (the launcher's grid is 1): sweep 1 stores every distance
            total = 0.0
            for n0 in range(0, N, BLOCK_N):
                offs_n = n0 + tl.arange(0, BLOCK_N)
                mask_n = offs_n < N
                dist = _pair_distances(chosen_repr, rejected_repr, offs_n, mask_n, D, stride_cr, stride_rr, BLOCK_D)
                tl.store(distance + offs_n, dist, mask=mask_n)
                total += tl.sum(tl.where(mask_n, dist, 0.0), axis=0)
            mu = total / N
        else:
            mu = tl.load(norm_scale).to(tl.float32)
    for n0 in range(pid * BLOCK_N, N, num_programs * BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        c = tl.load(chosen + offs_n * stride_c, mask=mask_n, other=0.0).to(tl.float32)  # [BLOCK_N]
        r = tl.load(rejected + offs_n * stride_r, mask=mask_n, other=0.0).to(tl.float32)
        delta = c - r
        if HAS_MARGIN:
            delta -= tl.load(margin + offs_n * stride_m, mask=mask_n, other=0.0).to(tl.float32)
        delta *= inv_temperature
        base = _softplus(-delta)
        focal = tl.exp(-gamma * _softplus(delta))
        grad = -focal * (gamma * tl.sigmoid(delta) * base + tl.sigmoid(-delta))
        base *= focal
        if HAS_REPR:
            if BATCH_MEAN_SCALE:
                dist = tl.load(distance + offs_n, mask=mask_n, other=0.0)
            else:
                dist = _pair_distances(chosen_repr, rejected_repr, offs_n, mask_n, D, stride_cr, stride_rr, BLOCK_D)
            factor = mu / (dist + eps)
            base *= factor
            grad *= factor
        grad *= inv_temperature
        tl.store(unweighted + offs_n, base, mask=mask_n)
        if HAS_WEIGHTS:
            w = tl.load(weights + offs_n * stride_w, mask=mask_n, other=0.0).to(tl.float32)
            base *= w
            grad *= w
        total_reward = c + r
        tl.store(loss + offs_n, base + center_coef * total_reward * total_reward, mask=mask_n)
        tl.store(d_delta + offs_n, grad, mask=mask_n)
        tl.store(d_center + offs_n, 2.0 * center_coef * total_reward, mask=mask_n)


def _row_contiguous(x):
    return None if x is None else (x if x.stride(-1) == 1 else x.contiguous())


def preference_loss_fwd(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, temperature, gamma, center_coef, eps):
    """Returns `(loss [N] fp32, saved)`, `saved = (d_delta, d_center, unweighted)`, each `[N]` fp32."""
    pairs, device = chosen.shape[0], chosen.device
    chosen_repr, rejected_repr = _row_contiguous(chosen_repr), _row_contiguous(rejected_repr)
    has_repr = chosen_repr is not None
    batch_mean = has_repr and norm_scale is None
    new = lambda: torch.empty(pairs, dtype=torch.float32, device=device)
    loss, d_delta, d_center, unweighted = new(), new(), new(), new()
    distance = new() if batch_mean else loss  # scratch for the two-sweep batch-mean path, else unread
    scale = torch.as_tensor(1.0 if norm_scale is None else norm_scale, dtype=torch.float32, device=device)
    grid = (1,) if batch_mean else (triton.cdiv(pairs, BLOCK_N),)
    preference_loss_fwd_kernel[grid](
        chosen=chosen, rejected=rejected, margin=chosen if margin is None else margin,
        weights=chosen if weights is None else weights,
        chosen_repr=chosen if not has_repr else chosen_repr, rejected_repr=chosen if not has_repr else rejected_repr,
        norm_scale=scale, loss=loss, d_delta=d_delta, d_center=d_center, unweighted=unweighted, distance=distance,
        N=pairs, D=chosen_repr.shape[1] if has_repr else 1, inv_temperature=1.0 / temperature,
        gamma=gamma, center_coef=center_coef, eps=eps,
        stride_c=chosen.stride(0), stride_r=rejected.stride(0),
        stride_m=0 if margin is None else margin.stride(0), stride_w=0 if weights is None else weights.stride(0),
        stride_cr=chosen_repr.stride(0) if has_repr else 0, stride_rr=rejected_repr.stride(0) if has_repr else 0,
        HAS_MARGIN=margin is not None, HAS_WEIGHTS=weights is not None, HAS_REPR=has_repr,
        BATCH_MEAN_SCALE=batch_mean, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D, num_warps=SMALL_WARPS, num_stages=NUM_STAGES,
    )
    return loss, (d_delta, d_center, unweighted)


def preference_loss_bwd(grad_loss, saved):
    """Returns `(d_chosen, d_rejected, d_margin, d_weights)` for the per-pair upstream `grad_loss [N]`."""
    d_delta, d_center, unweighted = saved
    return grad_loss * (d_delta + d_center), grad_loss * (d_center - d_delta), -grad_loss * d_delta, grad_loss * unweighted
