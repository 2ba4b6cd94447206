"""Property-test kernels against `adajudge.reference`: the kit the test suite uses, for your own kernels too.

- `check_op(fn, op, *, device="cpu", dtypes=None, examples=100, gradients=True)`: `fn` has the signature of
  `adajudge.ops.<op>`; compared with the reference in float64, forward and every gradient, under the one
  tolerance rule, on drawn inputs; raises `CheckFailure` (an AssertionError) naming the op, the worst
  element and the shrunk case.
- `check_case(fn, case)`: the same check on one `Case`; `strategies` (hypothesis, `pip install
  'adajudge[testing]'`) draws cases for your own `@given` tests.
- `assert_close` / `compare`: the tolerance rule itself (`adajudge.testing.tolerance`).
- `opcheck`: `torch.library.opcheck` on every custom op adajudge registers (`adajudge.testing.opcheck`).

Importing this package needs no hypothesis; `adajudge.testing.strategies` does. docs/testing.md shows how
to property-test your own kernel.
"""
import importlib

from adajudge.testing.cases import DTYPES, OP_SPECS, Case
from adajudge.testing.check import CheckFailure, LayoutResult, check_case, check_op, run_with_grads
from adajudge.testing.tolerance import RESOLUTION, Comparison, assert_close, compare, tolerance_bound

__all__ = [
    "DTYPES", "OP_SPECS", "RESOLUTION", "Case", "CheckFailure", "Comparison", "LayoutResult", "assert_close",
    "check_case", "check_op", "compare", "run_with_grads", "strategies", "tolerance_bound",
]


def __getattr__(name: str):
    """`adajudge.testing.strategies` on first use: it imports hypothesis, an optional dependency."""
    if name == "strategies":
        try:
            return importlib.import_module("adajudge.testing.strategies")
        except ModuleNotFoundError as error:
            if error.name != "hypothesis":
                raise
            raise ModuleNotFoundError("adajudge.testing.strategies needs hypothesis: pip install 'adajudge[testing]'",
                                      name="hypothesis") from error
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
