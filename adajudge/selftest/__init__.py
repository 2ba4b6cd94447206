"""`python -m adajudge.selftest`: do adajudge's kernels give the right answers on this machine?

For the installed package, no repository needed. Every op × backend × dtype × layout the device supports
is one row: `adajudge.testing.check_layout` compares the backend with `adajudge.reference` in float64,
forward and every gradient, under the test suite's one tolerance rule, on drawn inputs (hypothesis, or a
fixed seeded list without it); each Triton row also runs `torch.library.opcheck` on the custom ops its
case calls. Prints a table (cases, worst error / bound, opcheck, result), optionally writes JSON, and
exits with status 1 on any failure.

    python -m adajudge.selftest                       # every row on CUDA if there is one, else the CPU
    python -m adajudge.selftest --device cuda --examples 200 --json selftest.json
    TRITON_INTERPRET=1 python -m adajudge.selftest --device cpu --backend triton --ops router_mix

On a CPU the Triton rows run only under `TRITON_INTERPRET=1` (Triton's interpreter, slow); otherwise they
say "skipped: needs CUDA or the interpreter".
"""
from adajudge.selftest.cli import main

__all__ = ["main"]
