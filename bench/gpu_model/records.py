"""One JSON record per kernel × shape × dtype × layout × GPU, and one per pass (`kernel: "all"`).

Keys (stable; `python -m bench.gpu_model --json PATH` writes a list of these):

- `op, kernel, pass, variant, default, shape, dtype, layout, gpu`: what; `variant` names the pooling
  forward (`fused`, `two_phase`) or the loss (`focal`, `normbt`, `normbt_ema`); `default` is true for what
  `backend="auto"` runs; `kernel` is a Triton kernel's name, `torch:<op>` for a PyTorch op the launcher
  runs (a zero-fill, a sum), `<name>#2` for a second launch of one in the same pass, or `all` for the pass
  (the sum of its kernels' times); `triton`: the version
  that built the kernels (3.6 and 3.9 build different SASS).
- `registers, spills, stack_bytes, shared_bytes, ctas_per_sm, warps_per_sm, occupancy_limit, programs, waves`.
- `access_bits`: per tensor argument, the widths in bits of its global loads and stores in the SASS
  (`"?"`: accesses the model could not tie to one argument); `streamed_tensors`: the arguments the floor
  counts; `streamed_128bit`: whether every access to them is 128-bit (None: the kernel has none).
- `bytes_in_flight_per_sm` (loads of the streamed tensors a warp issues before it waits, × warps × resident
  CTAs) and `bytes_in_flight_needed_per_sm` (Little's law at the copy bandwidth).
- `barriers_per_kb` (CTA barriers) and `shared_instructions_per_kb` (warp instructions), per KB of the
  pass's floor bytes; `dram_bytes`, `l2_bytes`.
- `predicted_us`, `floor_us` (the pass's floor bytes at the measured copy bandwidth), `predicted_fraction`
  (`floor_us / predicted_us`: the share of copy bandwidth; on a kernel of a pass of several kernels, the pass's
  floor over this kernel's time), `limiter`, `terms_us` (each term of the model), `loops` (each SASS loop body:
  its start, runs per program, and per run and warp its instructions, barriers, shared-memory wavefronts and
  load bytes in flight), `notes` (loops ptxas unrolled, loops the model could not tie to the TTIR).
"""
from __future__ import annotations

import triton

from bench.gpu_model.gpus import Gpu
from bench.gpu_model.model import Prediction, predict_kernel, predict_torch_op
from bench.gpu_model.profile import KernelProfile
from bench.gpu_model.workloads import Pass

KEYS = ("op", "kernel", "pass", "variant", "default", "shape", "dtype", "layout", "gpu", "triton", "registers", "spills",
        "stack_bytes", "shared_bytes", "ctas_per_sm", "warps_per_sm", "occupancy_limit", "programs", "waves",
        "access_bits", "streamed_tensors", "streamed_128bit", "bytes_in_flight_per_sm", "bytes_in_flight_needed_per_sm",
        "barriers_per_kb", "shared_instructions_per_kb", "dram_bytes", "l2_bytes", "predicted_us", "floor_us",
        "predicted_fraction", "limiter", "terms_us", "loops", "notes")


def _access_bits(profile: KernelProfile) -> dict:
    return {tensor: {kind: sorted(set(bits)) for kind, bits in kinds.items()} for tensor, kinds in sorted(profile.widths.items())}


def _streamed_128bit(access_bits: dict, streamed) -> bool | None:
    widths = [bit for tensor in streamed if tensor in access_bits for bits in access_bits[tensor].values() for bit in bits]
    return all(bit == 128 for bit in widths) if widths else None


TRITON = triton.__version__


