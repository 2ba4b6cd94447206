"""Which sizes each preset runs, per device, and how long each measurement lasts.

A sweep varies one size (`T`, `D` or `N`) with the others fixed; every point is one case. Shapes keep the
ops' own letters: `B` rows, `T` tokens, `D` hidden size, `N` pairs (router rows or loss pairs), `V` views.

- `tiny`: seconds; for the harness's own test, numbers meaningless.
- `quick`: minutes on a 2-core CPU (compile time included; the head is not compiled there); a first
  look on a GPU.
- `full`: the sizes a reward model sees (D from 576 to 8192, T up to 8192 on a GPU).
- `pooling`: the one `multiview_pool` case the README's headline speed-up is quoted at (B = 8, T = 1024,
  D = 2048), run as `python -m bench --preset pooling --ops multiview_pool --passes full`.
"""
from __future__ import annotations

from dataclasses import dataclass

PRESETS = ("tiny", "quick", "full", "pooling")
VIEWS = 3


@dataclass(frozen=True)
class Budget:
    """How long each implementation is measured per case and pass.

    CPU: `rounds` interleaved samples, each at least `min_sample_s` of back-to-back calls.
    CUDA: `rounds` interleaved `do_bench` calls of `rep_ms` each.
    `static_sizes`: how many of the run's hidden sizes the Triton compile check builds (`None`: all; it
    costs about a minute per size on a busy 2-core CPU, cached by Triton afterwards).
    """

    rounds: int
    min_sample_s: float
    rep_ms: int
    copy_bytes: int
    static_sizes: int | None


BUDGETS = {
    ("tiny", "cpu"): Budget(rounds=3, min_sample_s=0.0005, rep_ms=5, copy_bytes=16 << 20, static_sizes=1),
    ("quick", "cpu"): Budget(rounds=9, min_sample_s=0.01, rep_ms=20, copy_bytes=256 << 20, static_sizes=1),
    ("full", "cpu"): Budget(rounds=15, min_sample_s=0.05, rep_ms=100, copy_bytes=512 << 20, static_sizes=None),
    ("pooling", "cpu"): Budget(rounds=11, min_sample_s=0.0, rep_ms=100, copy_bytes=256 << 20, static_sizes=1),
    ("pooling", "cuda"): Budget(rounds=10, min_sample_s=0.0, rep_ms=100, copy_bytes=2 << 30, static_sizes=1),
    ("tiny", "cuda"): Budget(rounds=3, min_sample_s=0.0005, rep_ms=5, copy_bytes=64 << 20, static_sizes=1),
    ("quick", "cuda"): Budget(rounds=5, min_sample_s=0.01, rep_ms=20, copy_bytes=1 << 30, static_sizes=None),
    ("full", "cuda"): Budget(rounds=10, min_sample_s=0.05, rep_ms=100, copy_bytes=2 << 30, static_sizes=None),
}

# (op, impl) pairs a preset leaves out, and why; recorded in results.json and printed, never silent.
_HEAD_COMPILE = "Inductor takes minutes to compile the head's refinement blocks on a 2-core CPU; --preset full runs it"
OMITTED = {
    ("tiny", "cpu"): {("adajudge_head", "compile"): _HEAD_COMPILE},
    ("quick", "cpu"): {("adajudge_head", "compile"): _HEAD_COMPILE},
}


def _points(op: str, variant: str, sweep: str, fixed: dict, key: str, values) -> list[tuple]:
    return [(op, variant, sweep, {**fixed, key: value}) for value in values]


POOLING_CLAIM = _points("multiview_pool", "", "T", {"B": 8, "D": 2048}, "T", (1024,))


