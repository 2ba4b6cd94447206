"""`router_mix`: tempered router softmax, mixed reward and router entropy (docs/design.md §4)."""
import torch

from adajudge import reference
from adajudge.fused.router_mix import router_mix_fused
from adajudge.ops.backend import resolve_backend, triton_missing
from adajudge.validation import FLOAT_DTYPES, check_float, check_tensor

try:
    from adajudge.kernels.router_mix import router_mix_triton
except ImportError as error:  # Triton is optional where it does not install
    if error.name != "triton":
        raise
    router_mix_triton = triton_missing(error)


def router_mix(
    router_logits: torch.Tensor,
    view_scores: torch.Tensor,
    *,
    temperature: float = 1.0,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix per-view scores with the AdaJudge router (arXiv 2601.08097; docs/design.md §4).

    `π = softmax(u / τ_r)`, `reward = Σ_v π_v s_v`, `entropy = −Σ_v π_v log π_v`.

    Args:
        router_logits: `[B, V]` float router logits `u` (`B = 0` allowed). view_scores: `[B, V]` float
            per-view scores `s`. Any strides.
        temperature: router temperature `τ_r > 0`.
        backend: `"auto"`, `"triton"`, `"torch"` or `"reference"` (see `adajudge.ops`); fp64 input runs the
            fused PyTorch path under `"auto"` and `"triton"`.

    Returns:
        `(reward [B], probs [B, V], entropy [B])`, fp32 (fp64 for fp64 input); all three differentiable.

    Host syncs: none (the checks read shapes only; the temperature is a kernel argument).

    Example:
        >>> reward, probs, entropy = router_mix(u, s, temperature=1.0)
    """
    check_tensor("router_logits", router_logits, ndim=2, dtypes=FLOAT_DTYPES)
    check_tensor("view_scores", view_scores, shape=router_logits.shape, dtypes=FLOAT_DTYPES, device=router_logits.device)
    if router_logits.shape[1] == 0:
        raise ValueError("router_logits: expected at least one view (V >= 1), got V = 0")
    temperature = check_float("temperature", temperature, greater_than=0)
    dtype = torch.promote_types(router_logits.dtype, view_scores.dtype)
    match resolve_backend(backend, router_logits.device, dtype):
        case "reference":
            return reference.router_mix(router_logits, view_scores, temperature=temperature)
        case "torch":
            return router_mix_fused(router_logits, view_scores, temperature)
        case "triton":
            return router_mix_triton(router_logits, view_scores, temperature)
