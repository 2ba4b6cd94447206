"""`torch.compile` (Inductor, `fullgraph=True`) of adajudge's training steps: equal to eager, and no copy of
`hidden`.

Checks (`CHECKS`), each a loss whose backward reaches `hidden` and every parameter:

- `pool_loss_padded`: `multiview_pool` on `[B, T, D]`, rewards from the views, focal (γ = 2) NormBT loss
  with μ = the batch's mean distance (the representations are the attention views).
- `pool_loss_packed`: the same on the packed form `[total_T, D]` with `cu_seqlens` and `max_seqlen`
  (flash-attn's varlen convention; `fullgraph=True` needs `max_seqlen`, since computing it syncs).
- `head_no_blocks`: `AdaJudgeHead(D, num_blocks=0)` and the same loss on its outputs.
- `head`: the whole `AdaJudgeHead` with refinement blocks (3 on a GPU, 1 in a dry run).

Each check compares the compiled loss and every gradient with eager (`torch.testing.assert_close` with
rtol 1e-4 and atol 1e-5 × the largest |eager value| of the tensor: fp32 throughout, Inductor only
reorders the fp32 arithmetic around the ops' own kernels), then looks for a copy of `hidden` three ways:

1. the graph Inductor compiles (its post-grad graph, recorded by a `post_grad_custom_post_pass`, which
   runs before Inductor's re-inplacing): every `triton_kernel_wrapper_functional` node lists in
   `tensors_to_clone` the tensors that Triton-kernel mutation analysis
   (`torch._higher_order_ops.triton_kernel_wrap.identify_accessed_tensors`) says the kernel writes; a
   clone of a graph input there (an argument the caller passed: `hidden`, a mask, `cu_seqlens`, a
   parameter, a saved tensor) is the copy, and so is any `clone`/`copy` of, or `copy_` into, a graph
   input. Reported as `input_writes` (every input) and `hidden_copies` (inputs shaped like `hidden`).
   This is exact, and independent of the sizes; it needs Inductor's pass hook (recorded as
   `graphs_seen`: 0 means the hook saw nothing, and then this evidence is missing, not clean).
2. the version counters of every tensor passed in, unchanged by the compiled forward and backward (an
   input mutation that AOTAutograd applies shows there).
3. the compiled training forward's peak memory above the live set (`bench.memory`: the CUDA allocator,
   or the profiler's allocation events on CPU) minus the eager forward's, against `hidden`'s bytes: a
   copy of `hidden` kept for the backward costs `1×` more than eager; the rest of what the two allocate
   (views, scores, head activations) is the same work, so the difference stays far below
   `MAX_EXTRA_FORWARD_PEAK` (0.5×). Not applied to the head with refinement blocks: Inductor's partitioner
   may save different `[B, T, D]` activations of the blocks than eager does.
"""
from __future__ import annotations

import contextlib
import inspect
import time

import torch

from bench.cases import padded_masks, random_head

CHECKS = ("pool_loss_padded", "pool_loss_packed", "head_no_blocks", "head")
MAX_EXTRA_FORWARD_PEAK = 0.5  # × hidden's bytes, compiled forward over eager
RTOL, ATOL = 1e-4, 1e-5
FOCAL_GAMMA = 2.0
SIZES = {
    "cuda": {"B": 8, "T": 1024, "D": 2048, "head_T": 1024, "head_D": 1024, "head_blocks": 3},
    "cpu": {"B": 4, "T": 64, "D": 64, "head_T": 64, "head_D": 32, "head_blocks": 1},
}


def _view_mix(views: torch.Tensor, pairs: int) -> torch.Tensor:
    """Focal NormBT loss of rewards read off the pooled views (the first `pairs` rows are chosen)."""
    from adajudge import ops

    rewards = views.float().sum(-1) @ torch.tensor([0.3, -0.2, 0.5, 0.1], device=views.device)
    representation = views[:, 2].float()
    return ops.preference_loss(rewards[:pairs], rewards[pairs:], gamma=FOCAL_GAMMA,
                               chosen_repr=representation[:pairs], rejected_repr=representation[pairs:])


