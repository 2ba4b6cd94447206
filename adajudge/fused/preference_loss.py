"""Per-pair Bradley-Terry family loss and its local gradients in one pass (DESIGN.md §6).

With `Δ = (c − r − m)/τ`, `p = σ(Δ)`, `F = σ(−Δ)^γ = exp(−γ·softplus(Δ))`, `ℓ₀ = softplus(−Δ)`:
    ℓ = w·f·F·ℓ₀ + κ(c + r)²           f = sg(μ/(‖h_c − h_r‖ + ε)) (NormBT) or 1, κ = center_coef
    dℓ/dΔ (focal term) = −F·(γ·p·ℓ₀ + (1 − p))          (γ = 0 gives the BT gradient −σ(−Δ))
    dℓ/dc = w·f·dℓ/dΔ/τ + 2κ(c + r),   dℓ/dr = −w·f·dℓ/dΔ/τ + 2κ(c + r)
    dℓ/dm = −w·f·dℓ/dΔ/τ,              dℓ/dw = f·F·ℓ₀
The forward returns the per-pair loss and saves these local gradients; the backward only scales them.
"""
import torch
import torch.nn.functional as F


def preference_loss_fwd(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, temperature, gamma, center_coef, eps):
    """Returns `(loss [N] fp32, saved)`, `saved = (d_delta [N], d_center [N], unweighted [N])`."""
    compute_dtype = torch.promote_types(chosen.dtype, torch.float32)
    c, r = chosen.to(compute_dtype), rejected.to(compute_dtype)
    delta = c - r
    if margin is not None:
        delta = delta - margin.to(compute_dtype)
    delta = delta / temperature
    base = F.softplus(-delta)
    one_minus_p = torch.sigmoid(-delta)
    if gamma != 0.0:
        focal = torch.exp(-gamma * F.softplus(delta))
        d_delta = -focal * (gamma * torch.sigmoid(delta) * base + one_minus_p)
        base = focal * base
    else:
        d_delta = -one_minus_p
    if chosen_repr is not None:
        distance = torch.linalg.vector_norm(chosen_repr.to(compute_dtype) - rejected_repr.to(compute_dtype), dim=-1)
        mu = distance.mean() if norm_scale is None else torch.as_tensor(norm_scale, dtype=compute_dtype, device=c.device)
        factor = mu / (distance + eps)
        base, d_delta = factor * base, factor * d_delta
    d_delta = d_delta / temperature
    unweighted = base
    if weights is not None:
        w = weights.to(compute_dtype)
        base, d_delta = w * base, w * d_delta
    d_center = 2 * center_coef * (c + r)
    loss = base + center_coef * (c + r) ** 2
    return loss, (d_delta, d_center, unweighted)


def preference_loss_bwd(grad_loss, saved):
    """Returns `(d_chosen, d_rejected, d_margin, d_weights)` for the per-pair upstream `grad_loss [N]`."""
    d_delta, d_center, unweighted = saved
    return grad_loss * (d_delta + d_center), grad_loss * (d_center - d_delta), -grad_loss * d_delta, grad_loss * unweighted
