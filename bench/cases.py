"""Cases and workloads: the inputs of one op at one size, and the three implementations that run them.

- `eager`: `adajudge.reference` (plain PyTorch, autograd does the backward), called eagerly.
- `compile`: `torch.compile(reference_op, dynamic=True)`, Inductor's default mode with symbolic sizes: one
  compile per op serves every size of its sweep (dynamo is reset when the op changes), as in training
  with varying lengths, and Inductor's on-disk cache serves it again in later runs. (Compiling each size
  statically costs a minute or more per size on a busy 2-core CPU.) Compilation happens in the warm-up
  and is never timed; its seconds are recorded (`warmup_s`).
- `adajudge`: the library's public op, `adajudge.ops.<op>(..., backend="auto")` (Triton on CUDA, the
  fused PyTorch path elsewhere). For the head: `AdaJudgeHead(backend="auto")` against
  `AdaJudgeHead(backend="reference")` eager and compiled, all three with the same weights.

Inputs are seeded and shared by the implementations. Masks are int64 (what tokenizers and the
collators produce), rows right-padded to random lengths in `[T/2, T]`, each row's response a random
suffix of its real tokens, so every view has work to do.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from adajudge.ops import OPS as TRITON_OPS
from bench.bytes_model import bytes_moved

OPS = TRITON_OPS + ("adajudge_head",)  # the library's fused ops (each has Triton kernels), then the whole head
# The op that streams `[B, T, D]`: timed with `do_bench` (L2 flushed). Every other fused op is launch-bound
# (a few small tensors): on CUDA it is timed from a CUDA graph so host overhead does not swamp the kernel.
STREAMING_OPS = ("multiview_pool",)
LAUNCH_BOUND_OPS = tuple(op for op in TRITON_OPS if op not in STREAMING_OPS)
IMPLS = ("eager", "compile", "adajudge")
MASK_DTYPE = torch.int64
FOCAL_GAMMA = 2.0


@dataclass(frozen=True)
class Case:
    """One op at one size: `shape` maps the op's size letters (B, T, D, N, V) to values."""

    op: str
    variant: str
    sweep: str
    shape: dict = field(hash=False)
    dtype: torch.dtype
    device: torch.device

    @property
    def group(self) -> tuple[str, str]:
        return self.op, self.variant

    @property
    def label(self) -> str:
        name = f"{self.op}[{self.variant}]" if self.variant else self.op
        return f"{name} " + " ".join(f"{k}={v}" for k, v in self.shape.items())

    def bytes_moved(self, pass_: str) -> int | None:
        return bytes_moved(self.op, self.variant, self.shape, self.dtype, MASK_DTYPE, pass_)

    def input_bytes(self) -> int:
        """Bytes of the op's main input: the x-axis of the plots ("problem size")."""
        e = torch.empty((), dtype=self.dtype).element_size()
        s = self.shape
        if self.op in ("multiview_pool", "adajudge_head"):
            return s["B"] * s["T"] * s["D"] * e
        if self.op == "router_mix":
            return 2 * s["N"] * s["V"] * e
        return 2 * s["N"] * e + (2 * s["N"] * s["D"] * e if self.variant == "normbt" else 0)


@dataclass
class Workload:
    """Per implementation: `call()` runs the op's forward and returns its outputs; `leaves` are the tensors
    (inputs and parameters) whose `.grad` a backward fills and the timers reset to `None`."""

    case: Case
    calls: dict[str, Callable[[], object]]
    leaves: dict[str, list[torch.Tensor]]


def differentiable_outputs(outputs) -> tuple[torch.Tensor, ...]:
    """The floating-point tensors in an op's result (a tensor, a tuple or a `HeadOutput`) that carry a
    gradient: what a backward pass starts from."""
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    elif dataclasses.is_dataclass(outputs):
        outputs = tuple(getattr(outputs, f.name) for f in dataclasses.fields(outputs))
    return tuple(o for o in outputs if isinstance(o, torch.Tensor) and o.requires_grad)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _randn(shape, *, case: Case, gen: torch.Generator, scale: float = 1.0, grad: bool = False) -> torch.Tensor:
    x = (torch.randn(shape, generator=gen, device=case.device, dtype=torch.float32) * scale).to(case.dtype)
    return x.requires_grad_(grad)


