"""Reference router mix (docs/design.md §4)."""
import torch


def router_mix(
    router_logits: torch.Tensor, view_scores: torch.Tensor, *, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix per-view scores with a tempered router softmax.

    `π = softmax(u / τ_r)`, `reward = Σ_v π_v s_v`, `entropy = −Σ_v π_v log π_v`.

    Args:
        router_logits: `[B, V]` router logits `u`. view_scores: `[B, V]` per-view scores `s`.
        temperature: `τ_r > 0`.

    Returns:
        `(reward [B], probs [B, V], entropy [B])`, all fp32 (fp64 for fp64 input).
    """
    compute_dtype = torch.promote_types(torch.promote_types(router_logits.dtype, view_scores.dtype), torch.float32)
    log_probs = torch.log_softmax(router_logits.to(compute_dtype) / temperature, dim=-1)
    probs = log_probs.exp()
    reward = (probs * view_scores.to(compute_dtype)).sum(-1)
    entropy = -(probs * log_probs).sum(-1)
    return reward, probs, entropy
