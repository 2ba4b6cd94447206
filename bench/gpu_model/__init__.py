"""`python -m bench.gpu_model`: GPU speed read before it is run — a static performance model of every Triton
kernel of the library, from the SASS of the build each launch would run on an H100 or H200 and the launch
plan the launchers make for that GPU (docs/gpu_model.md has the equations and how far to trust them).

Every figure this package produces is **predicted by the static model**, never measured.

    records(gpus=("H100", "H200"))    # one dict per kernel × shape × dtype × layout × GPU (see `records`)
    calibration_records(gpus)         # the copy kernels the model is anchored on
"""
from __future__ import annotations

from collections.abc import Callable

from adajudge.kernels.aot import ahead_of_time
from bench.gpu_model import calibration
from bench.gpu_model.gpus import GPUS
from bench.gpu_model.profile import profile
from bench.gpu_model.records import pass_records
from bench.gpu_model.workloads import DEFAULT_DTYPES, LAYOUTS, POOL_SHAPES, Pass, all_passes

ARCH = 90  # the runtime variant of an H100 / H200: sm_90


def records(gpus=tuple(GPUS), *, ops=("multiview_pool", "router_mix", "preference_loss"), dtypes=DEFAULT_DTYPES,
            pool_shapes=POOL_SHAPES, layouts=LAYOUTS, on_pass: Callable[[Pass], None] | None = None) -> list[dict]:
    """Predicted records for every pass of `ops` on every GPU of `gpus` (keys of `GPUS`). Launch plans
    depend on the SM count only, so GPUs with the same count share the builds."""
    chosen = {key: GPUS[key] for key in gpus}
    found = []
    for count in sorted({gpu.multiprocessors for gpu in chosen.values()}):
        group = {key: gpu for key, gpu in chosen.items() if gpu.multiprocessors == count}
        with ahead_of_time(ARCH):
            for pass_ in all_passes(count, ops=ops, dtypes=dtypes, pool_shapes=pool_shapes, layouts=layouts):
                found += pass_records(pass_, [profile(launch) for launch in pass_.launches], group)
                if on_pass is not None:
                    on_pass(pass_)
    return found


def calibration_records(gpus=tuple(GPUS)) -> list[dict]:
    """The copy kernels of `calibration` as records (op "calibration", variant = the case's name)."""
    chosen = {key: GPUS[key] for key in gpus}
    found = []
    with ahead_of_time(ARCH):
        for name, launch in calibration.launches().items():
            pass_ = Pass("calibration", name, "forward", {"N": calibration.COPY_BYTES // 4}, "fp32", "dense", [launch], [],
                         2 * calibration.COPY_BYTES, streamed=("src", "dst"))
            found += pass_records(pass_, [profile(launch)], chosen)
    return found
