"""Fused-vs-reference speed of `AdaJudgeHead` forward+backward, timed interleaved on the same batch."""
import statistics
import time

import torch

from adajudge.nn import AdaJudgeHead


def head_speed(hidden_size: int, options: dict, batch: dict, *, repeats: int = 5, warmup: int = 1) -> dict:
    """Median seconds of forward + backward (of `reward.sum()`) of `AdaJudgeHead(hidden_size, **options)` built
    with backend "auto" and with backend "reference" (same weights), alternating the two each repeat so
    that a change in machine load hits both alike.

    Args:
        options: the head's other constructor options (no `backend`).
        batch: `hidden [B, T, D]`, `attention_mask [B, T]`, `response_mask [B, T]`, all on one device.

    Returns:
        `{"auto": s, "reference": s, "speedup": reference / auto, "device": "CPU" or the GPU name,
        "shape": [B, T, D]}`.
    """
    if repeats < 1:
        raise ValueError(f"repeats: expected a positive int, got {repeats!r}")
    if "backend" in options:
        raise ValueError(f"options: the backend is what is compared, got backend={options['backend']!r}")
    hidden = batch["hidden"].float()
    device = hidden.device
    heads = {"auto": AdaJudgeHead(hidden_size, backend="auto", **options).to(device)}
    heads["reference"] = AdaJudgeHead(hidden_size, backend="reference", **options).to(device)
    heads["reference"].load_state_dict(heads["auto"].state_dict())
    times = {backend: [] for backend in heads}
    for index in range(warmup + repeats):
        for backend, head in heads.items():
            head.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            head(hidden, batch["attention_mask"], batch["response_mask"]).reward.sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if index >= warmup:
                times[backend].append(time.perf_counter() - started)
    auto, reference = statistics.median(times["auto"]), statistics.median(times["reference"])
    return {
        "auto": auto,
        "reference": reference,
        "speedup": reference / auto,
        "device": "CPU" if device.type == "cpu" else torch.cuda.get_device_name(device),
        "shape": list(hidden.shape),
    }
