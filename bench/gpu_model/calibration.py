"""The model's anchor: Triton copy kernels whose speed is known.

A streaming copy with 128-bit accesses and enough work in flight runs at the measured copy bandwidth (that
is what the copy bandwidth is), so the model must predict close to 100 % of it. A deliberately bad copy
(one warp per program, one 32-bit element per thread) keeps 32 programs × 128 bytes = 4 KB in flight per
SM, a fifth of what Little's law asks of an H100, and must come out several times slower.

Both copy 1 GiB of fp32 (much more than L2), one read and one write of every byte; their floor is that
read and write at the copy bandwidth.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from adajudge.kernels.launch import Launch

COPY_BYTES = 1 << 30
CASES = {  # name: (BLOCK elements per program, warps, what it shows)
    "copy_128bit_4warps": (1024, 4, "streaming copy: 16-byte accesses, 2 per thread, 16 programs per SM"),
    "copy_32bit_1warp": (32, 1, "bad copy: 4-byte accesses, 1 warp per program, 4 KB in flight per SM"),
}


@triton.jit
def copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst + offs, tl.load(src + offs, mask=mask), mask=mask)


def launches() -> dict[str, Launch]:
    """One recorded launch per calibration case (nothing runs; the buffers are never touched)."""
    elements = COPY_BYTES // 4
    src, dst = torch.empty(elements), torch.empty(elements)
    return {name: Launch(copy_kernel, (triton.cdiv(elements, block),), {"src": src, "dst": dst, "n": elements, "BLOCK": block},
                         warps, 1, None)
            for name, (block, warps, _) in CASES.items()}
