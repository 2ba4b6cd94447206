"""The model's equations (written out, with their limits, in docs/gpu_model.md): a kernel's predicted time
on a GPU from its static profile.

    occupancy      c = min(CTAs by registers, by shared memory, by warps, 32)
    DRAM bytes     Σ_tensors min(bytes requested, bytes of the tensor), loads and stores apart
    per program    chain_p = Σ_regions runs_p,r · (Σ_batches latency + issue_r + barriers_r · t_bar); a batch first
                   used after an inner loop that runs and waits on its own loads overlaps that loop's first wait
    per SM         programs in launch order onto c·SMs slots, each busy for its chain (list scheduling)
    kernel         max(DRAM bytes / copy BW, L2 bytes / L2 BW, max_SM(latency, issue, shared pipe)) + launch
"""
from __future__ import annotations

import dataclasses
import heapq
import math

import numpy as np

from bench.gpu_model.gpus import Gpu
from bench.gpu_model.profile import KernelProfile
from bench.gpu_model.workloads import TorchOp

LIMITERS = ("DRAM bandwidth", "L2 bandwidth", "issue", "shared-memory pipe", "memory-level parallelism", "barriers",
            "serial issue", "tail / wave quantisation", "launch")


@dataclasses.dataclass
class Prediction:
    kernel: str
    time_us: float
    limiter: str
    terms_us: dict  # dram, l2, issue, shared, latency, launch
    ctas_per_sm: int | None
    warps_per_sm: int | None
    occupancy_limit: str | None
    bytes_in_flight_per_sm: float | None
    dram_bytes: float
    l2_bytes: float
    barriers: float  # executed by CTAs, all programs
    shared_instructions: float  # warp instructions, all programs
    programs: int
    waves: float | None


def occupancy(profile: KernelProfile, gpu: Gpu) -> tuple[int, str]:
    """CTAs one SM holds at once, and what limits it."""
    warps = profile.num_warps
    per_warp = math.ceil(profile.registers * 32 / gpu.register_unit) * gpu.register_unit
    limits = {
        "registers": gpu.registers_per_sm // (per_warp * warps),
        "shared memory": gpu.shared_per_sm // (profile.shared_bytes + gpu.shared_reserved_per_cta),
        "warps": gpu.max_warps_per_sm // warps,
        "CTAs": gpu.max_ctas_per_sm,
    }
    limit = min(limits, key=limits.get)
    return limits[limit], limit


def _tensor_fractions(profile: KernelProfile) -> dict[str, tuple[float, float]]:
    """Per tensor, the share of requested loads and stores that reach DRAM: its bytes over the bytes asked
    for (a tensor read twice is read from DRAM once, then from L2)."""
    fractions = {}
    for tensor, per_program in profile.requested.items():
        loaded, stored = per_program.sum(axis=0)
        size = profile.footprint.get(tensor, 0)
        fractions[tensor] = (min(1.0, size / loaded) if loaded else 1.0, min(1.0, size / stored) if stored else 1.0)
    return fractions


