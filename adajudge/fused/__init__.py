"""The fused PyTorch path (`backend="torch"`, the default off CUDA): analytic forward/backward launchers.

Each module exposes `<op>_fwd` and `<op>_bwd` with the same contract as the Triton launchers in
`adajudge.kernels`, so one `autograd.Function` in `adajudge.ops` serves both.
"""
