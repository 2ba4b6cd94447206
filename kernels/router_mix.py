"""Router mix (DESIGN.md §4) in Triton: softmax, mixed reward and entropy in one launch, VJP in another.

Forward per row: π = softmax(u/τ), reward = Σ π_v s_v, H = −Σ π_v log π_v (log π kept for the backward,
so a π that underflows to 0 still has a finite log).
Backward, with upstream (gr, gπ, gH):
    dπ_v = gr·s_v + gπ_v − gH·(log π_v + 1);   du = π ⊙ (dπ − <π, dπ>)/τ;   ds = gr·π
"""
import torch
import triton
import triton.language as tl

from adajudge.kernels.launch import NUM_STAGES, SMALL_WARPS

BLOCK_B = 64


@triton.jit
def router_mix_fwd_kernel(
    router_logits, view_scores, reward, probs, log_probs, entropy,
    B, V, inv_temperature, stride_ub, stride_sb,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    mask_b = offs_b < B
    mask = mask_b[:, None] & (offs_v[None, :] < V)
    rows = offs_b.to(tl.int64)[:, None]
    u = tl.load(router_logits + rows * stride_ub + offs_v[None, :], mask=mask, other=0.0).to(tl.float32)  # [BLOCK_B, BLOCK_V]
    s = tl.load(view_scores + rows * stride_sb + offs_v[None, :], mask=mask, other=0.0).to(tl.float32)
    x = tl.where(offs_v[None, :] < V, u * inv_temperature, float("-inf"))  # rows past B stay finite
    x = x - tl.max(x, axis=1)[:, None]
    e = tl.exp(x)
    total = tl.sum(e, axis=1)
    p = e / total[:, None]
    log_p = tl.where(offs_v[None, :] < V, x - tl.log(total)[:, None], 0.0)
    tl.store(reward + offs_b, tl.sum(p * s, axis=1), mask=mask_b)
    tl.store(entropy + offs_b, -tl.sum(p * log_p, axis=1), mask=mask_b)
    tl.store(probs + rows * V + offs_v[None, :], p, mask=mask)
    tl.store(log_probs + rows * V + offs_v[None, :], log_p, mask=mask)


@triton.jit
def router_mix_bwd_kernel(
    probs, log_probs, view_scores, grad_reward, grad_probs, grad_entropy, d_logits, d_scores,
    B, V, inv_temperature, stride_sb,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    mask_b = offs_b < B
    mask = mask_b[:, None] & (offs_v[None, :] < V)
    rows = offs_b.to(tl.int64)[:, None]
    p = tl.load(probs + rows * V + offs_v[None, :], mask=mask, other=0.0)  # [BLOCK_B, BLOCK_V]
    log_p = tl.load(log_probs + rows * V + offs_v[None, :], mask=mask, other=0.0)
    s = tl.load(view_scores + rows * stride_sb + offs_v[None, :], mask=mask, other=0.0).to(tl.float32)
    g_reward = tl.load(grad_reward + offs_b, mask=mask_b, other=0.0)
    g_entropy = tl.load(grad_entropy + offs_b, mask=mask_b, other=0.0)
    g_probs = tl.load(grad_probs + rows * V + offs_v[None, :], mask=mask, other=0.0)
    d_p = g_reward[:, None] * s + g_probs - g_entropy[:, None] * (log_p + 1.0)
    d_u = p * (d_p - tl.sum(p * d_p, axis=1)[:, None]) * inv_temperature
    tl.store(d_logits + rows * V + offs_v[None, :], d_u, mask=mask)
    tl.store(d_scores + rows * V + offs_v[None, :], g_reward[:, None] * p, mask=mask)


def _row_contiguous(x):
    return x if x.stride(-1) == 1 else x.contiguous()


def router_mix_fwd(router_logits, view_scores, temperature):
    """Returns `((reward [B], probs [B, V], entropy [B]) fp32, saved)`."""
    router_logits, view_scores = _row_contiguous(router_logits), _row_contiguous(view_scores)
    rows, views = router_logits.shape
    new = lambda *shape: torch.empty(shape, dtype=torch.float32, device=router_logits.device)
    reward, probs, log_probs, entropy = new(rows), new(rows, views), new(rows, views), new(rows)
    router_mix_fwd_kernel[(triton.cdiv(rows, BLOCK_B),)](
        router_logits=router_logits, view_scores=view_scores, reward=reward, probs=probs,
        log_probs=log_probs, entropy=entropy, B=rows, V=views, inv_temperature=1.0 / temperature,
        stride_ub=router_logits.stride(0), stride_sb=view_scores.stride(0),
        BLOCK_B=BLOCK_B, BLOCK_V=triton.next_power_of_2(views), num_warps=SMALL_WARPS, num_stages=NUM_STAGES,
    )
    return (reward, probs, entropy), (probs, log_probs, view_scores)


def router_mix_bwd(grad_reward, grad_probs, grad_entropy, temperature, saved):
    """Returns `(d_router_logits, d_view_scores)` in fp32; the caller casts to the input dtypes."""
    probs, log_probs, view_scores = saved
    rows, views = probs.shape
    d_logits, d_scores = torch.empty_like(probs), torch.empty_like(probs)
    router_mix_bwd_kernel[(triton.cdiv(rows, BLOCK_B),)](
        probs=probs, log_probs=log_probs, view_scores=view_scores,
        grad_reward=grad_reward.contiguous(), grad_probs=grad_probs.contiguous(),
        grad_entropy=grad_entropy.contiguous(), d_logits=d_logits, d_scores=d_scores,
        B=rows, V=views, inv_temperature=1.0 / temperature, stride_sb=view_scores.stride(0),
        BLOCK_B=BLOCK_B, BLOCK_V=triton.next_power_of_2(views), num_warps=SMALL_WARPS, num_stages=NUM_STAGES,
    )
    return d_logits, d_scores
