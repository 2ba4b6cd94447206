"""Triton kernels of adajudge, installed as `adajudge.kernels` (never as a top-level `kernels` module).

One module per op. Each holds the `@triton.jit` kernels, then the `<op>_fwd` / `<op>_bwd` launchers
(allocate, choose blocks and grid, launch; no autograd). `adajudge.ops` wraps the launchers in
`autograd.Function`s. `python -m adajudge.kernels.compile_check` builds every kernel for sm_80/sm_90.
"""
