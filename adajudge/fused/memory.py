"""One large CPU allocation with transparent-huge-page advice: the gradient of `hidden`.

A fresh `[B, T, D]` buffer on CPU is mapped 4 KiB page by page on first write; at 64 MiB that is 16k page
faults, which dominated the fused backward (bench/RESULTS.md, "CPU-only choices": about 4× on the
development machine). PyTorch gives that advice to every allocation under `THP_MEM_ALLOC_ENABLE=1`; here it
is given to this one buffer only, on Linux, where the kernel's THP mode is `madvise` or `always`. Elsewhere,
and for small or non-CPU tensors, this is `torch.empty`.
"""
import ctypes
import sys

import torch

_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14
_MIN_BYTES = 8 << 20


def _load_madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


_madvise = _load_madvise()


def empty_huge_paged(shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised contiguous tensor; large CPU ones start on a 2 MiB boundary with MADV_HUGEPAGE."""
    numel = 1
    for size in shape:
        numel *= size
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if _madvise is None or device.type != "cpu" or nbytes < _MIN_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    raw = torch.empty(nbytes + _HUGE_PAGE, dtype=torch.uint8)
    offset = -raw.data_ptr() % _HUGE_PAGE
    _madvise(raw.data_ptr() + offset, nbytes - nbytes % _HUGE_PAGE, _MADV_HUGEPAGE)  # advice only: errors are harmless
    return raw[offset:offset + nbytes].view(dtype).view(shape)