def _record(pass_: Pass, gpu_key: str, gpu: Gpu, prediction: Prediction, profile: KernelProfile | None) -> dict:
    floor_us = pass_.floor_bytes / (gpu.copy_gbps * 1e9) * 1e6
    kb = pass_.floor_bytes / 1024
    access_bits = _access_bits(profile) if profile else {}
    return {
        "op": pass_.op, "kernel": prediction.kernel, "pass": pass_.pass_, "variant": pass_.variant, "default": pass_.default,
        "shape": pass_.shape_label, "dtype": pass_.dtype, "layout": pass_.layout, "gpu": gpu_key, "triton": TRITON,
        "registers": profile.registers if profile else None, "spills": profile.spills if profile else None,
        "stack_bytes": profile.stack_bytes if profile else None, "shared_bytes": profile.shared_bytes if profile else None,
        "ctas_per_sm": prediction.ctas_per_sm, "warps_per_sm": prediction.warps_per_sm,
        "occupancy_limit": prediction.occupancy_limit, "programs": prediction.programs, "waves": prediction.waves,
        "access_bits": access_bits, "streamed_tensors": list(pass_.streamed),
        "streamed_128bit": _streamed_128bit(access_bits, pass_.streamed),
        "bytes_in_flight_per_sm": prediction.bytes_in_flight_per_sm,
        "bytes_in_flight_needed_per_sm": gpu.bytes_in_flight_needed_per_sm,
        "barriers_per_kb": prediction.barriers / kb, "shared_instructions_per_kb": prediction.shared_instructions / kb,
        "dram_bytes": prediction.dram_bytes, "l2_bytes": prediction.l2_bytes,
        "predicted_us": prediction.time_us, "floor_us": floor_us, "predicted_fraction": floor_us / prediction.time_us,
        "limiter": prediction.limiter, "terms_us": prediction.terms_us, "loops": _loops(profile) if profile else [],
        "notes": list(profile.notes) if profile else [],
    }


def _loops(profile: KernelProfile) -> list[dict]:
    """Each SASS loop body: where it starts, how often a program runs it (mean over programs), and what one
    warp issues per run."""
    return [{"start": hex(r.loop_start), "runs_per_program": float(profile.region_runs[:, i].mean()),
             "instructions": r.instructions, "barriers": r.barriers, "shared_wavefronts": r.shared_wavefronts,
             "load_bytes_in_flight_per_warp": max((b.bytes for b in r.load_batches), default=0)}
            for i, r in enumerate(profile.regions) if r.loop_start is not None]


def _pass_record(kernels: list[dict]) -> dict:
    """The pass as one record: times, bytes and per-KB counts summed; the streaming kernel's (most DRAM
    bytes) occupancy and bytes in flight; the limiter of the kernel that takes longest."""
    triton = [r for r in kernels if not r["kernel"].startswith("torch:")] or kernels
    streaming = max(triton, key=lambda r: r["dram_bytes"])
    longest = max(kernels, key=lambda r: r["predicted_us"])
    total = sum(r["predicted_us"] for r in kernels)
    widths = [r["streamed_128bit"] for r in triton if r["streamed_128bit"] is not None]
    record = dict(streaming)
    record.update({
        "kernel": "all", "registers": max((r["registers"] for r in triton if r["registers"] is not None), default=None),
        "spills": sum(r["spills"] or 0 for r in triton), "stack_bytes": max(r["stack_bytes"] or 0 for r in triton),
        "streamed_128bit": all(widths) if widths else None,
        "access_bits": {}, "programs": sum(r["programs"] for r in triton), "loops": [],
        "barriers_per_kb": sum(r["barriers_per_kb"] for r in kernels),
        "shared_instructions_per_kb": sum(r["shared_instructions_per_kb"] for r in kernels),
        "dram_bytes": sum(r["dram_bytes"] for r in kernels), "l2_bytes": sum(r["l2_bytes"] for r in kernels),
        "predicted_us": total, "predicted_fraction": streaming["floor_us"] / total,
        "limiter": f"{longest['kernel']}: {longest['limiter']}", "terms_us": {},
        "notes": [f"{r['kernel']}: {note}" for r in kernels for note in r["notes"]],
    })
    return record


def pass_records(pass_: Pass, profiles: list[KernelProfile], gpus: dict[str, Gpu]) -> list[dict]:
    """Records of every kernel of `pass_` (profiled in launch order) and of the pass, on each GPU."""
    records = []
    for gpu_key, gpu in gpus.items():
        kernels = [_record(pass_, gpu_key, gpu, predict_kernel(profile, gpu, pass_.streamed), profile) for profile in profiles]
        kernels += [_record(pass_, gpu_key, gpu, predict_torch_op(op, gpu), None) for op in pass_.torch_ops]
        seen: dict[str, int] = {}
        for record in kernels:  # a kernel launched twice in one pass: "name#2" for the second launch
            seen[record["kernel"]] = seen.get(record["kernel"], 0) + 1
            if seen[record["kernel"]] > 1:
                record["kernel"] += f"#{seen[record['kernel']]}"
        records += kernels
        if len(kernels) > 1:
            records.append(_pass_record(kernels))
    return records
