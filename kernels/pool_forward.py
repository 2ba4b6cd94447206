"""The private switch between the two pooling forward variants (no Triton import, so the bench and tools
can read it anywhere).

`ADAJUDGE_POOL_FORWARD` = "fused" (the default: one pass, one program per token split holding the whole
hidden size, its three fp32 accumulators in registers) or "two_phase" (scores first, then D tiled across
programs; any hidden size, `hidden` read twice); see `adajudge.kernels.multiview_pool` and docs/kernels.md for
both designs and their bytes. The default is the one the static GPU model predicts faster on every preset
shape (`python -m bench.gpu_model`); `fused` runs `two_phase` for a hidden size it cannot hold. It is read at
every launch (under `torch.compile`, when the launcher is traced). The fused PyTorch path has one design.
"""
if __name__ != "adajudge.kernels.pool_forward":  # before any import: nothing here runs under another name
    raise ImportError(f"{__name__}: the repository's kernels/ folder is the package `adajudge.kernels` (a top-level "
                      "`kernels` is PyPI's kernel hub); install adajudge and import adajudge.kernels")

import os

FORWARD_VARIANT_ENV = "ADAJUDGE_POOL_FORWARD"
FORWARD_VARIANTS = ("fused", "two_phase")


def forward_variant() -> str:
    """The variant the next pooling launch uses; `ValueError` for an unknown value."""
    variant = os.environ.get(FORWARD_VARIANT_ENV) or FORWARD_VARIANTS[0]
    if variant not in FORWARD_VARIANTS:
        raise ValueError(f"{FORWARD_VARIANT_ENV}: expected one of {FORWARD_VARIANTS}, got {variant!r}")
    return variant
