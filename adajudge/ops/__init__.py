"""Public fused ops (DESIGN.md §9): validated, dispatched by `backend`, differentiable.

`backend="auto"` runs the Triton kernels on CUDA tensors and the fused PyTorch path elsewhere;
`"triton"`, `"torch"` and `"reference"` force one implementation. Nothing ever falls back silently.
"""
from adajudge.ops.backend import OPS
from adajudge.ops.multiview_pool import multiview_pool
from adajudge.ops.preference_loss import preference_loss
from adajudge.ops.router_mix import router_mix

__all__ = ["OPS", "multiview_pool", "router_mix", "preference_loss"]
