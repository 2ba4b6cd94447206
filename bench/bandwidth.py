"""The machine's copy bandwidth, measured in the same run as the ops it is compared with.

`torch.clone` of a buffer far larger than the caches moves `2 × size` bytes (one read, one write). On
the CPU a fresh clone also pays the kernel's first-touch page faults of the new buffer, so `Tensor.copy_`
into a buffer allocated once is measured too; the better of the two is the reference bandwidth
(`fraction of copy bandwidth` is then conservative). Measured at the start and at the end of the run: on
a shared machine the two can differ, and both are recorded.
"""
from __future__ import annotations

import torch

from bench.passes import PassRun
from bench.timing import time_cpu, time_cuda


def copy_bandwidth(device: torch.device, nbytes: int, *, rounds: int = 5) -> dict:
    """GB/s (1e9 bytes per second) of `clone` and `copy_` of an `nbytes` uint8 buffer on `device`."""
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    runs = {"clone": PassRun(src.clone, []), "copy": PassRun(lambda: dst.copy_(src), [])}
    for run in runs.values():
        run.fn()
    if device.type == "cuda":
        timings = time_cuda(runs, rounds=rounds, rep_ms=50, cudagraph=False)
    else:
        timings = time_cpu(runs, rounds=rounds, min_sample_s=0.0)
    result = {"buffer_bytes": nbytes}
    for name, timing in timings.items():
        result[f"{name}_gbps"] = 2 * nbytes / (timing.median_ms * 1e-3) / 1e9
        result[f"{name}_median_ms"] = timing.median_ms
    result["gbps"] = max(result["clone_gbps"], result["copy_gbps"])
    return result
