"""Router mix (docs/design.md §4) in Triton: kernels, launchers, registered autograd, entry point.

Forward per row: π = softmax(u/τ), reward = Σ π_v s_v, H = −Σ π_v log π_v (log π kept for the backward,
so a π that underflows to 0 still has a finite log). One launch; reads 2·B·V inputs, writes (2V + 2)·B fp32.
Backward, with upstream (gr, gπ, gH):
    dπ_v = gr·s_v + gπ_v − gH·(log π_v + 1);   du = π ⊙ (dπ − <π, dπ>)/τ;   ds = gr·π
One launch. The temperature is a kernel argument (no tensor, no host sync).
"""
import torch
import triton
import triton.language as tl
from torch.library import triton_op

from .launch import SMALL_WARPS, launch, on_device

BLOCK_B = 64


@triton.jit(do_not_specialize=["B"])
def router_mix_fwd_kernel(
    router_logits, view_scores, reward, probs, log_probs, entropy,
    B, V, inv_temperature, stride_ub, stride_uv, stride_sb, stride_sv,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    mask_b = offs_b < B
    mask = mask_b[:, None] & (offs_v[None, :] < V)
    rows = offs_b.to(tl.int64)[:, None]
    # [BLOCK_B, BLOCK_V]
    u = tl.load(router_logits + rows * stride_ub + offs_v[None, :] * stride_uv, mask=mask, other=0.0).to(tl.float32)
    s = tl.load(view_scores + rows * stride_sb + offs_v[None, :] * stride_sv, mask=mask, other=0.0).to(tl.float32)
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


@triton.jit(do_not_specialize=["B"])
def router_mix_bwd_kernel(
    probs, log_probs, view_scores, grad_reward, grad_probs, grad_entropy, d_logits, d_scores,
    B, V, inv_temperature, stride_sb, stride_sv, stride_gr, stride_gpb, stride_gpv, stride_ge,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_v = tl.arange(0, BLOCK_V)
    mask_b = offs_b < B
    mask = mask_b[:, None] & (offs_v[None, :] < V)
    rows = offs_b.to(tl.int64)[:, None]
    p = tl.load(probs + rows * V + offs_v[None, :], mask=mask, other=0.0)  # [BLOCK_B, BLOCK_V]
    log_p = tl.load(log_probs + rows * V + offs_v[None, :], mask=mask, other=0.0)
    s = tl.load(view_scores + rows * stride_sb + offs_v[None, :] * stride_sv, mask=mask, other=0.0).to(tl.float32)
    g_reward = tl.load(grad_reward + offs_b.to(tl.int64) * stride_gr, mask=mask_b, other=0.0).to(tl.float32)
    g_entropy = tl.load(grad_entropy + offs_b.to(tl.int64) * stride_ge, mask=mask_b, other=0.0).to(tl.float32)
    g_probs = tl.load(grad_probs + rows * stride_gpb + offs_v[None, :] * stride_gpv, mask=mask, other=0.0).to(tl.float32)
    d_p = g_reward[:, None] * s + g_probs - g_entropy[:, None] * (log_p + 1.0)
    d_u = p * (d_p - tl.sum(p * d_p, axis=1)[:, None]) * inv_temperature
    tl.store(d_logits + rows * V + offs_v[None, :], d_u, mask=mask)
    tl.store(d_scores + rows * V + offs_v[None, :], g_reward[:, None] * p, mask=mask)


@triton_op("adajudge::router_mix_fwd", mutates_args=())
def router_mix_fwd(
    router_logits: torch.Tensor, view_scores: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns `(reward [B], probs [B, V], entropy [B], log_probs [B, V])`, all fp32."""
    rows, views = router_logits.shape

    def new(*shape):
        return torch.empty(shape, dtype=torch.float32, device=router_logits.device)

    reward, probs, log_probs, entropy = new(rows), new(rows, views), new(rows, views), new(rows)
    with on_device(router_logits):
        launch(
            router_mix_fwd_kernel, (triton.cdiv(rows, BLOCK_B),),
            router_logits=router_logits, view_scores=view_scores, reward=reward, probs=probs,
            log_probs=log_probs, entropy=entropy, B=rows, V=views, inv_temperature=1.0 / temperature,
            stride_ub=router_logits.stride(0), stride_uv=router_logits.stride(1),
            stride_sb=view_scores.stride(0), stride_sv=view_scores.stride(1),
            BLOCK_B=BLOCK_B, BLOCK_V=triton.next_power_of_2(views), num_warps=SMALL_WARPS,
        )
    return reward, probs, entropy, log_probs


@triton_op("adajudge::router_mix_bwd", mutates_args=())
def router_mix_bwd(
    grad_reward: torch.Tensor,
    grad_probs: torch.Tensor,
    grad_entropy: torch.Tensor,
    probs: torch.Tensor,
    log_probs: torch.Tensor,
    view_scores: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns `(d_router_logits, d_view_scores)` `[B, V]` fp32; upstream gradients may be strided."""
    rows, views = probs.shape
    d_logits, d_scores = torch.empty_like(probs), torch.empty_like(probs)
    with on_device(probs):
        launch(
            router_mix_bwd_kernel, (triton.cdiv(rows, BLOCK_B),),
            probs=probs, log_probs=log_probs, view_scores=view_scores, grad_reward=grad_reward,
            grad_probs=grad_probs, grad_entropy=grad_entropy, d_logits=d_logits, d_scores=d_scores,
            B=rows, V=views, inv_temperature=1.0 / temperature,
            stride_sb=view_scores.stride(0), stride_sv=view_scores.stride(1), stride_gr=grad_reward.stride(0),
            stride_gpb=grad_probs.stride(0), stride_gpv=grad_probs.stride(1), stride_ge=grad_entropy.stride(0),
            BLOCK_B=BLOCK_B, BLOCK_V=triton.next_power_of_2(views), num_warps=SMALL_WARPS,
        )
    return d_logits, d_scores


def _save_for_router_mix_bwd(ctx, inputs, output):
    """`setup_context` of `router_mix_fwd`'s autograd; `log_probs` is saved state, not differentiable."""
    router_logits, view_scores, temperature = inputs
    _, probs, _, log_probs = output
    ctx.mark_non_differentiable(log_probs)
    ctx.save_for_backward(probs, log_probs, view_scores)
    ctx.temperature, ctx.logits_dtype = temperature, router_logits.dtype


def _router_mix_backward(ctx, grad_reward, grad_probs, grad_entropy, _):
    """Gradients of `(router_logits, view_scores, temperature)`, in the inputs' dtypes (first order only)."""
    probs, log_probs, view_scores = ctx.saved_tensors
    d_logits, d_scores = torch.ops.adajudge.router_mix_bwd(
        grad_reward, grad_probs, grad_entropy, probs, log_probs, view_scores, ctx.temperature
    )
    return d_logits.to(ctx.logits_dtype), d_scores.to(view_scores.dtype), None


router_mix_fwd.register_autograd(_router_mix_backward, setup_context=_save_for_router_mix_bwd)


def router_mix_triton(router_logits, view_scores, temperature):
    """`adajudge.ops.router_mix` on the Triton kernels, for validated fp32/bf16/fp16 input; the gradients come
    back in the inputs' dtypes."""
    reward, probs, entropy, _ = torch.ops.adajudge.router_mix_fwd(router_logits, view_scores, temperature)
    return reward, probs, entropy
