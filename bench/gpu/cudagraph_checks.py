"""CUDA-graph capture and replay of every fused op, forward and forward + backward, against eager.

For each case (`CASES`: every op of `adajudge.ops.OPS`, `backend="auto"`, and the packed pooling form with
`max_seqlen`): the step (`forward`: the op's outputs; `full`: outputs and the gradients of every
differentiable input under seeded upstream gradients, `torch.autograd.grad`) runs three times on a side
stream, is captured in a `torch.cuda.CUDAGraph`, its inputs are refilled in place with new values, the
graph is replayed, and its outputs must be bit-for-bit equal to an eager call of the same step on the new
values (the same kernels on the same inputs; the ops reduce deterministically, without atomics). A host
sync inside an op (`.item()`, `int(tensor)`, a value check) makes the capture fail, and that is reported.

Without CUDA (the dry run) no graph exists: the same harness runs with the "replay" being a direct call
whose results are copied into the static outputs (`mode: "direct"`), which checks the harness only.
"""
from __future__ import annotations

import inspect

import torch

from bench.cases import Case, build_workload, differentiable_outputs, padded_masks

PASSES = ("forward", "full")
WARMUP_CALLS = 3
SIZES = {"cuda": {"B": 4, "T": 512, "D": 1024, "N": 4096}, "cpu": {"B": 2, "T": 16, "D": 32, "N": 8}}
DTYPES = {"cuda": torch.bfloat16, "cpu": torch.float32}


def cases(device: torch.device) -> list[tuple[str, str]]:
    """`(op, variant)` pairs: every fused op (both preference-loss variants) and the packed pooling."""
    from adajudge.ops import OPS

    pairs = [(op, variant) for op in OPS for variant in (("focal", "normbt") if op == "preference_loss" else ("",))]
    return [*pairs, ("multiview_pool", "packed")]


def _workload(op: str, variant: str, device: torch.device):
    """`(call, inputs, leaves)`: a zero-argument forward, every floating tensor it reads (refilled before
    a replay) and the tensors that get gradients; or a skip reason."""
    sizes, dtype = SIZES[device.type], DTYPES[device.type]
    if variant == "packed":
        return _packed_pool(sizes, dtype, device)
    shape = {"multiview_pool": {"B": sizes["B"], "T": sizes["T"], "D": sizes["D"]}, "router_mix": {"N": sizes["N"], "V": 3},
             "preference_loss": {"N": sizes["N"], **({"D": sizes["D"]} if variant == "normbt" else {})}}[op]
    workload = build_workload(Case(op, variant, "", shape, dtype, device), impls=("adajudge",))
    leaves = workload.leaves["adajudge"]
    return workload.calls["adajudge"], leaves, leaves


def _packed_pool(sizes: dict, dtype: torch.dtype, device: torch.device):
    from adajudge import ops

    if "max_seqlen" not in inspect.signature(ops.multiview_pool).parameters:
        return "ops.multiview_pool has no max_seqlen keyword yet (issue 9, defect 4): the packed form syncs without it"
    gen = torch.Generator(device=device).manual_seed(0)
    attention, response = padded_masks(sizes["B"], sizes["T"], device, gen)
    keep = attention.bool()
    lengths = attention.sum(1)
    cu_seqlens = torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
    max_seqlen = int(lengths.max())
    d = sizes["D"]
    hidden = torch.randn((int(keep.sum()), d), generator=gen, device=device).to(dtype).requires_grad_()
    weight = (torch.randn((d,), generator=gen, device=device) * d**-0.5).to(dtype).requires_grad_()
    bias = torch.randn((), generator=gen, device=device).to(dtype).requires_grad_()
    masks = (attention[keep], response[keep])

    def call():
        return ops.multiview_pool(hidden, *masks, attn_weight=weight, attn_bias=bias, cu_seqlens=cu_seqlens,
                                  max_seqlen=max_seqlen, backend="auto")

    return call, [hidden, weight, bias], [hidden, weight, bias]


def _step(call, leaves: list[torch.Tensor], pass_: str, upstream: list[torch.Tensor] | None):
    def forward() -> list[torch.Tensor]:
        return [o.detach() for o in differentiable_outputs(call())]

    def full() -> list[torch.Tensor]:
        outputs = differentiable_outputs(call())
        grads = torch.autograd.grad(outputs, leaves, upstream, allow_unused=True)
        return [*(o.detach() for o in outputs), *(g for g in grads if g is not None)]

    return forward if pass_ == "forward" else full


class _GraphReplay:
    """`static`: the captured step's outputs; `replay()` reruns the graph into them."""

    mode = "cuda_graph"

    def __init__(self, step):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static = step()

    def replay(self) -> None:
        self.graph.replay()
        torch.cuda.synchronize()


class _DirectReplay:
    """No CUDA: `replay()` calls the step and copies its results into `static` (checks the harness only)."""

    mode = "direct"

    def __init__(self, step):
        self.step = step
        self.static = step()

    def replay(self) -> None:
        results = self.step()  # outside no_grad: the step's outputs must require grad
        with torch.no_grad():
            for static, fresh in zip(self.static, results):
                static.copy_(fresh)


def _refill(inputs: list[torch.Tensor], gen: torch.Generator) -> None:
    with torch.no_grad():
        for tensor in inputs:
            tensor.copy_(torch.randn(tensor.shape, generator=gen, device=tensor.device).to(tensor.dtype))


def run_case(op: str, variant: str, pass_: str, device: torch.device) -> dict:
    """Capture, refill, replay, compare with eager: `{"op", "variant", "pass", "status", ...}`."""
    label = {"op": op, "variant": variant, "pass": pass_}
    built = _workload(op, variant, device)
    if isinstance(built, str):
        return {**label, "status": "skipped", "reason": built}
    call, inputs, leaves = built
    gen = torch.Generator(device=device).manual_seed(1)
    upstream = [torch.randn(o.shape, generator=gen, device=device).to(o.dtype) for o in differentiable_outputs(call())]
    step = _step(call, leaves, pass_, upstream)
    replay_cls = _GraphReplay if device.type == "cuda" else _DirectReplay
    try:
        replay = replay_cls(step)
    except Exception as error:  # a capture failure (a host sync in an op) is the finding to report
        return {**label, "status": "failed", "reason": f"capture failed: {type(error).__name__}: {_first_line(error)}"}
    _refill(inputs, gen)
    replay.replay()
    expected = step()
    diffs = [float((s.float() - e.float()).abs().max()) if e.numel() else 0.0 for s, e in zip(replay.static, expected)]
    equal = len(replay.static) == len(expected) and all(torch.equal(s, e) for s, e in zip(replay.static, expected))
    result = {**label, "mode": replay_cls.mode, "tensors": len(expected), "equal_to_eager": equal,
              "max_abs_diff": max(diffs, default=0.0)}
    result["status"] = "ok" if equal else "failed"
    if not equal:
        result["reason"] = f"replay differs from eager on the refilled inputs (max |diff| {result['max_abs_diff']:.3g})"
    return result


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def run(device: torch.device) -> list[dict]:
    return [run_case(op, variant, pass_, device) for op, variant in cases(device) for pass_ in PASSES]
