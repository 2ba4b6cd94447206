"""`torch.library.opcheck` on every custom op adajudge registers: schema, fake tensors (meta behaviour),
autograd registration and AOT dispatch.

The ops are read from PyTorch's dispatcher (every `adajudge::` op, so an op added later is checked with no
change here). Their sample inputs are recorded from the public ops: `sample_calls(op, dtype=..., layout=...)`
runs one fixed case of `adajudge.ops.<op>(backend="triton")` forward and backward and records every
`adajudge::` call with its arguments. Calls made in the forward keep their inputs' `requires_grad`, so the
autograd registration and the gradients under AOTAutograd are checked; calls made in the backward are
first order (no input requires grad: the backward ops have no derivative of their own). A registered op
that no case reaches is reported by `unreached_ops`.

Under `TRITON_INTERPRET=1` the kernels are Python functions that torch cannot trace, so the AOT-dispatch
test keeps each op whole (`decompose_custom_triton_ops=False`, as `torch.export` does) instead of tracing
into its launcher; on CUDA it traces into the launcher, as `torch.compile` does.
"""
import contextlib
import dataclasses
import functools

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adajudge.ops.backend import triton_interpreter_enabled
from adajudge.testing.cases import op_spec
from adajudge.testing.choices import SeededChoices

NAMESPACE = "adajudge"
PASSED = "ok"


def registered_ops() -> list[str]:
    """Every custom op adajudge has registered (`"adajudge::multiview_pool_fwd"`, ...), sorted. Importing
    `adajudge.ops` registers them; none without Triton."""
    import adajudge.ops  # noqa: F401  (registers the ops)

    return sorted(name for name in torch._C._dispatch_get_all_op_names() if name.startswith(f"{NAMESPACE}::"))


@dataclasses.dataclass(frozen=True)
class OpCall:
    """One call of a registered op, as a public op made it: `source` says which (op, dtype, layout) case,
    `phase` whether in the forward or the backward."""

    op: torch._ops.OpOverload
    args: tuple
    kwargs: dict
    phase: str
    source: str

    @property
    def name(self) -> str:
        return self.op._schema.name

    def fresh_inputs(self) -> tuple[tuple, dict]:
        """Copies of the arguments; in the forward, those that required grad require it again."""

        def fresh(value):
            if not isinstance(value, torch.Tensor):
                return value
            copy = value.detach().clone()
            return copy.requires_grad_() if self.phase == "forward" and value.requires_grad else copy

        return tuple(fresh(a) for a in self.args), {k: fresh(v) for k, v in self.kwargs.items()}


class _Recorder(TorchDispatchMode):
    """Records every `adajudge::` op call (below autograd, with the arguments the op received)."""

    def __init__(self, source: str):
        super().__init__()
        self.source, self.phase, self.calls = source, "forward", []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == NAMESPACE:
            def keep(value):
                if not isinstance(value, torch.Tensor):
                    return value
                return value.detach().clone().requires_grad_(value.requires_grad and value.is_floating_point())

            self.calls.append(OpCall(func, tuple(keep(a) for a in args), {k: keep(v) for k, v in kwargs.items()},
                                     self.phase, self.source))
        return func(*args, **kwargs)


def sample_calls(op: str, *, dtype: torch.dtype, layout: str, device="cpu") -> list[OpCall]:
    """The `adajudge::` calls that `adajudge.ops.<op>(backend="triton")` makes, forward and backward, on one
    fixed case of `dtype` and `layout`."""
    import adajudge.ops
    from adajudge.testing.check import run_with_grads

    case = op_spec(op).build(SeededChoices(f"opcheck/{op}/{dtype}/{layout}"), dtype, layout).to(device)
    recorder = _Recorder(f"{op} {str(dtype).removeprefix('torch.')} {layout}")
    function = getattr(adajudge.ops, op)

    def forward(fn, leaves):
        outputs = case.call(functools.partial(fn, backend="triton"), leaves)
        recorder.phase = "backward"  # run_with_grads differentiates next
        return outputs

    with recorder:
        run_with_grads(function, case.inputs, case.differentiable, case.grad_outputs, call=forward)
    return recorder.calls


@dataclasses.dataclass(frozen=True)
class OpcheckResult:
    """`torch.library.opcheck`'s verdict per test on one call: `"ok"` or the error."""

    call: OpCall
    results: dict

    @property
    def passed(self) -> bool:
        return all(result == PASSED for result in self.results.values())


def run_opcheck(call: OpCall) -> OpcheckResult:
    """`torch.library.opcheck(call.op, ...)` with its default tests (schema, autograd registration, fake
    tensors, AOT dispatch with dynamic shapes), every result collected."""
    args, kwargs = call.fresh_inputs()
    interpreted = triton_interpreter_enabled() and not any(
        isinstance(a, torch.Tensor) and a.is_cuda for a in (*args, *kwargs.values()))
    whole_op = torch._functorch.config.patch(decompose_custom_triton_ops=False) if interpreted else contextlib.nullcontext()
    with whole_op:
        results = torch.library.opcheck(call.op, args, kwargs, raise_exception=False)
    return OpcheckResult(call, {test: PASSED if result == "SUCCESS" else f"{type(result).__name__}: {result}"
                                for test, result in results.items()})


def unreached_ops(calls: list[OpCall]) -> list[str]:
    """Registered ops that none of `calls` exercises (so opcheck never saw them)."""
    reached = {call.name for call in calls}
    return [name for name in registered_ops() if name not in reached]
