"""Public fused ops (docs/design.md §9): validated, dispatched by `backend`, differentiable.

`backend="auto"` runs the Triton kernels on CUDA tensors and the fused PyTorch path elsewhere;
`"triton"`, `"torch"` and `"reference"` force one implementation. Nothing ever falls back silently (fp64
input, which the kernels cannot compute in fp64, runs the fused PyTorch path, as each op's docstring says).

Each op lives in three places that never import each other's implementation: `adajudge.kernels.<op>`
(Triton kernels, launchers registered as `torch.library.triton_op`s, the autograd Function, the entry),
`adajudge.fused.<op>` (the same layers in PyTorch) and `adajudge.reference.<op>` (the readable definition).
`adajudge/ops/<op>.py` validates, then dispatches with a `match` on the resolved backend.
"""
from adajudge.ops.multiview_pool import multiview_pool
from adajudge.ops.preference_loss import preference_loss
from adajudge.ops.router_mix import router_mix

OPS = ("multiview_pool", "router_mix", "preference_loss")  # the one list of ops (bench, compile check, tests)

__all__ = ["OPS", "multiview_pool", "router_mix", "preference_loss"]
