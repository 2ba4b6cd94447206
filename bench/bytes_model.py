"""The fewest bytes each op must move between memory and the chip: the floor behind every GB/s figure.

Effective bandwidth = `bytes_moved(case, pass) / median time`, the Triton tutorials' convention: an
implementation that reads an input twice still gets credit for one read, so the figure is comparable
across implementations and against the machine's copy bandwidth. `full` is `forward + backward`: the two
run as separate launches, and the backward cannot start before the forward has finished.

Per op, `B` rows, `T` tokens, `D` hidden size, `V` views (3), `N` router rows or loss pairs, `e` the
element size of the input dtype, masks in their own dtype (`m` bytes), statistics and losses fp32 (4 bytes):

- multiview_pool (docs/design.md §3). forward reads `hidden` once and both masks, `w_a`, `b_a`, writes the
  `[B, 4, D]` views: `BTDe + 2BTm + (D+1)e + 4BDe`. backward reads `hidden` once, both masks, `w_a`,
  `b_a` and the upstream `[B, 4, D]` gradient, writes `dH` once and `dw_a`, `db_a`:
  `2BTDe + 2BTm + 2(D+1)e + 4BDe`.
- router_mix (§4), `N` rows. forward reads `u`, `s` (`2NVe`), writes reward, probs, entropy
  (`4(2N + NV)`). backward reads `u`, `s` and the three upstream gradients, writes `du`, `ds`:
  `2NVe + 4(2N + NV) + 2NVe`.
- preference_loss (§6). forward reads chosen and rejected (`2Ne`), writes the fp32 scalar; NormBT also
  reads both `[N, D]` representations once and writes the detached per-pair factor (`2NDe + 4N`) that the
  backward reads instead of the representations. backward reads chosen, rejected, the scalar upstream
  gradient (and the factor), writes `dc`, `dr`: `2Ne + 4 (+ 4N) + 2Ne`.
- adajudge_head: no floor. Its refinement blocks (attention and MLPs) are compute-bound, so bytes per
  second says nothing about them; the head is reported in time and memory only.
"""
from __future__ import annotations

import torch

PASSES = ("forward", "backward", "full")
FP32_BYTES = 4


def _multiview_pool(shape: dict, e: int, m: int) -> tuple[int, int]:
    b, t, d = shape["B"], shape["T"], shape["D"]
    hidden, masks, params, views = b * t * d * e, 2 * b * t * m, (d + 1) * e, 4 * b * d * e
    forward = hidden + masks + params + views
    backward = 2 * hidden + masks + 2 * params + views
    return forward, backward


def _router_mix(shape: dict, e: int) -> tuple[int, int]:
    n, v = shape["N"], shape["V"]
    inputs, outputs = 2 * n * v * e, FP32_BYTES * (2 * n + n * v)
    return inputs + outputs, inputs + outputs + inputs


def _preference_loss(shape: dict, e: int, variant: str) -> tuple[int, int]:
    n = shape["N"]
    rewards, scalar = 2 * n * e, FP32_BYTES
    forward, backward = rewards + scalar, rewards + scalar + rewards
    if variant == "normbt":
        factor = FP32_BYTES * n
        forward += 2 * n * shape["D"] * e + factor
        backward += factor
    return forward, backward


def bytes_moved(op: str, variant: str, shape: dict, dtype: torch.dtype, mask_dtype: torch.dtype, pass_: str) -> int | None:
    """The floor in bytes for one call of `op` in `pass_` ("forward", "backward" or "full"); `None` for the
    compute-bound head, which has no meaningful floor."""
    if pass_ not in PASSES:
        raise ValueError(f"pass_: expected one of {PASSES}, got {pass_!r}")
    e = torch.empty((), dtype=dtype).element_size()
    if op == "multiview_pool":
        forward, backward = _multiview_pool(shape, e, torch.empty((), dtype=mask_dtype).element_size())
    elif op == "router_mix":
        forward, backward = _router_mix(shape, e)
    elif op == "preference_loss":
        forward, backward = _preference_loss(shape, e, variant)
    elif op == "adajudge_head":
        return None
    else:
        raise ValueError(f"op: expected multiview_pool, router_mix, preference_loss or adajudge_head, got {op!r}")
    return {"forward": forward, "backward": backward, "full": forward + backward}[pass_]
