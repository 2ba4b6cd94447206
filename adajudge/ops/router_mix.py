"""`router_mix`: tempered router softmax, mixed reward and router entropy (DESIGN.md §4)."""
import torch

from adajudge import reference
from adajudge.ops.backend import implementation, resolve_backend
from adajudge.validation import FLOAT_DTYPES, check_float, check_tensor


class RouterMixFunction(torch.autograd.Function):
    """Autograd glue shared by the Triton and fused PyTorch launchers (`impl.router_mix_fwd/_bwd`)."""

    @staticmethod
    def forward(ctx, router_logits, view_scores, temperature, impl):
        outputs, saved = impl.router_mix_fwd(router_logits, view_scores, temperature)
        ctx.impl, ctx.temperature = impl, temperature
        ctx.input_dtypes = (router_logits.dtype, view_scores.dtype)
        ctx.save_for_backward(*saved)
        return outputs

    @staticmethod
    def backward(ctx, grad_reward, grad_probs, grad_entropy):
        d_logits, d_scores = ctx.impl.router_mix_bwd(grad_reward, grad_probs, grad_entropy, ctx.temperature, ctx.saved_tensors)
        logits_dtype, scores_dtype = ctx.input_dtypes
        return d_logits.to(logits_dtype), d_scores.to(scores_dtype), None, None


def router_mix(
    router_logits: torch.Tensor,
    view_scores: torch.Tensor,
    *,
    temperature: float = 1.0,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix per-view scores with the AdaJudge router (arXiv 2601.08097; DESIGN.md §4).

    `π = softmax(u / τ_r)`, `reward = Σ_v π_v s_v`, `entropy = −Σ_v π_v log π_v`.

    Args:
        router_logits: `[B, V]` float router logits `u`. view_scores: `[B, V]` float per-view scores `s`.
        temperature: router temperature `τ_r > 0`.
        backend: `"auto"`, `"triton"`, `"torch"` or `"reference"` (see `adajudge.ops`).

    Returns:
        `(reward [B], probs [B, V], entropy [B])`, fp32 (fp64 for fp64 input); all three differentiable.

    Example:
        >>> reward, probs, entropy = router_mix(u, s, temperature=1.0)
    """
    check_tensor("router_logits", router_logits, ndim=2, dtypes=FLOAT_DTYPES)
    check_tensor("view_scores", view_scores, shape=router_logits.shape, dtypes=FLOAT_DTYPES, device=router_logits.device)
    if router_logits.shape[1] == 0:
        raise ValueError("router_logits: expected at least one view (V >= 1), got V = 0")
    check_float("temperature", temperature, greater_than=0)
    resolved = resolve_backend(backend, router_logits.device)
    if resolved == "reference":
        return reference.router_mix(router_logits, view_scores, temperature=temperature)
    impl = implementation(resolved, "router_mix")
    return RouterMixFunction.apply(router_logits, view_scores, float(temperature), impl)
