"""`check_op`: compare a function with `adajudge.reference` on drawn inputs, forward and every gradient.

For each dtype and layout of the op, cases come from hypothesis (`adajudge.testing.strategies`), which
shrinks a failing case to a small one before `check_op` raises; without hypothesis installed, from a fixed,
seeded list drawn by the same builders (a warning says so, and nothing is shrunk). Each case runs the
function under test, the reference in the case's dtype and the reference in float64 on the same inputs,
and checks every output and every input gradient with the suite's one tolerance rule
(`adajudge.testing.tolerance`).
"""
import dataclasses
import math
import warnings
from collections.abc import Callable

import torch

from adajudge import reference
from adajudge.testing.cases import DTYPES, Case, op_spec
from adajudge.testing.choices import SeededChoices
from adajudge.testing.tolerance import Comparison, compare
from adajudge.views import View


class CheckFailure(AssertionError):
    """A function that disagrees with the reference: the message names the op, the tensor, the worst element
    and the case; `case` and `comparison` (None when the function raised) hold them for code."""

    def __init__(self, message: str, case: Case, comparison: Comparison | None = None):
        super().__init__(message)
        self.case, self.comparison = case, comparison
        self.cases_checked, self.worst_ratio = 0, math.inf  # set by `check_layout`


@dataclasses.dataclass(frozen=True)
class LayoutResult:
    """One (op, dtype, layout) run: how many cases, the worst error / bound over all of them (≤ 1 passes),
    and where the cases came from (`"hypothesis"` or `"seeded"`)."""

    op: str
    dtype: torch.dtype
    layout: str
    cases: int
    worst_ratio: float
    engine: str


def hypothesis_available() -> bool:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return False
    return True


def run_with_grads(fn: Callable, inputs: dict, differentiable, grad_outputs, call=None):
    """Call `fn` on `inputs` (by `call(fn, leaves)`, default `fn(**leaves)`) with fresh leaves for the names
    in `differentiable`; return `(outputs, grads)`: the outputs detached, and each differentiable input's
    gradient for the upstream `grad_outputs` (None where no output depends on it)."""
    leaves = {k: (v.detach().requires_grad_() if k in differentiable else v) for k, v in inputs.items()}
    outputs = (call or (lambda f, kw: f(**kw)))(fn, leaves)
    outputs = list(outputs) if isinstance(outputs, tuple | list) else [outputs]
    return [o.detach() if isinstance(o, torch.Tensor) else o for o in outputs], _grads(outputs, leaves, differentiable,
                                                                                        grad_outputs)


def _grads(outputs, leaves, differentiable, grad_outputs):
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if isinstance(o, torch.Tensor) and o.requires_grad]
    if not pairs or not differentiable:
        return [None] * len(differentiable)
    return list(torch.autograd.grad([o for o, _ in pairs], [leaves[k] for k in differentiable], [g for _, g in pairs],
                                    allow_unused=True))


def _locator(case: Case, name: str):
    """A function naming the element at an index of `name` (a view, a packed row), or None."""
    if case.op == "multiview_pool" and name == "views":
        return lambda index: f"row {index[0]}, view '{View(index[1]).name.lower()}', d {index[2]}"
    if case.op == "multiview_pool" and name == "d_hidden":
        cu_seqlens = case.inputs["cu_seqlens"]
        if cu_seqlens is None:
            return lambda index: f"row {index[0]}, token {index[1]}, d {index[2]}"
        ends = cu_seqlens[1:].cpu()
        return lambda index: (f"token {index[0]} (packed row {int(torch.searchsorted(ends, index[0], right=True))}), "
                              f"d {index[1]}")
    if case.op == "router_mix" and name == "probs":
        return lambda index: f"row {index[0]}, view {index[1]}"
    return None


def check_case(fn: Callable, case: Case, *, gradients: bool = True) -> float:
    """Check `fn` (with the signature of `adajudge.ops.<case.op>`) on one case; return the worst error / bound
    over every output and (with `gradients`) every input gradient. Raises `CheckFailure` naming the op, the
    tensor, its worst element and the case."""
    spec = op_spec(case.op)
    header = f"check_op({case.op!r}) failed in {case.dtype}, layout {case.layout!r}"
    oracle = getattr(reference, case.op)
    differentiable = case.differentiable if gradients else ()
    try:
        leaves = {k: (v.detach().requires_grad_() if k in differentiable else v) for k, v in case.inputs.items()}
        outputs = case.call(fn, leaves)
        outputs = list(outputs) if isinstance(outputs, tuple | list) else [outputs]
    except Exception as error:
        raise CheckFailure(f"{header}: the function raised {type(error).__name__}: {error}\ncase: {case.describe()}",
                           case) from error
    same_dtype = run_with_grads(oracle, case.inputs, differentiable, case.grad_outputs, call=case.call)
    as64 = case.as_float64()
    expected = run_with_grads(oracle, as64.inputs, differentiable, as64.grad_outputs, call=case.call)

    def checked(name, actual, want, same, expected_dtype):
        comparison = compare(name, actual, want, same, dtype=case.dtype, expected_dtype=expected_dtype)
        if not comparison.passed:
            raise CheckFailure(f"{header}: {comparison.message(_locator(case, name))}\ncase: {case.describe()}",
                               case, comparison)
        return comparison.ratio

    if len(outputs) != len(spec.outputs):
        raise CheckFailure(f"{header}: the function returned {len(outputs)} outputs, expected {len(spec.outputs)} "
                           f"({', '.join(spec.outputs)})\ncase: {case.describe()}", case)
    ratios = [checked(name, a.detach() if isinstance(a, torch.Tensor) else a, e, r, spec.output_dtype(case.dtype))
              for name, a, e, r in zip(spec.outputs, outputs, expected[0], same_dtype[0])]
    if differentiable:
        try:
            grads = _grads(outputs, leaves, differentiable, case.grad_outputs)
        except Exception as error:
            raise CheckFailure(f"{header}: the backward raised {type(error).__name__}: {error}\ncase: {case.describe()}",
                               case) from error
        for name, a, e, r in zip(differentiable, grads, expected[1], same_dtype[1]):
            ratios.append(checked(f"d_{name}", a, e, r, None if a is None else case.inputs[name].dtype))
    return max(ratios, default=0.0)