def _pool_inputs(sizes: dict, device: torch.device, gen: torch.Generator, *, packed: bool):
    """`(tensors, masks, packing)`: `hidden`, `weight`, `bias` (differentiable); the two masks; and, packed,
    `cu_seqlens` and `max_seqlen` (rows of lengths drawn in `[T/2, T]`, their padding dropped)."""
    b, t, d = sizes["B"], sizes["T"], sizes["D"]
    attention, response = padded_masks(b, t, device, gen)
    hidden = torch.randn((b, t, d), generator=gen, device=device)
    weight = torch.randn((d,), generator=gen, device=device) * d**-0.5
    bias = torch.randn((), generator=gen, device=device)
    if not packed:
        return {"hidden": hidden, "weight": weight, "bias": bias}, (attention, response), {}
    lengths = attention.sum(1)
    keep = attention.bool()
    packing = {"cu_seqlens": torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(torch.int32),
               "max_seqlen": int(lengths.max())}
    return {"hidden": hidden[keep].contiguous(), "weight": weight, "bias": bias}, (attention[keep], response[keep]), packing


def _pool_step(masks: tuple[torch.Tensor, torch.Tensor], packing: dict, pairs: int):
    from adajudge import ops

    def step(hidden, weight, bias):
        views = ops.multiview_pool(hidden, *masks, attn_weight=weight, attn_bias=bias, **packing)
        return _view_mix(views, pairs)

    return step


def _head_step(head, attention: torch.Tensor, response: torch.Tensor, pairs: int):
    from adajudge import ops

    def step(hidden):
        out = head(hidden, attention, response)
        return ops.preference_loss(out.reward[:pairs], out.reward[pairs:], gamma=FOCAL_GAMMA,
                                   chosen_repr=out.representation[:pairs], rejected_repr=out.representation[pairs:])

    return step


def build(name: str, device: torch.device, seed: int = 0) -> dict:
    """`{"step", "inputs", "parameters", "others", "memory_check"}` for check `name`, or `{"skip": reason}`:
    `step(*inputs)` returns the loss (`inputs[0]` is `hidden`); `parameters` (name → tensor) are the
    module parameters the step reads besides; `others`: the other tensors it reads (masks, `cu_seqlens`)."""
    from adajudge import ops

    sizes = SIZES[device.type]
    gen = torch.Generator(device=device).manual_seed(seed)
    pairs = sizes["B"] // 2
    if name in ("pool_loss_padded", "pool_loss_packed"):
        packed = name == "pool_loss_packed"
        if packed and "max_seqlen" not in inspect.signature(ops.multiview_pool).parameters:
            return {"skip": "ops.multiview_pool has no max_seqlen keyword yet (issue 9, defect 4): the packed "
                            "form cannot trace with fullgraph=True without it"}
        tensors, masks, packing = _pool_inputs(sizes, device, gen, packed=packed)
        others = [*masks, *(v for v in packing.values() if isinstance(v, torch.Tensor))]
        return {"step": _pool_step(masks, packing, pairs), "inputs": tensors, "parameters": {}, "others": others,
                "memory_check": True}
    if name in ("head_no_blocks", "head"):
        b, t, d = sizes["B"], sizes["head_T"], sizes["head_D"]
        blocks = 0 if name == "head_no_blocks" else sizes["head_blocks"]
        attention, response = padded_masks(b, t, device, gen)
        hidden = torch.randn((b, t, d), generator=gen, device=device)
        head = random_head(d, backend="auto", device=device, dtype=torch.float32, gen=gen, num_blocks=blocks)
        return {"step": _head_step(head, attention, response, pairs), "inputs": {"hidden": hidden},
                "parameters": dict(head.named_parameters()), "others": [attention, response], "memory_check": blocks == 0,
                "num_blocks": blocks}
    raise ValueError(f"name: expected one of {CHECKS}, got {name!r}")


def _root(node):
    """The graph node a view chain starts from (`view`, `select`, `slice`, ... are followed back)."""
    while node.op == "call_function" and getattr(node.target, "is_view", False) and node.args:
        node = node.args[0]
    return node


