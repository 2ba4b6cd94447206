"""Triton kernels of adajudge, installed as `adajudge.kernels` (never as a top-level `kernels` module, which
PyPI's `kernels` package owns).

One module per op, read top to bottom: the `@triton.jit` kernels; the launchers, which allocate, choose
blocks and grid and launch (no autograd); the `autograd.Function` that calls only the launchers; and the
entry point `<op>_triton` that `adajudge.ops.<op>` dispatches to. `launch.py` holds what the launchers
share; `python -m adajudge.kernels.compile_check` builds every launch they make for sm_80/sm_90.

How `torch.compile` sees the kernels: each launcher is a `torch.library.triton_op` and launches through
`torch.library.wrap_triton` (flash-attention's Triton layers do the same). Chosen over plain tracing of
raw kernel calls because it gives every launch a named operator (`adajudge::multiview_pool_fwd`, ...) with
a schema that states it mutates none of its inputs: graphs, profiles and `torch.export` show the op by
name, fake-tensor tracing runs the launcher's own allocation code, and Inductor still traces into the
launcher and schedules the kernels itself, instead of treating them as an opaque custom op. The cost is a
few microseconds of dispatch per call in eager mode.
"""