def _cpu(preset: str) -> list[tuple]:
    if preset == "pooling":
        return POOLING_CLAIM
    if preset == "tiny":
        return [
            *_points("multiview_pool", "", "T", {"B": 2, "D": 32}, "T", (16, 64)),
            *_points("router_mix", "", "N", {"V": VIEWS}, "N", (64,)),
            *_points("preference_loss", "focal", "N", {}, "N", (64,)),
            *_points("preference_loss", "normbt", "N", {"D": 16}, "N", (64,)),
            *_points("adajudge_head", "", "T", {"B": 2, "D": 32}, "T", (16,)),
        ]
    if preset == "quick":
        return [
            *_points("multiview_pool", "", "T", {"B": 4, "D": 256}, "T", (128, 1024)),
            *_points("multiview_pool", "", "D", {"B": 4, "T": 256}, "D", (1024,)),
            *_points("router_mix", "", "N", {"V": VIEWS}, "N", (256, 65536)),
            *_points("preference_loss", "focal", "N", {}, "N", (256, 65536)),
            *_points("preference_loss", "normbt", "N", {"D": 256}, "N", (4096,)),
            *_points("adajudge_head", "", "T", {"B": 2, "D": 64}, "T", (64,)),
        ]
    return [
        *_points("multiview_pool", "", "T", {"B": 8, "D": 1024}, "T", (256, 1024, 4096)),
        *_points("multiview_pool", "", "D", {"B": 8, "T": 512}, "D", (576, 2048, 4096)),
        *_points("router_mix", "", "N", {"V": VIEWS}, "N", (1024, 65536, 1 << 20)),
        *_points("preference_loss", "focal", "N", {}, "N", (1024, 65536, 1 << 20)),
        *_points("preference_loss", "normbt", "N", {"D": 1024}, "N", (1024, 16384)),
        *_points("adajudge_head", "", "T", {"B": 4, "D": 576}, "T", (128, 512)),
    ]


def _cuda(preset: str) -> list[tuple]:
    if preset in ("tiny", "pooling"):
        return _cpu(preset)
    if preset == "quick":
        return [
            *_points("multiview_pool", "", "T", {"B": 16, "D": 4096}, "T", (512, 2048)),
            *_points("multiview_pool", "", "D", {"B": 16, "T": 1024}, "D", (576, 3584)),
            *_points("router_mix", "", "N", {"V": VIEWS}, "N", (4096, 1 << 20)),
            *_points("preference_loss", "focal", "N", {}, "N", (4096, 1 << 20)),
            *_points("preference_loss", "normbt", "N", {"D": 4096}, "N", (4096, 65536)),
            *_points("adajudge_head", "", "T", {"B": 8, "D": 1024}, "T", (512,)),
        ]
    return [
        *_points("multiview_pool", "", "T", {"B": 16, "D": 4096}, "T", (512, 2048, 8192)),
        *_points("multiview_pool", "", "D", {"B": 16, "T": 2048}, "D", (576, 1536, 3584, 8192)),
        *_points("router_mix", "", "N", {"V": VIEWS}, "N", (4096, 262144, 1 << 22)),
        *_points("preference_loss", "focal", "N", {}, "N", (4096, 262144, 1 << 22)),
        *_points("preference_loss", "normbt", "N", {"D": 4096}, "N", (4096, 65536, 262144)),
        *_points("adajudge_head", "", "T", {"B": 8, "D": 2048}, "T", (512, 2048)),
    ]


def sweep_points(preset: str, device_type: str) -> list[tuple[str, str, str, dict]]:
    """`(op, variant, sweep, shape)` for every case of `preset` on a `device_type` ("cpu" or "cuda")."""
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"device_type: expected 'cpu' or 'cuda', got {device_type!r}")
    return _cpu(preset) if device_type == "cpu" else _cuda(preset)


def omitted(preset: str, device_type: str) -> dict[tuple[str, str], str]:
    """`{(op, impl): reason}` left out of `preset` on `device_type`."""
    return OMITTED.get((preset, device_type), {})


def budget(preset: str, device_type: str) -> Budget:
    if (preset, device_type) not in BUDGETS:
        raise ValueError(f"preset/device: expected one of {sorted(BUDGETS)}, got {(preset, device_type)!r}")
    return BUDGETS[(preset, device_type)]
