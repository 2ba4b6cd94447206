"""Reference Bradley-Terry family loss: BT, margin, temperature, focal, NormBT, weights, centering (§6)."""
import torch


def softplus(x: torch.Tensor) -> torch.Tensor:
    """`log(1 + e^x)`, exact at every x in every dtype, and so is its gradient σ(x) (`F.softplus` returns x
    itself above x = 20, e^-20 ≈ 2e-9 off: visible in fp64)."""
    return torch.logaddexp(x, torch.zeros_like(x))

# Largest NormBT factor a pair can get *(ours; arXiv 2512.06343 does not bound it)*. The factor
# μ / (‖h_c − h_r‖₂ + ε) is μ/ε = 10⁶·μ for a duplicated pair (identical representations, common in real
# preference data): that one pair's loss and gradients then outweigh the batch a million times and
# overflow fp16. Capped at 10, a pair closer than a tenth of μ counts as much as one at a tenth of μ;
# every pair at least that far apart keeps the paper's factor unchanged. Reference, fused and Triton paths
# apply the same cap.
NORMBT_MAX_FACTOR = 10.0


def preference_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    margin: torch.Tensor | None = None,
    temperature: float = 1.0,
    gamma: float = 0.0,
    weights: torch.Tensor | None = None,
    center_coef: float = 0.0,
    chosen_repr: torch.Tensor | None = None,
    rejected_repr: torch.Tensor | None = None,
    norm_scale: float | torch.Tensor | None = None,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    """Per pair `i`: `Δ = (c − r − m) / τ`, `ℓ = σ(−Δ)^γ · softplus(−Δ)`, then the NormBT factor
    `sg(min(μ / (‖h_c − h_r‖₂ + ε), NORMBT_MAX_FACTOR))` when representations are given (μ = `norm_scale`,
    or this batch's mean distance; the cap is *ours*, see `NORMBT_MAX_FACTOR`), then the weight `w_i`, then
    `+ center_coef · (c + r)²`; reduced by mean, sum or none (no pairs: `"none"` gives `[0]`, `"sum"` 0,
    `"mean"` NaN; `adajudge.ops.preference_loss` refuses the mean of no pairs).

    `σ(−Δ)^γ` is written `exp(−γ · softplus(Δ))`, equal and finite for every Δ. The centering term is per
    pair, so the mean reduction gives TRL's `center_rewards_coefficient · mean((c + r)²)` *(ours for sum
    and none)*; weights scale only the Bradley-Terry term *(ours)*.

    Args:
        chosen, rejected: `[N]` rewards. margin, weights: `[N]` or `None`.
        chosen_repr, rejected_repr: `[N, D]` representations (NormBT) or `None`.
        norm_scale: μ (float or 0-dim tensor), or `None` for the batch mean distance.

    Returns:
        fp32 (fp64 for fp64 input) scalar, or `[N]` for `reduction="none"`.
    """
    compute_dtype = torch.promote_types(chosen.dtype, torch.float32)
    c, r = chosen.to(compute_dtype), rejected.to(compute_dtype)
    delta = c - r
    if margin is not None:
        delta = delta - margin.to(compute_dtype)
    delta = delta / temperature
    loss = softplus(-delta)
    if gamma != 0.0:
        loss = torch.exp(-gamma * softplus(delta)) * loss
    if chosen_repr is not None:
        distance = (chosen_repr.to(compute_dtype) - rejected_repr.to(compute_dtype)).norm(dim=-1)
        mu = distance.mean() if norm_scale is None else torch.as_tensor(norm_scale, dtype=compute_dtype)
        loss = (mu / (distance + eps)).clamp(max=NORMBT_MAX_FACTOR).detach() * loss
    if weights is not None:
        loss = weights.to(compute_dtype) * loss
    if center_coef != 0.0:
        loss = loss + center_coef * (c + r) ** 2
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
