"""Plain PyTorch definitions of the three ops: the readable specification (docs/design.md §3, §4, §6).

Autograd does every backward here. Nothing in this package imports Triton, and nothing checks its input:
`adajudge.ops` validates and then dispatches (``backend="reference"`` lands here). Tests, benchmarks and
users compare every fused path against these functions.
"""
from adajudge.reference.multiview_pool import multiview_pool
from adajudge.reference.preference_loss import preference_loss
from adajudge.reference.router_mix import router_mix

__all__ = ["multiview_pool", "router_mix", "preference_loss"]
