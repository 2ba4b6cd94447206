"""`preference_loss`: Bradley-Terry, focal BT and NormBT in one op (docs/design.md §6)."""
import torch

from adajudge import reference
from adajudge.fused.preference_loss import preference_loss_fused
from adajudge.ops.backend import resolve_backend, triton_missing
from adajudge.validation import FLOAT_DTYPES, check_choice, check_float, check_tensor

try:
    from adajudge.kernels.preference_loss import preference_loss_triton
except ImportError as error:  # Triton is optional where it does not install
    if error.name != "triton":
        raise
    preference_loss_triton = triton_missing(error)

REDUCTIONS = ("mean", "sum", "none")


def _validate(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, temperature, gamma, center_coef, eps,
              reduction):
    check_tensor("chosen", chosen, ndim=1, dtypes=FLOAT_DTYPES)
    pairs, device = chosen.shape, chosen.device
    check_tensor("rejected", rejected, shape=pairs, dtypes=FLOAT_DTYPES, device=device)
    if pairs[0] == 0 and reduction == "mean":
        raise ValueError("chosen: expected at least one pair for reduction='mean' (the mean of no pairs is undefined; "
                         "'sum' gives 0 and 'none' an empty loss), got shape (0,)")
    for name, value in (("margin", margin), ("weights", weights)):
        if value is not None:
            check_tensor(name, value, shape=pairs, dtypes=FLOAT_DTYPES, device=device)
    if (chosen_repr is None) != (rejected_repr is None):
        raise ValueError("chosen_repr/rejected_repr: expected both (NormBT) or neither, got only one")
    if chosen_repr is not None:
        check_tensor("chosen_repr", chosen_repr, ndim=2, dtypes=FLOAT_DTYPES, device=device)
        if chosen_repr.shape[0] != pairs[0]:
            raise ValueError(f"chosen_repr: expected [N={pairs[0]}, D], got shape {tuple(chosen_repr.shape)}")
        check_tensor("rejected_repr", rejected_repr, shape=chosen_repr.shape, dtypes=FLOAT_DTYPES, device=device)
    if norm_scale is not None:
        if chosen_repr is None:
            raise ValueError("norm_scale: only meaningful with chosen_repr/rejected_repr (NormBT), got it without them")
        if isinstance(norm_scale, torch.Tensor):
            check_tensor("norm_scale", norm_scale, dtypes=FLOAT_DTYPES, device=device)
            if norm_scale.numel() != 1:
                raise ValueError(f"norm_scale: expected a float or one-element tensor, got shape {tuple(norm_scale.shape)}")
        else:
            check_float("norm_scale", norm_scale, at_least=0)
    check_float("temperature", temperature, greater_than=0)
    check_float("gamma", gamma, at_least=0)
    check_float("center_coef", center_coef, at_least=0)
    check_float("eps", eps, greater_than=0)
    check_choice("reduction", reduction, REDUCTIONS)


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
    backend: str = "auto",
) -> torch.Tensor:
    """Bradley-Terry family preference loss (docs/design.md §6): BT, focal BT, NormBT (arXiv 2512.06343).

    Per pair: `Δ = (c − r − m)/τ`; `ℓ = σ(−Δ)^γ · softplus(−Δ)` (γ = 0 is plain BT; the focal factor is
    differentiated); NormBT multiplies by `sg(min(μ / (‖h_c − h_r‖₂ + ε), 10))` with `μ = norm_scale` or,
    when `None`, this batch's mean distance (the cap of 10 is *ours*: a duplicated pair, at distance 0,
    would otherwise weigh μ/ε; `adajudge.reference.preference_loss.NORMBT_MAX_FACTOR`); then `· w`, then
    `+ center_coef · (c + r)²`.

    Args:
        chosen, rejected: `[N]` rewards (any float dtype; `N = 0` only with reduction "sum" or "none").
            margin, weights: `[N]` or `None`.
        temperature: `τ > 0`. gamma: focal exponent `γ >= 0`. center_coef: TRL's reward centering `>= 0`.
        chosen_repr, rejected_repr: `[N, D]` representations for NormBT, or `None`.
        norm_scale: μ, a float or one-element tensor (e.g. `NormBTLoss`'s EMA), or `None`. eps: `ε > 0`.
        reduction: `"mean"`, `"sum"` or `"none"`. backend: see `adajudge.ops`.

    Returns:
        fp32 scalar (`[N]` for `"none"`; fp64 for fp64 input); no pairs give `[0]` ("none") or 0 ("sum").
        Gradients flow to `chosen`, `rejected`, `margin` and `weights`; the NormBT factor is a stop-gradient,
        so representations get none.

    Example:
        >>> loss = preference_loss(r_chosen, r_rejected, gamma=2.0)  # focal BT
    """
    _validate(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, temperature, gamma, center_coef, eps,
              reduction)
    if chosen_repr is not None:
        chosen_repr, rejected_repr = chosen_repr.detach(), rejected_repr.detach()
    if isinstance(norm_scale, torch.Tensor):
        norm_scale = norm_scale.detach()
    options = (float(temperature), float(gamma), float(center_coef), float(eps))
    match resolve_backend(backend, chosen.device, chosen.dtype):
        case "reference":
            per_pair = reference.preference_loss(
                chosen, rejected, margin=margin, temperature=temperature, gamma=gamma, weights=weights,
                center_coef=center_coef, chosen_repr=chosen_repr, rejected_repr=rejected_repr,
                norm_scale=norm_scale, eps=eps, reduction="none",
            )
        case "torch":
            per_pair = preference_loss_fused(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options)
        case "triton":
            per_pair = preference_loss_triton(chosen, rejected, margin, weights, chosen_repr, rejected_repr, norm_scale, options)
    if reduction == "mean":
        return per_pair.mean()
    if reduction == "sum":
        return per_pair.sum()
    return per_pair
