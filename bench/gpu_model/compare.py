"""Measured beside predicted: the model's figure for every `adajudge` row a GPU run of `python -m bench`
measured, at the same shape, dtype and pooling forward variant, on a GPU with that run's SM count and
the copy bandwidth that run measured (`python -m bench.gpu_check` calls this after its bench step).

Only the constants the run cannot measure (clock, latencies, L2) come from `gpus.GPUS["H100"]`. A
padded bench case has random row lengths; the padded kernels sweep every position whatever the mask, so
the model's full rows cost the same.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from adajudge.kernels.aot import ahead_of_time
from adajudge.kernels.launch import assume_multiprocessors
from bench.gpu_model import ARCH
from bench.gpu_model.gpus import GPUS, Gpu
from bench.gpu_model.profile import profile
from bench.gpu_model.records import pass_records
from bench.gpu_model.workloads import loss_passes, pooling_passes, router_passes

BENCH_DTYPES = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}


def _passes(row: dict, dtype: str):
    shape = row["shape"]
    if row["op"] == "multiview_pool":
        return list(pooling_passes({k: shape[k] for k in ("B", "T", "D")}, dtype, "padded"))
    if row["op"] == "router_mix":
        return list(router_passes(shape["N"], dtype))
    if row["op"] == "preference_loss":
        return list(loss_passes(row["variant"], shape["N"], dtype, **({"dim": shape["D"]} if "D" in shape else {})))
    return []


def _predicted_us(passes, row: dict, gpu_key: str, gpu: Gpu) -> tuple[float, str] | None:
    wanted = ("forward", "backward") if row["pass"] == "full" else (row["pass"],)
    variant = row.get("pool_forward") or "fused"
    total, limiters = 0.0, []
    for pass_ in passes:
        if pass_.pass_ not in wanted or (pass_.op == "multiview_pool" and pass_.pass_ == "forward" and pass_.variant != variant):
            continue
        found = pass_records(pass_, [profile(launch) for launch in pass_.launches], {gpu_key: gpu})
        (whole,) = [r for r in found if r["kernel"] == "all"] or found
        total += whole["predicted_us"]
        limiters.append(whole["limiter"])
    return (total, "; ".join(limiters)) if limiters else None


def side_by_side(results: dict, multiprocessors: int, device_name: str, arch: int = ARCH) -> list[dict]:
    """Rows of a `python -m bench` results.json (`{"meta", "records"}`) with the model's prediction, the
    kernels built for `sm_<arch>` (the measuring GPU's)."""
    meta = results["meta"]
    dtype = BENCH_DTYPES[meta["dtype"]]
    gpu = dataclasses.replace(GPUS["H100"], name=device_name, multiprocessors=multiprocessors,
                              copy_gbps=meta["copy_bandwidth"]["gbps"])
    rows = []
    with assume_multiprocessors(multiprocessors), ahead_of_time(arch):
        for record in results["records"]:
            if record["impl"] != "adajudge" or record["op"] not in ("multiview_pool", "router_mix", "preference_loss"):
                continue
            predicted = _predicted_us(_passes(record, dtype), record, "measured_gpu", gpu)
            if predicted is None:
                continue
            measured_us = record["median_ms"] * 1e3
            rows.append({"op": record["op"], "variant": record["variant"], "shape": record["shape"], "pass": record["pass"],
                         "dtype": dtype, "pool_forward": record.get("pool_forward"), "measured_us": measured_us,
                         "predicted_us": predicted[0], "predicted_over_measured": predicted[0] / measured_us,
                         "measured_fraction": record.get("fraction_of_copy_bandwidth"),
                         "predicted_fraction": (record.get("fraction_of_copy_bandwidth") or 0) * measured_us / predicted[0],
                         "limiter": predicted[1]})
    return rows


def compare_files(paths: list[Path], multiprocessors: int, device_name: str, arch: int = ARCH) -> list[dict]:
    rows = []
    for path in paths:
        rows += side_by_side(json.loads(Path(path).read_text()), multiprocessors, device_name, arch)
    return rows
