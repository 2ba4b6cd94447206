"""Run every case: warm up, time the passes interleaved, measure peak memory, build one record per
(case, implementation, pass)."""
from __future__ import annotations

import gc
import time
from collections.abc import Callable

import torch

from bench.cases import LAUNCH_BOUND_OPS, TRITON_OPS, Case, build_workload, differentiable_outputs
from bench.memory import peak_memory
from bench.passes import make_pass
from bench.static_report import dtype_name, rows_for
from bench.sweeps import Budget
from bench.timing import cudagraph_capturable, synchronize, time_cpu, time_cuda


def _max_abs_diff(outputs, reference) -> float:
    pairs = zip(differentiable_outputs(outputs), differentiable_outputs(reference))
    return max(float((a.detach().float() - b.detach().float()).abs().max()) for a, b in pairs)


def _warm_up(workload, impls) -> tuple[dict, dict]:
    """One full step per implementation (compiles forward and backward); returns warm-up seconds and the
    max |difference| of each implementation's forward outputs from eager's."""
    seconds, outputs = {}, {}
    for impl in impls:
        call, leaves = workload.calls[impl], workload.leaves[impl]
        start = time.perf_counter()
        make_pass(call, leaves, "full").fn()
        synchronize(workload.case.device)
        seconds[impl] = time.perf_counter() - start
        outputs[impl] = call()
    diffs = {impl: (_max_abs_diff(outputs[impl], outputs["eager"]) if "eager" in outputs else None) for impl in impls}
    return seconds, diffs


def _time(case: Case, runs: dict, budget: Budget) -> tuple[dict, str | None]:
    if case.device.type != "cuda":
        return time_cpu(runs, rounds=budget.rounds, min_sample_s=budget.min_sample_s), None
    note = None
    cudagraph = case.op in LAUNCH_BOUND_OPS
    if cudagraph:
        note = cudagraph_capturable(runs)
        cudagraph = note is None
        if note is not None:
            note = f"do_bench instead of do_bench_cudagraph for every impl: capture failed ({note})"
    return time_cuda(runs, rounds=budget.rounds, rep_ms=budget.rep_ms, cudagraph=cudagraph), note


def _adajudge_backend(device: torch.device) -> str:
    from adajudge.ops.backend import resolve_backend

    return resolve_backend("auto", device, torch.float32)


def run_case(case: Case, impls, passes, budget: Budget, *, static: dict | None, predict_gbps: float, seed: int) -> list[dict]:
    """Records of one case for `impls` (each already filtered by the preset's omissions)."""
    workload = build_workload(case, impls, seed)
    warmup_s, diffs = _warm_up(workload, impls)
    records = []
    for pass_ in passes:
        runs = {impl: make_pass(workload.calls[impl], workload.leaves[impl], pass_) for impl in impls}
        for run in runs.values():
            run.once()
        synchronize(case.device)
        timings, timer_note = _time(case, runs, budget)
        nbytes = case.bytes_moved(pass_)
        for impl in impls:
            timing = timings[impl]
            peak, method = peak_memory(runs[impl], case.device)
            record = {
                "op": case.op,
                "variant": case.variant,
                "sweep": case.sweep,
                "shape": dict(case.shape),
                "impl": impl,
                "pass": pass_,
                "dtype": dtype_name(case.dtype),
                "device": case.device.type,
                "median_ms": timing.median_ms,
                "spread": timing.spread(),
                "timer": timing.timer,
                "timer_note": timer_note,
                "calls_per_sample": timing.inner,
                "warmup_s": warmup_s[impl],
                "speedup_vs_eager": (timings["eager"].median_ms / timing.median_ms) if "eager" in timings else None,
                "speedup_vs_compile": (timings["compile"].median_ms / timing.median_ms) if "compile" in timings else None,
                "input_bytes": case.input_bytes(),
                "bytes_model": nbytes,
                "gbps": nbytes / (timing.median_ms * 1e-3) / 1e9 if nbytes else None,
                "peak_memory_bytes": peak,
                "peak_memory_method": method,
                "max_abs_diff_vs_eager": diffs[impl],
            }
            if impl == "adajudge":
                record.update(_adajudge_fields(case, pass_, nbytes, static, predict_gbps))
            records.append(record)
        del runs
    del workload
    gc.collect()
    if case.device.type == "cuda":
        torch.cuda.empty_cache()
    return records


def _adajudge_fields(case: Case, pass_: str, nbytes: int | None, static: dict | None, predict_gbps: float) -> dict:
    fields = {"adajudge_backend": _adajudge_backend(case.device)}
    if case.op not in TRITON_OPS:
        return fields
    if static is not None:
        size = case.shape.get("D")
        reason = static["reason"]
        if static["available"] and size is not None and size not in static["hidden_sizes"]:
            reason = f"not built at D={size}: this preset builds D in {static['hidden_sizes']} only"
        fields["triton_static_report"] = {
            "available": static["available"],
            "reason": reason,
            "archs": static["archs"],
            "rows": rows_for(static, case.op, pass_, size, case.dtype),
        }
    if nbytes:
        fields["prediction"] = {
            "h100_ms": nbytes / (predict_gbps * 1e9) * 1e3,
            "assumed_bandwidth_gbps": predict_gbps,
            "note": "PREDICTION, not a measurement: bytes model / assumed H100 bandwidth (unmeasured)",
        }
    return fields


def run_all(cases: list[Case], impls, passes, budget: Budget, *, static, predict_gbps: float, seed: int,
            omitted: dict | None = None, on_case: Callable[[int, Case, float, list[dict]], None] | None = None,
            deadline: float | None = None) -> tuple[list[dict], list[str]]:
    """Records of every case, and the labels of the cases not started because `time.perf_counter()` had
    passed `deadline` (a case once started runs to its end). `on_case(index, case, seconds, records so
    far)` is called after each case. Dynamo is reset when the (op, variant)
    changes, so each op's compile is its own. `omitted`: `{(op, impl): reason}` pairs not run."""
    records, group = [], None
    for index, case in enumerate(cases):
        if deadline is not None and time.perf_counter() > deadline:
            return records, [c.label for c in cases[index:]]
        if case.group != group:
            torch._dynamo.reset()
            group = case.group
        start = time.perf_counter()
        chosen = [impl for impl in impls if (case.op, impl) not in (omitted or {})]
        records.extend(run_case(case, chosen, passes, budget, static=static, predict_gbps=predict_gbps, seed=seed))
        if on_case is not None:
            on_case(index, case, time.perf_counter() - start, records)
    return records, []