def _describe(node) -> dict:
    value = node.meta.get("val")
    shape = list(value.shape) if isinstance(value, torch.Tensor) else None
    dtype = str(value.dtype).replace("torch.", "") if isinstance(value, torch.Tensor) else None
    return {"input": node.name, "shape": shape, "dtype": dtype}


class GraphRecorder:
    """An Inductor post-grad pass that records, per compiled graph, the user Triton kernels it launches and
    every write to or copy of a graph input (see the module docstring)."""

    def __init__(self):
        self.graphs: list[dict] = []

    def __call__(self, graph) -> None:
        from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table, triton_kernel_wrapper_functional

        aten = torch.ops.aten
        copies = {aten.clone.default, aten.copy.default, aten._to_copy.default}
        kernels, writes = [], []
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            if node.target is triton_kernel_wrapper_functional:
                kernel = kernel_side_table.get_kernel(node.kwargs["kernel_idx"])
                kernel_name = getattr(getattr(kernel, "fn", kernel), "__name__", str(kernel))
                kernels.append(kernel_name)
                for argument in node.kwargs["tensors_to_clone"]:
                    value = node.kwargs["kwargs"].get(argument)
                    root = _root(value) if isinstance(value, torch.fx.Node) else None
                    if root is not None and root.op == "placeholder":
                        writes.append({"by": f"{kernel_name}({argument}=...)", **_describe(root)})
            elif node.target is aten.copy_.default and _root(node.args[0]).op == "placeholder":
                writes.append({"by": "copy_ into the input", **_describe(_root(node.args[0]))})
            elif node.target in copies and _root(node.args[0]).op == "placeholder":
                source = node.args[0].meta.get("val")
                result = node.meta.get("val")
                cast = isinstance(source, torch.Tensor) and isinstance(result, torch.Tensor) and source.dtype != result.dtype
                writes.append({"by": f"{node.target} (cast)" if cast else str(node.target), "cast": cast,
                               **_describe(_root(node.args[0]))})
        self.graphs.append({"triton_kernels": kernels, "input_copies": writes})


def _compare(name: str, actual: torch.Tensor | None, expected: torch.Tensor | None) -> dict:
    if actual is None or expected is None:
        both = actual is None and expected is None
        return {"tensor": name, "ok": both, "max_abs_diff": None,
                "message": None if both else "a gradient is None on one side only"}
    diff = float((actual.double() - expected.double()).abs().max()) if expected.numel() else 0.0
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    try:
        torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL * max(1.0, scale))
        ok, message = True, None
    except AssertionError as error:
        ok, message = False, str(error).splitlines()[0]
    return {"tensor": name, "ok": ok, "max_abs_diff": diff, "max_abs_expected": scale, "message": message}