def padded_masks(batch: int, length: int, device: torch.device, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`(attention_mask, response_mask)`, `[B, T]` int64: right padding; row 0 full, other rows `[T/2, T]`
    real tokens; response = a random suffix of the real tokens."""
    lengths = torch.randint(max(1, length // 2), length + 1, (batch,), generator=gen, device=device)
    lengths[0] = length
    starts = (lengths * torch.rand(batch, generator=gen, device=device) * 0.75).long()
    positions = torch.arange(length, device=device)
    attention = (positions < lengths[:, None]).to(MASK_DTYPE)
    response = ((positions >= starts[:, None]) & attention.bool()).to(MASK_DTYPE)
    return attention, response


def _compiled(fn):
    return torch.compile(fn, dynamic=True)


def _multiview_pool(case: Case, impls, gen) -> Workload:
    from adajudge import ops, reference

    b, t, d = case.shape["B"], case.shape["T"], case.shape["D"]
    hidden = _randn((b, t, d), case=case, gen=gen, grad=True)
    attention, response = padded_masks(b, t, case.device, gen)
    weight = _randn((d,), case=case, gen=gen, scale=d**-0.5, grad=True)
    bias = _randn((), case=case, gen=gen, grad=True)
    fns = {
        "eager": reference.multiview_pool,
        "compile": _compiled(reference.multiview_pool),
        "adajudge": lambda *a, **k: ops.multiview_pool(*a, **k, backend="auto"),
    }
    calls = {
        impl: (lambda fn=fns[impl]: fn(hidden, attention, response, attn_weight=weight, attn_bias=bias))
        for impl in impls
    }
    return Workload(case, calls, {impl: [hidden, weight, bias] for impl in impls})


def _router_mix(case: Case, impls, gen) -> Workload:
    from adajudge import ops, reference

    n, v = case.shape["N"], case.shape["V"]
    logits = _randn((n, v), case=case, gen=gen, grad=True)
    scores = _randn((n, v), case=case, gen=gen, grad=True)
    fns = {
        "eager": reference.router_mix,
        "compile": _compiled(reference.router_mix),
        "adajudge": lambda *a, **k: ops.router_mix(*a, **k, backend="auto"),
    }
    calls = {impl: (lambda fn=fns[impl]: fn(logits, scores, temperature=1.0)) for impl in impls}
    return Workload(case, calls, {impl: [logits, scores] for impl in impls})


def _preference_loss(case: Case, impls, gen) -> Workload:
    from adajudge import ops, reference

    n = case.shape["N"]
    chosen = _randn((n,), case=case, gen=gen, grad=True)
    rejected = _randn((n,), case=case, gen=gen, grad=True)
    if case.variant == "focal":
        options = {"gamma": FOCAL_GAMMA}
    elif case.variant == "normbt":
        d = case.shape["D"]
        options = {
            "chosen_repr": _randn((n, d), case=case, gen=gen),
            "rejected_repr": _randn((n, d), case=case, gen=gen),
        }
    else:
        raise ValueError(f"variant: expected 'focal' or 'normbt' for preference_loss, got {case.variant!r}")
    fns = {
        "eager": reference.preference_loss,
        "compile": _compiled(reference.preference_loss),
        "adajudge": lambda *a, **k: ops.preference_loss(*a, **k, backend="auto"),
    }
    calls = {impl: (lambda fn=fns[impl]: fn(chosen, rejected, **options)) for impl in impls}
    return Workload(case, calls, {impl: [chosen, rejected] for impl in impls})


def random_head(hidden_size: int, *, backend: str, device: torch.device, dtype: torch.dtype, gen: torch.Generator,
                **options):
    """An `AdaJudgeHead(hidden_size, backend=backend, **options)` whose matrices are drawn from `gen`
    (scaled by fan-in): the zero-initialised projections of a fresh head would make it trivial."""
    from adajudge.nn import AdaJudgeHead

    head = AdaJudgeHead(hidden_size, backend=backend, **options).to(device=device, dtype=dtype)
    with torch.no_grad():
        for p in head.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen, device=device) * p.shape[-1] ** -0.5)
    return head


def _adajudge_head(case: Case, impls, gen) -> Workload:
    from adajudge.nn import AdaJudgeHead

    b, t, d = case.shape["B"], case.shape["T"], case.shape["D"]
    hidden = _randn((b, t, d), case=case, gen=gen, grad=True)
    attention, response = padded_masks(b, t, case.device, gen)
    reference_head = random_head(d, backend="reference", device=case.device, dtype=case.dtype, gen=gen)
    heads = {"eager": reference_head, "compile": copy.deepcopy(reference_head)}
    heads["adajudge"] = AdaJudgeHead(d, backend="auto").to(device=case.device, dtype=case.dtype)
    heads["adajudge"].load_state_dict(reference_head.state_dict())
    modules = {"eager": heads["eager"], "compile": _compiled(heads["compile"]), "adajudge": heads["adajudge"]}
    calls = {impl: (lambda m=modules[impl]: m(hidden, attention, response)) for impl in impls}
    leaves = {impl: [hidden, *heads[impl].parameters()] for impl in impls}
    return Workload(case, calls, leaves)


BUILDERS = {
    "multiview_pool": _multiview_pool,
    "router_mix": _router_mix,
    "preference_loss": _preference_loss,
    "adajudge_head": _adajudge_head,
}


def build_workload(case: Case, impls=IMPLS, seed: int = 0) -> Workload:
    """Seeded inputs for `case` and one forward callable per implementation in `impls`."""
    unknown = [impl for impl in impls if impl not in IMPLS]
    if unknown:
        raise ValueError(f"impls: expected a subset of {IMPLS}, got {unknown}")
    if case.op not in BUILDERS:
        raise ValueError(f"op: expected one of {OPS}, got {case.op!r}")
    return BUILDERS[case.op](case, tuple(impls), _generator(case.device, seed))