def check_layout(fn: Callable, op: str, *, device="cpu", dtype: torch.dtype, layout: str, examples: int = 100,
                 gradients: bool = True, on_case: Callable[[], None] | None = None) -> LayoutResult:
    """`check_op` for one dtype and one layout (`on_case()` is called after each case, e.g. for a progress
    bar); a `CheckFailure` carries the cases checked and the worst ratio seen before it (`cases_checked`,
    `worst_ratio`)."""
    spec = op_spec(op)
    if layout not in spec.layouts:
        raise ValueError(f"layout: expected one of {spec.layouts} for {op}, got {layout!r}")
    seen = {"cases": 0, "worst": 0.0}

    def holds(case: Case) -> None:
        seen["cases"] += 1
        seen["worst"] = max(seen["worst"], check_case(fn, case.to(device), gradients=gradients))
        if on_case is not None:
            on_case()

    engine = "hypothesis" if hypothesis_available() else "seeded"
    try:
        if engine == "hypothesis":
            _run_hypothesis(holds, op, dtype, layout, examples)
        else:
            for index in range(examples):
                holds(spec.build(SeededChoices(f"{op}/{dtype}/{layout}/{index}"), dtype, layout))
    except CheckFailure as failure:
        failing = failure.comparison.ratio if failure.comparison is not None else math.inf  # inf: raised, or no tolerance
        failure.cases_checked, failure.worst_ratio = seen["cases"], max(seen["worst"], failing)
        raise
    return LayoutResult(op, dtype, layout, seen["cases"], seen["worst"], engine)


def _run_hypothesis(holds: Callable[[Case], None], op: str, dtype: torch.dtype, layout: str, examples: int) -> None:
    """Run `holds` on `examples` drawn cases; on a failure hypothesis shrinks the case and re-raises.
    Settings come from the loaded hypothesis profile, with no deadline, no example database (one database
    key would be shared by every op, dtype and layout) and one failure reported (the smallest)."""
    from hypothesis import HealthCheck, given, settings

    from adajudge.testing.strategies import cases

    @settings(max_examples=examples, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases(op, dtype=dtype, layout=layout))
    def property_holds(case):
        holds(case)

    property_holds()


def check_op(fn: Callable, op: str, *, device="cpu", dtypes=None, examples: int = 100, gradients: bool = True):
    """Check that `fn` computes `adajudge.ops.<op>`: compared with `adajudge.reference` in float64, forward and
    every input gradient, under the suite's one tolerance rule, on drawn inputs.

    Args:
        fn: a function with the signature of `adajudge.ops.<op>` (e.g. your own kernel's wrapper, or
            `functools.partial(adajudge.ops.multiview_pool, backend="triton")`).
        op: `"multiview_pool"`, `"router_mix"` or `"preference_loss"`.
        device: where the inputs are made (`"cpu"`, `"cuda"`, a `torch.device`).
        dtypes: the float dtypes to check (default: fp32, bf16, fp16 and fp64, every dtype the ops take).
        examples: cases per dtype and layout (pooling has two layouts, padded and packed).
        gradients: also compare the gradient of every differentiable input for random upstream gradients.

    Returns:
        one `LayoutResult` per (dtype, layout): cases checked and the worst error / bound.

    Raises:
        CheckFailure (an AssertionError) naming the op, the tensor (output or `d_<input>`), its worst element
        (for the pooled views: the view) and the case, shrunk by hypothesis. Without hypothesis, a fixed
        seeded list of cases runs instead and a warning says so.

    Example:
        >>> check_op(functools.partial(adajudge.ops.multiview_pool, backend="torch"), "multiview_pool")
    """
    spec = op_spec(op)
    dtypes = DTYPES if dtypes is None else tuple(dtypes)
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"dtypes: expected float dtypes among {[str(d) for d in DTYPES]}, got {dtype}")
    if not isinstance(examples, int) or examples < 1:
        raise ValueError(f"examples: expected an int >= 1, got {examples!r}")
    if not hypothesis_available():
        warnings.warn(f"check_op({op!r}): hypothesis is not installed, so {examples} fixed seeded cases per dtype and "
                      "layout run instead, and a failing case is not shrunk (pip install 'adajudge[testing]')",
                      stacklevel=2)
    return [check_layout(fn, op, device=device, dtype=dtype, layout=layout, examples=examples, gradients=gradients)
            for dtype in dtypes for layout in spec.layouts]