def _schedule(chains: np.ndarray, slots: int, multiprocessors: int) -> tuple[np.ndarray, np.ndarray]:
    """List scheduling of programs, in launch order, onto `slots` CTA slots (slot s on SM s mod SMs).
    Returns each SM's finish time and each program's SM."""
    programs = len(chains)
    if programs and np.all(chains == chains[0]):  # equal programs: waves, round robin over the SMs
        sm_of = np.arange(programs) % multiprocessors
        per_sm = np.bincount(sm_of, minlength=multiprocessors)
        cta_slots = max(1, slots // multiprocessors)
        return np.ceil(per_sm / cta_slots) * chains[0], sm_of
    heap = [(0.0, slot) for slot in range(slots)]
    finish = np.zeros(multiprocessors)
    sm_of = np.zeros(programs, dtype=int)
    for index, chain in enumerate(chains):
        start, slot = heapq.heappop(heap)
        end = start + chain
        sm = slot % multiprocessors
        sm_of[index] = sm
        finish[sm] = max(finish[sm], end)
        heapq.heappush(heap, (end, slot))
    return finish, sm_of


def predict_kernel(profile: KernelProfile, gpu: Gpu, streamed: tuple[str, ...] = ()) -> Prediction:
    """`streamed`: the tensors whose loads count as bytes in flight (all loads when the kernel loads none)."""
    clock = gpu.clock_ghz * 1e9
    ctas, limit = occupancy(profile, gpu)
    ctas = max(1, ctas)
    warps = profile.num_warps
    fractions = _tensor_fractions(profile)
    runs = profile.region_runs  # [programs, regions]

    def latency(tensor):
        share = fractions.get(tensor, (1.0, 1.0))[0] if tensor is not None else 1.0
        return (share * gpu.dram_latency_ns + (1 - share) * gpu.l2_latency_ns) * 1e-9

    issue_cycles = math.ceil(warps / gpu.issue_per_clock)  # each scheduler issues for its share of the CTA's warps

    def batch_latency(batch):
        return max(latency(tensor) for tensor, _ in batch.loads)

    def exposed(batch, overlapped=0.0):  # the latency the work issued before the first wait does not hide
        hidden = (batch.instructions_before_use * issue_cycles + batch.barriers_before_use * gpu.barrier_cycles) / clock
        return max(0.0, batch_latency(batch) - hidden - overlapped)

    memory_s = np.array([sum(exposed(b) for b in r.load_batches if b.across_region is None) for r in profile.regions])
    memory = runs @ memory_s
    for r, region in enumerate(profile.regions):  # batches first used after a loop that waits on loads of its own:
        for b in (b for b in region.load_batches if b.across_region is not None):  # its first wait overlaps theirs
            loop = profile.regions[b.across_region]
            overlapped = batch_latency(loop.load_batches[0])
            memory += runs[:, r] * np.where(runs[:, b.across_region] > 0, exposed(b, overlapped), exposed(b))
    issue_s = np.array([r.instructions * issue_cycles / clock for r in profile.regions])
    barrier_s = np.array([r.barriers * gpu.barrier_cycles / clock for r in profile.regions])
    parts = {"memory-level parallelism": memory, "serial issue": runs @ issue_s, "barriers": runs @ barrier_s}
    chains = sum(parts.values())
    finish, sm_of = _schedule(chains, ctas * gpu.multiprocessors, gpu.multiprocessors)

    instructions = runs @ np.array([r.instructions * warps for r in profile.regions], dtype=float)
    wavefronts = runs @ np.array([r.shared_wavefronts * warps for r in profile.regions], dtype=float)
    issue_sm = np.bincount(sm_of, instructions, gpu.multiprocessors) / (gpu.issue_per_clock * clock)
    shared_sm = np.bincount(sm_of, wavefronts, gpu.multiprocessors) / (gpu.shared_wavefronts_per_clock * clock)

    dram = l2 = 0.0
    for tensor, per_program in profile.requested.items():
        loaded, stored = per_program.sum(axis=0)
        read_share, write_share = fractions[tensor]
        dram += loaded * read_share + stored * write_share
        l2 += loaded + stored
    terms = {"dram": dram / (gpu.copy_gbps * 1e9), "l2": l2 / (gpu.l2_gbps * 1e9), "issue": issue_sm.max(initial=0.0),
             "shared": shared_sm.max(initial=0.0), "latency": finish.max(initial=0.0)}
    busy = np.maximum(np.maximum(finish, issue_sm), shared_sm)
    body = max(terms.values())
    limiter = {"dram": "DRAM bandwidth", "l2": "L2 bandwidth", "issue": "issue", "shared": "shared-memory pipe"}.get(
        max(terms, key=terms.get))
    if limiter is None:  # the latency chain: name its largest part
        critical = np.flatnonzero(sm_of == int(np.argmax(finish)))
        limiter = max(parts, key=lambda name: parts[name][critical].sum())
    sm_bound = max(terms, key=terms.get) in ("issue", "shared", "latency")
    if sm_bound and busy.mean() < 0.8 * body:
        limiter = "tail / wave quantisation"
    if gpu.launch_us * 1e-6 >= body:
        limiter = "launch"

    loads_streamed = any(t in streamed for r in profile.regions for batch in r.load_batches for t, _ in batch.loads)

    def in_flight(batch):
        return sum(size for tensor, size in batch.loads if tensor in streamed or not loads_streamed)

    batch_bytes = max((in_flight(batch) for i, r in enumerate(profile.regions) if runs[:, i].any()
                       for batch in r.load_batches), default=0)
    resident = min(ctas, math.ceil(profile.programs / gpu.multiprocessors))
    return Prediction(
        kernel=profile.name, time_us=(body * 1e6 + gpu.launch_us), limiter=limiter,
        terms_us={k: v * 1e6 for k, v in terms.items()} | {"launch": gpu.launch_us},
        ctas_per_sm=ctas, warps_per_sm=ctas * warps, occupancy_limit=limit,
        bytes_in_flight_per_sm=float(batch_bytes * warps * resident), dram_bytes=dram, l2_bytes=l2,
        barriers=float((runs @ np.array([r.barriers for r in profile.regions], dtype=float)).sum()),
        shared_instructions=float((runs @ np.array([r.shared_instructions * warps for r in profile.regions],
                                                   dtype=float)).sum()),
        programs=profile.programs, waves=profile.programs / (ctas * gpu.multiprocessors))


def predict_torch_op(op: TorchOp, gpu: Gpu) -> Prediction:
    """A PyTorch op (a fill, a sum, a cast) as a streaming kernel at the copy bandwidth."""
    dram = op.read_bytes + op.write_bytes
    body = dram / (gpu.copy_gbps * 1e9)
    return Prediction(
        kernel=f"torch:{op.name}", time_us=body * 1e6 + gpu.launch_us,
        limiter="launch" if gpu.launch_us * 1e-6 >= body else "DRAM bandwidth",
        terms_us={"dram": body * 1e6, "l2": 0.0, "issue": 0.0, "shared": 0.0, "latency": 0.0, "launch": gpu.launch_us},
        ctas_per_sm=None, warps_per_sm=None, occupancy_limit=None, bytes_in_flight_per_sm=None, dram_bytes=dram,
        l2_bytes=dram, barriers=0.0, shared_instructions=0.0, programs=0, waves=None)
