"""Interleaved timing: every implementation of a case is sampled in turn, round after round, so a noisy
neighbour on a shared machine slows all of them alike instead of whichever ran during the burst.

- CPU: `time.perf_counter` around back-to-back calls (at least `min_sample_s` per sample, the garbage
  collector off inside a sample, one full collection before the first), one sample per implementation
  per round, the starting implementation rotated each round. Each call includes resetting the leaves' `.grad`
  to `None` (a few microseconds).
- CUDA: `triton.testing.do_bench` (L2 flushed before every call, CUDA events) or, for the launch-bound
  tiny ops, `triton.testing.do_bench_cudagraph` (calls replayed from a CUDA graph, so host overhead is
  not timed); one `do_bench` per implementation per round, all per-call times pooled. A pass with an
  untimed setup (the backward, whose forward must run before each call) is timed the way `do_bench`
  times, with the setup outside the CUDA events.

Warm-up (compilation and autotuning included) happens before the first round and is never timed.
Reported: the median and the spread (quartiles, min, max) of the samples.
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass

import torch

from bench.passes import PassRun, reset_grads


@dataclass
class Timing:
    samples_ms: list[float]
    inner: int
    timer: str

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    def spread(self) -> dict:
        s = sorted(self.samples_ms)
        if len(s) >= 2:
            q25, _, q75 = statistics.quantiles(s, n=4, method="inclusive")
        else:
            q25 = q75 = s[0]
        return {"q25_ms": q25, "q75_ms": q75, "iqr_ms": q75 - q25, "min_ms": s[0], "max_ms": s[-1], "samples": len(s)}


def _sample_cpu(run: PassRun, inner: int) -> float:
    """Mean milliseconds of `inner` calls; with a `setup`, only the `fn` part of each call is timed."""
    fn, leaves, setup = run.fn, run.leaves, run.setup
    gc.disable()
    try:
        if setup is None:
            start = time.perf_counter()
            for _ in range(inner):
                reset_grads(leaves)
                fn()
            return (time.perf_counter() - start) / inner * 1e3
        total = 0.0
        for _ in range(inner):
            reset_grads(leaves)
            setup()
            start = time.perf_counter()
            fn()
            total += time.perf_counter() - start
        return total / inner * 1e3
    finally:
        gc.enable()


def time_cpu(runs: dict[str, PassRun], *, rounds: int, min_sample_s: float) -> dict[str, Timing]:
    """Median per-call milliseconds of each (already warmed-up) run, sampled interleaved."""
    gc.collect()  # once per measurement: a full collection costs ~1 s with dynamo loaded on a busy CPU
    inner = {}
    for name, run in runs.items():
        once_ms = _sample_cpu(run, 1)
        inner[name] = max(1, min(10_000, math.ceil(min_sample_s * 1e3 / max(once_ms, 1e-6))))
    samples = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(_sample_cpu(runs[name], inner[name]))
    timer = "perf_counter" if all(run.setup is None for run in runs.values()) else "perf_counter (setup untimed)"
    return {name: Timing(samples[name], inner[name], timer) for name in runs}


def cudagraph_capturable(runs: dict[str, PassRun]) -> str | None:
    """`None` when every run can be captured in a CUDA graph, else why not (the first failure)."""
    import triton.testing

    for name, run in runs.items():
        if run.setup is not None:
            return f"{name}: needs an untimed setup before every call"
        try:
            triton.testing.do_bench_cudagraph(run.fn, rep=1, grad_to_none=run.leaves or None)
        except Exception as error:  # capture failures come as RuntimeError, AssertionError, ...
            return f"{name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


MAX_CALLS_WITH_SETUP = 500  # each call also runs its untimed setup (a forward) on the host


def _events_with_setup(run: PassRun, rep_ms: int) -> list[float]:
    """`do_bench`'s method (L2 flushed, CUDA events around each call) with `run.setup` outside the events."""
    from triton import runtime

    driver = runtime.driver.active
    cache = driver.get_empty_cache_for_benchmark()

    def one(start, end) -> None:
        reset_grads(run.leaves)
        run.setup()
        driver.clear_cache(cache)
        start.record()
        run.fn()
        end.record()

    probe = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(5)]
    for start, end in probe:
        one(start, end)
    torch.cuda.synchronize()
    estimate_ms = max(1e-3, sum(s.elapsed_time(e) for s, e in probe) / len(probe))
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(max(1, min(MAX_CALLS_WITH_SETUP, int(rep_ms / estimate_ms))))]
    for start, end in events:
        one(start, end)
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in events]


def time_cuda(runs: dict[str, PassRun], *, rounds: int, rep_ms: int, cudagraph: bool) -> dict[str, Timing]:
    """Per-call milliseconds from `do_bench` (or `do_bench_cudagraph`, or CUDA events around `fn` when a
    run has an untimed `setup`), interleaved over `rounds`."""
    import triton.testing

    samples = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            run = runs[name]
            grads = run.leaves or None
            if run.setup is not None:
                times = _events_with_setup(run, rep_ms)
            elif cudagraph:
                times = triton.testing.do_bench_cudagraph(run.fn, rep=rep_ms, grad_to_none=grads, return_mode="all")
            else:
                times = triton.testing.do_bench(run.fn, warmup=max(1, rep_ms // 4), rep=rep_ms, grad_to_none=grads,
                                                return_mode="all")
            samples[name].extend(float(t) for t in times)
    timers = {name: _timer_name(runs[name], cudagraph) for name in runs}
    return {name: Timing(samples[name], 1, timers[name]) for name in runs}


def _timer_name(run: PassRun, cudagraph: bool) -> str:
    if run.setup is not None:
        return "cuda_events (L2 flushed, setup untimed)"
    return "do_bench_cudagraph" if cudagraph else "do_bench"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
