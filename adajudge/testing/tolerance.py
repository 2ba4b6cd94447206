"""The one tolerance rule of the test suite, for users who property-test the kernels too.

Rule (after flash-attention's tests): an implementation computed in dtype `d` is compared with the float64
reference on the *same* inputs. Its worst error may be at most twice the worst error of the plain PyTorch
reference computed in `d`, plus a floor of `RESOLUTION[d]` times the size of the expected values:

    max|actual − expected₆₄| ≤ 2·max|reference_d − expected₆₄| + RESOLUTION[d]·max(1, max|expected₆₄|)

The output dtype must match too, and no value may be NaN or infinite, except where the float64 value itself
lies past the output dtype's range: there the correctly rounded result is ±inf and nothing else passes
(fp16 gradients of hidden states ×100 reach 1.3e5). Those elements are left out of the bound and the error.
On failure the message names the tensor, the worst element, both values and the bound, so a failing property
test says where it broke. `compare` returns the same verdict as a `Comparison` whose `ratio` (worst error /
bound) the self-test reports.
"""
import dataclasses
import math
from collections.abc import Callable

import torch

# Floor of the bound per dtype, at scale 1: one unit in the last place for fp16/bf16; for fp32 about 80 ulp,
# because gradients that are exactly zero in exact arithmetic come out of cancellations such as
# g_t = β_t(<h_t, dz_A> − <z_A, dz_A>) at |<h_t, dz_A>|·ulp (measured: 1.2e-6 at D = 17, T = 20).
RESOLUTION = {
    torch.float64: 1e-12,
    torch.float32: 1e-5,
    torch.float16: 1e-3,
    torch.bfloat16: 8e-3,
}


def tolerance_bound(expected: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> float:
    """The bound of the module docstring for values computed in `dtype`."""
    expected = expected.double()
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    reference_error = (reference.double() - expected).abs().max().item() if expected.numel() else 0.0
    return 2.0 * reference_error + RESOLUTION[dtype] * scale


def overflow_threshold(dtype: torch.dtype) -> float:
    """The smallest magnitude that rounds to ±inf in the float `dtype`: its largest finite value plus half
    an ulp there (round to nearest, ties to even; fp16: 65,520). Infinite for float64."""
    finfo = torch.finfo(dtype)
    return finfo.max + math.ldexp(finfo.eps, math.frexp(finfo.max)[1] - 2)


def _overflow_problem(actual: torch.Tensor, expected: torch.Tensor, overflows: torch.Tensor) -> str | None:
    """What is wrong with `actual`'s non-finite values: one where the float64 value is in range, or one
    that is not the ±inf an element past the range rounds to; None if nothing."""
    unexpected = ~torch.isfinite(actual) & ~overflows
    if unexpected.any():
        return f"non-finite values at {torch.nonzero(unexpected)[:4].tolist()}"
    rounded = torch.copysign(torch.full_like(expected, math.inf), expected)
    missed = overflows & (actual.double() != rounded)
    if missed.any():
        at = torch.nonzero(missed)[:4]
        return (f"values at {at.tolist()} are {[actual[tuple(i)].item() for i in at]}, expected "
                f"{[rounded[tuple(i)].item() for i in at]}: the float64 values "
                f"{[expected[tuple(i)].item() for i in at]} lie past {actual.dtype}'s range")
    return None


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One tensor checked against the rule. `problem` names a mismatch that no tolerance excuses (gradient
    presence, dtype, shape, non-finite values); otherwise `error` is the worst absolute error, at `index`,
    where `actual` and `expected` are the two values, and `bound` the rule's bound."""

    name: str
    error: float = 0.0
    bound: float = math.inf
    index: tuple[int, ...] | None = None
    actual: float | None = None
    expected: float | None = None
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None and self.error <= self.bound

    @property
    def ratio(self) -> float:
        """Worst error / bound (≤ 1 passes); infinite for a `problem`."""
        if self.problem is not None:
            return math.inf
        return self.error / self.bound if self.bound > 0 else (0.0 if self.error == 0 else math.inf)

    def message(self, locate: Callable[[tuple[int, ...]], str] | None = None) -> str:
        """What failed, for an AssertionError; `locate(index)` names the worst element (e.g. its view)."""
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        where = f"{self.index}" if locate is None else f"{locate(self.index)} (index {self.index})"
        return (f"{self.name}: max error {self.error:.3e} > bound {self.bound:.3e} at {where}: "
                f"actual {self.actual:.8g}, expected {self.expected:.8g}")


def compare(name: str, actual, expected, reference, *, dtype: torch.dtype, expected_dtype=None) -> Comparison:
    """Check `actual` against the fp64 `expected` under the rule, given the same-dtype `reference`.

    `None` is only accepted where all three are `None` (no gradient anywhere); `expected_dtype`, when given,
    must be `actual.dtype`.
    """
    if actual is None or expected is None or reference is None:
        if not (actual is None and expected is None and reference is None):
            return Comparison(name, problem=f"gradient presence differs (actual {actual is not None}, "
                                            f"expected {expected is not None}, reference {reference is not None})")
        return Comparison(name, bound=1.0)
    if not isinstance(actual, torch.Tensor):
        return Comparison(name, problem=f"expected a tensor, got {type(actual).__name__}")
    if expected_dtype is not None and actual.dtype != expected_dtype:
        return Comparison(name, problem=f"dtype {actual.dtype}, expected {expected_dtype}")
    if actual.shape != expected.shape:
        return Comparison(name, problem=f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    expected = expected.double()
    overflows = expected.abs() >= (overflow_threshold(actual.dtype) if actual.is_floating_point() else math.inf)
    problem = _overflow_problem(actual, expected, overflows)
    if problem is not None:
        return Comparison(name, problem=problem)
    in_range = ~overflows
    bound = tolerance_bound(expected[in_range], reference[in_range], dtype)
    if actual.numel() == 0:
        return Comparison(name, bound=bound)
    error = torch.where(in_range, actual.double() - expected, 0.0).abs()
    worst = error.argmax()
    return Comparison(
        name, error=error.flatten()[worst].item(), bound=bound,
        index=tuple(int(i) for i in torch.unravel_index(worst, error.shape)),
        actual=actual.flatten()[worst].item(), expected=expected.flatten()[worst].item(),
    )


def assert_close(name: str, actual, expected, reference, *, dtype: torch.dtype, expected_dtype=None, locate=None):
    """Assert `actual` meets the suite's rule against the fp64 `expected`, given the same-dtype `reference`.

    `None` is only accepted where all three are `None` (no gradient anywhere); `expected_dtype`, when given,
    is asserted as `actual.dtype`; `locate(index)`, when given, names the worst element in the message.
    """
    comparison = compare(name, actual, expected, reference, dtype=dtype, expected_dtype=expected_dtype)
    if not comparison.passed:
        raise AssertionError(comparison.message(locate))
