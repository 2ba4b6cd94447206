"""Per-pair Bradley-Terry family loss and its local gradients in one pass (docs/design.md §6): launchers,
autograd Function, entry point.

With `Δ = (c − r − m)/τ`, `p = σ(Δ)`, `F = σ(−Δ)^γ = exp(−γ·softplus(Δ))`, `ℓ₀ = softplus(−Δ)`:
    ℓ = w·f·F·ℓ₀ + κ(c + r)²           f = sg(min(μ/(‖h_c − h_r‖ + ε), NORMBT_MAX_FACTOR)) (NormBT) or 1,
                                       κ = center_coef
    dℓ/dΔ (focal term) = −F·(γ·p·ℓ₀ + (1 − p))          (γ = 0 gives the BT gradient −σ(−Δ))
    dℓ/dc = w·f·dℓ/dΔ/τ + 2κ(c + r),   dℓ/dr = −w·f·dℓ/dΔ/τ + 2κ(c + r)
    dℓ/dm = −w·f·dℓ/dΔ/τ,              dℓ/dw = f·F·ℓ₀
The forward returns the per-pair loss and saves these local gradients; the backward only scales them
(`preference_loss_bwd`, which the Triton path's Function shares).
"""
import torch

from adajudge.reference.preference_loss import NORMBT_MAX_FACTOR


def softplus(x: torch.Tensor) -> torch.Tensor:
    """`log(1 + e^x)`, exact at every x in every dtype, and so is its gradient σ(x) (`F.softplus` returns x
    itself above x = 20, e^-20 ≈ 2e-9 off: visible in fp64)."""
    return torch.logaddexp(x, torch.zeros_like(x))


def preference_loss_fwd(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, temperature, gamma,
                        center_coef, eps):
    """Returns `(loss [N] fp32, saved)`, `saved = (d_delta [N], d_center [N], unweighted [N])`."""
    compute_dtype = torch.promote_types(chosen.dtype, torch.float32)
    c, r = chosen.to(compute_dtype), rejected.to(compute_dtype)
    delta = c - r
    if margin is not None:
        delta = delta - margin.to(compute_dtype)
    delta = delta / temperature
    base = softplus(-delta)
    one_minus_p = torch.sigmoid(-delta)
    if gamma != 0.0:
        focal = torch.exp(-gamma * softplus(delta))
        d_delta = -focal * (gamma * torch.sigmoid(delta) * base + one_minus_p)
        base = focal * base
    else:
        d_delta = -one_minus_p
    if chosen_repr is not None:
        distance = torch.linalg.vector_norm(chosen_repr.to(compute_dtype) - rejected_repr.to(compute_dtype), dim=-1)
        if norm_scale is None:
            mu = distance.mean()
        else:  # a float, or a one-element tensor read on its device (no host sync)
            mu = norm_scale.to(compute_dtype).reshape(()) if isinstance(norm_scale, torch.Tensor) else norm_scale
        factor = (mu / (distance + eps)).clamp(max=NORMBT_MAX_FACTOR)
        base, d_delta = factor * base, factor * d_delta
    d_delta = d_delta / temperature
    unweighted = base
    if weights is not None:
        w = weights.to(compute_dtype)
        base, d_delta = w * base, w * d_delta
    d_center = 2 * center_coef * (c + r)
    loss = base + center_coef * (c + r) ** 2
    return loss, (d_delta, d_center, unweighted)


def preference_loss_bwd(grad_loss, saved, dtypes):
    """`(d_chosen, d_rejected, d_margin, d_weights)` for the per-pair upstream `grad_loss [N]`, each in its
    input's dtype from `dtypes` (None where that input was not given, and then no gradient)."""
    d_delta, d_center, unweighted = saved
    grads = (grad_loss * (d_delta + d_center), grad_loss * (d_center - d_delta), -grad_loss * d_delta, grad_loss * unweighted)
    return tuple(None if dtype is None else grad.to(dtype) for grad, dtype in zip(grads, dtypes))


class PreferenceLossFused(torch.autograd.Function):
    """Per-pair loss on the fused PyTorch path; representations get no gradient (the NormBT factor is a
    stop-gradient), the others come back in their inputs' dtypes."""

    @staticmethod
    def forward(ctx, chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options):
        loss, saved = preference_loss_fwd(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, *options)
        ctx.save_for_backward(*saved)
        ctx.dtypes = [None if t is None else t.dtype for t in (chosen, rejected, margin, weights)]
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        return (*preference_loss_bwd(grad_loss, ctx.saved_tensors, ctx.dtypes), None, None, None, None)


def preference_loss_fused(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options):
    """Per-pair `[N]` loss of `adajudge.ops.preference_loss` on the fused PyTorch path (fp32; fp64 for fp64
    input), for validated input; `norm_scale` a float, a one-element tensor or None; `options` =
    `(temperature, gamma, center_coef, eps)` as floats."""
    return PreferenceLossFused.apply(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options)
