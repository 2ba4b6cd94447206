"""Peak memory of one call: the most tensor bytes the call holds at once, above what was live before it.

- CUDA: the caching allocator's counters (`torch.cuda.reset_peak_memory_stats`, then
  `max_memory_allocated() - memory_allocated()` before the call).
- CPU: the same quantity from the PyTorch profiler's allocation events (`profile_memory=True`). The CPU
  allocator reports every tensor allocation and free to the profiler with a running total, so the peak is
  exact and in-process: intermediates, autograd's saved tensors, outputs and gradients, Inductor's
  buffers included. Not counted: memory outside tensors (Python objects, Inductor's C++ stack arrays,
  the allocator's own overhead). We chose this over a subprocess's `ru_maxrss` delta, which is rounded to
  pages, includes the interpreter, glibc arenas and compile workers, and needs a fresh process (and a
  fresh compile) per case; and over `tracemalloc`, which sees only Python's allocator, never a tensor.

Frees of tensors allocated before the call count as negative, so the peak is what the call added.
The profiler's native logger prints two lines per session on the C-level stderr; they are swallowed, and
replayed if the call raises.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable

import torch

from bench.passes import PassRun, reset_grads

CPU_METHOD = "torch.profiler allocation events (tensor bytes above the live set before the call)"
CUDA_METHOD = "torch.cuda.max_memory_allocated (tensor bytes above the live set before the call)"


@contextlib.contextmanager
def _quiet_native_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


def _allocations(nodes, out: list) -> None:
    from torch._C._profiler import _EventType

    for node in nodes:
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            out.append((node.start_time_ns, node.extra_fields.alloc_size))
        _allocations(node.children, out)


def peak_cpu(fn: Callable[[], object]) -> int:
    """Peak tensor bytes allocated on the CPU while `fn()` runs, above the bytes live before it."""
    from torch.autograd import profiler

    with _quiet_native_stderr(), profiler.profile(profile_memory=True, use_kineto=False) as prof:
        fn()
    events: list = []
    _allocations(prof.kineto_results.experimental_event_tree(), events)
    # Signed sizes (frees are negative) summed in time order. The events' own `total_allocated` is not
    # used: the reporter keeps it across sessions and never sees frees made while it is off, so it drifts.
    peak = live = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def peak_cuda(fn: Callable[[], object], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before)


def peak_memory(run: PassRun, device: torch.device) -> tuple[int, str]:
    """`(peak bytes, method)` for one call of a warmed-up `run`, gradients reset and `setup` run (untimed,
    unmeasured: for the backward, the forward's saved tensors are part of the live set) as when timed."""
    reset_grads(run.leaves)
    if run.setup is not None:
        run.setup()
    if device.type == "cuda":
        return peak_cuda(run.fn, device), CUDA_METHOD
    return peak_cpu(run.fn), CPU_METHOD