def _run(step, inputs: list[torch.Tensor], leaves: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """The loss and its gradient with respect to every leaf (`None` where it does not reach one)."""
    loss = step(*inputs)
    return [loss.detach(), *torch.autograd.grad(loss, leaves, allow_unused=True)]


def _forward_peak(step, inputs: list[torch.Tensor], device: torch.device) -> int:
    from bench.memory import peak_cpu, peak_cuda

    held = []

    def call():  # keep the loss (and so the saved tensors) alive in the measurement
        held.append(step(*inputs))

    peak = peak_cuda(call, device) if device.type == "cuda" else peak_cpu(call)
    held.clear()
    return peak


def run_check(name: str, device: torch.device) -> dict:
    """Compile check `name` on `device`: `{"name", "status", ...}` (status "ok", "failed" or "skipped")."""
    import torch._dynamo
    import torch._inductor.config as inductor_config

    started = time.perf_counter()
    case = build(name, device)
    if "skip" in case:
        return {"name": name, "status": "skipped", "reason": case["skip"]}
    step = case["step"]
    inputs = [t.detach().clone().requires_grad_() for t in case["inputs"].values()]
    leaves = [*inputs, *case["parameters"].values()]
    hidden = inputs[0]
    eager = _run(step, inputs, leaves)
    eager_peak = _forward_peak(step, inputs, device) if case["memory_check"] else None
    torch._dynamo.reset()
    recorder = GraphRecorder()
    patches = {"post_grad_custom_post_pass": recorder, "fx_graph_cache": False}
    with inductor_config.patch(patches), _no_autograd_cache():
        compiled_step = torch.compile(step, fullgraph=True)
        passed = [*leaves, *case["others"]]
        versions = [t._version for t in passed]
        compile_started = time.perf_counter()
        compiled = _run(compiled_step, inputs, leaves)
        compile_s = time.perf_counter() - compile_started
        versions_after = [t._version for t in passed]
        peak = _forward_peak(compiled_step, inputs, device) if case["memory_check"] else None
    names = ["loss", *(f"d_{name}" for name in [*case["inputs"], *case["parameters"]])]
    comparisons = [_compare(n, a, e) for n, a, e in zip(names, compiled, eager)]
    hidden_shape = list(hidden.shape)
    copies = [c for g in recorder.graphs for c in g["input_copies"]]
    hidden_copies = [c for c in copies if c["shape"] == hidden_shape and not c.get("cast")]
    hidden_bytes = hidden.numel() * hidden.element_size()
    result = {
        "name": name,
        "shape": hidden_shape,
        "num_blocks": case.get("num_blocks"),
        "values_match_eager": all(c["ok"] for c in comparisons),
        "tensors_compared": len(comparisons),
        "gradients_none_on_both_sides": [c["tensor"] for c in comparisons if c["ok"] and c["max_abs_diff"] is None],
        "worst": max(comparisons, key=lambda c: c["max_abs_diff"] or 0.0),
        "graphs_seen": len(recorder.graphs),
        "triton_kernels": sorted({k for g in recorder.graphs for k in g["triton_kernels"]}),
        "input_writes": [c for c in copies if not c.get("cast")],
        "input_casts": [c for c in copies if c.get("cast")],
        "hidden_copies": hidden_copies,
        "input_versions_unchanged": versions == versions_after,
        "hidden_bytes": hidden_bytes,
        "forward_peak_bytes": peak,
        "eager_forward_peak_bytes": eager_peak,
        "forward_extra_over_hidden": None if peak is None else (peak - eager_peak) / hidden_bytes,
        "compile_and_first_step_s": compile_s,
        "seconds": time.perf_counter() - started,
    }
    no_copy = (not result["input_writes"] and result["input_versions_unchanged"] and result["graphs_seen"] > 0
               and (peak is None or result["forward_extra_over_hidden"] < MAX_EXTRA_FORWARD_PEAK))
    result["no_copy_of_hidden"] = no_copy
    result["status"] = "ok" if result["values_match_eager"] and no_copy else "failed"
    if result["status"] == "failed":
        result["reason"] = _failure(result, comparisons)
    return result


def _failure(result: dict, comparisons: list[dict]) -> str:
    reasons = [f"{c['tensor']} differs from eager: {c['message']}" for c in comparisons if not c["ok"]]
    if result["input_writes"]:
        reasons.append(f"the compiled graph writes or copies caller tensors: {result['input_writes']}")
    if not result["input_versions_unchanged"]:
        reasons.append("an input's version counter changed (the compiled step mutated it)")
    if result["graphs_seen"] == 0:
        reasons.append("Inductor's post-grad pass hook saw no graph: the graph evidence is missing")
    extra = result["forward_extra_over_hidden"]
    if extra is not None and extra >= MAX_EXTRA_FORWARD_PEAK:
        reasons.append(f"the compiled forward held {extra:.2f}× hidden's bytes more than eager "
                       f"(a copy of hidden costs 1×; limit {MAX_EXTRA_FORWARD_PEAK}×)")
    return "; ".join(reasons)


def _no_autograd_cache():
    """AOTAutograd's cache would skip Inductor (and so the recording pass) on a hit: off for the check."""
    import torch._functorch.config as functorch_config

    if hasattr(functorch_config, "enable_autograd_cache"):
        return functorch_config.patch(enable_autograd_cache=False)
    return contextlib.nullcontext()
