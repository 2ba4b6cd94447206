"""What every launcher shares: tile and split plans, the device guard, and the one `launch` call.

Every kernel of the library is launched through `launch(kernel, grid, ...)`, which

- checks the grid against CUDA's limits (axis 0 < 2³¹, axes 1 and 2 ≤ 65535) before the driver sees it:
  every launcher puts its unbounded dimension (rows × splits) on axis 0;
- goes through `torch.library.wrap_triton`, so the launchers can run inside `torch.library.triton_op`s
  that `torch.compile` traces into (see `kernels/README.md`);
- can be recorded (`record_launches`): with `execute=False` nothing runs, which is how the compile check
  builds exactly the kernels the launchers would launch, and how tests read a launch plan for shapes far
  too large to run.

`on_device(tensor)` makes `tensor`'s CUDA device current for the launch: Triton launches on the current
device and its current stream, and a model split across GPUs (`device_map="auto"`) calls the ops with
tensors on a device that is not the current one.
"""
if __name__ != "adajudge.kernels.launch":  # before any import: nothing here runs under another name
    raise ImportError(f"{__name__}: the repository's kernels/ folder is the package `adajudge.kernels` (a top-level "
                      "`kernels` is PyPI's kernel hub); install adajudge and import adajudge.kernels")

import contextlib
import dataclasses
import functools

import torch
import triton
from torch._subclasses.fake_tensor import FakeTensor
from torch.library import wrap_triton
from triton.runtime.interpreter import InterpretedFunction

# Bytes of one [BLOCK_T, D] token tile that should stay cache-resident between the two sweeps over D that
# the fused pooling kernels make per token block (the second sweep re-reads the tile from L1/L2, not DRAM).
TILE_BYTES = 128 << 10
# Elements of one [BLOCK_T, BLOCK_D] register tile, and the warps that share it (8 fp32 per thread).
TILE_ELEMENTS = 2048
POOL_WARPS = 8
# Register cap of those 8-warp programs (ptxas `maxnreg`): two programs per SM fit in the register file
# (2 · 256 threads · 128 = 64 Ki registers). Left to itself, ptxas gave the packed 16-bit backward 80 registers
# and spilled 2 values at sm_90; with the cap it takes 96 and spills nothing (compile check).
POOL_MAX_REGISTERS = 128
# Warps for the small [B, V] and [N] kernels.
SMALL_WARPS = 4
# Software-pipelining depth of every kernel's loops: 1 (none); deeper pipelines multiply the registers of
# the tiles in flight and spilled in the compile check.
NUM_STAGES = 1
# Programs per SM that a split plan aims for: two waves of the two 8-warp programs an SM holds at once under
# POOL_MAX_REGISTERS, so uneven rows still balance.
PROGRAMS_PER_SM = 4
# Programs the CPU interpreter runs when it stands in for a GPU (enough to exercise every split path).
INTERPRETER_PROGRAMS = 4
# Most token splits of one row. The combine kernel loads the splits' statistics as one [MAX_SPLITS] vector,
# and each split costs 2·3·D·4 bytes of fp32 partials (written, then read by the combine).
MAX_SPLITS = 128
# CUDA's grid limits: axis 0 up to 2³¹ − 1 blocks, axes 1 and 2 up to 65535.
GRID_LIMITS = (2**31 - 1, 65535, 65535)


@dataclasses.dataclass(frozen=True)
class Launch:
    """One kernel launch as a launcher issued it: what `record_launches` collects."""

    kernel: object
    grid: tuple[int, ...]
    arguments: dict
    num_warps: int
    num_stages: int
    maxnreg: int | None

    @property
    def name(self) -> str:
        return self.kernel.__name__ if hasattr(self.kernel, "__name__") else self.kernel.fn.__name__


_recording: list | None = None
_execute = True


@contextlib.contextmanager
def record_launches(*, execute: bool = True):
    """Collect every `launch` made inside the block into the yielded list of `Launch`es.

    With `execute=False` nothing is launched (outputs stay uninitialised): a dry run of the launchers, on
    any device, for reading launch plans and building the exact kernels they would run.
    """
    global _recording, _execute
    previous = _recording, _execute
    _recording, _execute = [], execute
    try:
        yield _recording
    finally:
        _recording, _execute = previous


def launch(
    kernel, grid: tuple[int, ...], *, num_warps: int, num_stages: int = NUM_STAGES, maxnreg: int | None = None, **arguments
) -> None:
    """Launch `kernel[grid](**arguments)`; raise `ValueError` for a grid CUDA would refuse.

    Keyword arguments only, as at every launch site of the library. `maxnreg` caps the registers per thread
    (None: ptxas decides). An empty grid (a zero-sized batch) launches nothing.
    """
    for axis, (size, limit) in enumerate(zip(grid, GRID_LIMITS)):
        if size > limit:
            raise ValueError(f"grid: expected axis {axis} <= {limit} (CUDA's limit), got {size} for {kernel}")
    if _recording is not None:
        _recording.append(Launch(kernel, tuple(grid), arguments, num_warps, num_stages, maxnreg))
        if not _execute:
            return
    if min(grid) == 0:
        return
    if isinstance(kernel, InterpretedFunction) and _hold_no_data(arguments):
        return  # the CPU interpreter cannot run on them; they carry shapes only, as in wrap_triton's fake kernel
    options = {"num_warps": num_warps, "num_stages": num_stages} | ({"maxnreg": maxnreg} if maxnreg else {})
    # `wrap_triton` lets torch.compile see the kernel; the CPU interpreter compiles nothing, and some torch
    # releases (2.11) refuse its interpreted kernels there.
    runner = kernel if isinstance(kernel, InterpretedFunction) else wrap_triton(kernel)
    runner[grid](**arguments, **options)


def _hold_no_data(arguments: dict) -> bool:
    """True when a tensor argument is fake or on the meta device: the launcher is being run for shapes only
    (fake-tensor propagation, `torch.library.opcheck`'s fake-tensor test, a meta-device forward)."""
    return any(isinstance(value, FakeTensor) or value.is_meta for value in arguments.values() if isinstance(value, torch.Tensor))


def on_device(tensor: torch.Tensor):
    """A context making `tensor`'s CUDA device current (its current stream is then the launch stream)."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


@functools.cache
def _multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


_assumed_multiprocessors: list[int] = []


@contextlib.contextmanager
def assume_multiprocessors(count: int):
    """Plan every launch in the block as for a CUDA GPU with `count` SMs, whatever device the tensors are on:
    how the static GPU model (`python -m bench.gpu_model`) reads a GPU's launch plan with no GPU."""
    _assumed_multiprocessors.append(count)
    try:
        yield
    finally:
        _assumed_multiprocessors.pop()


def target_programs(device: torch.device) -> int:
    """How many programs fill `device`: `PROGRAMS_PER_SM` per SM on CUDA (or on the GPU that
    `assume_multiprocessors` names); a few under the CPU interpreter."""
    if _assumed_multiprocessors:
        return PROGRAMS_PER_SM * _assumed_multiprocessors[-1]
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return PROGRAMS_PER_SM * _multiprocessors(index)
    return INTERPRETER_PROGRAMS


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """Block sizes of a token sweep and how each row's tokens are split across programs."""

    block_t: int
    block_d: int
    num_splits: int
    chunk_len: int


_forced: dict = {}


@contextlib.contextmanager
def force_tile_plan(*, block_t: int | None = None, block_d: int | None = None, num_splits: int | None = None):
    """Test-only: make every token sweep in the block use these sizes instead of the shape's heuristics,
    so small inputs still run several D chunks and several splits per row."""
    previous = dict(_forced)
    _forced.update({k: v for k, v in {"block_t": block_t, "block_d": block_d, "num_splits": num_splits}.items() if v})
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(previous)


def forced_tile(block_t: int, block_d: int) -> tuple[int, int]:
    """`(block_t, block_d)`, or the sizes `force_tile_plan` imposes."""
    return _forced.get("block_t", block_t), _forced.get("block_d", block_d)


def token_tile(dim: int, element_size: int) -> tuple[int, int]:
    """`(BLOCK_T, BLOCK_D)` for sweeping `[tokens, dim]` rows: BLOCK_T tokens, D in chunks of BLOCK_D."""
    fit = max(1, TILE_BYTES // (dim * element_size))
    block_t = min(max(1 << (fit.bit_length() - 1), 4), 16)  # largest power of two that fits, in [4, 16]
    return forced_tile(block_t, min(triton.next_power_of_2(dim), max(64, TILE_ELEMENTS // block_t)))


def token_splits(length: int, rows: int, block_t: int, device: torch.device, *, programs_per_row: int = 1) -> tuple[int, int]:
    """`(num_splits, chunk_len)`: split each row's `length` tokens so `rows · programs_per_row · num_splits`
    programs fill the device; a chunk holds a whole number of BLOCK_T blocks; at most `MAX_SPLITS`."""
    wanted = triton.cdiv(target_programs(device), max(1, rows * programs_per_row))
    splits = max(1, min(_forced.get("num_splits", wanted), MAX_SPLITS, triton.cdiv(length, block_t)))
    chunk = max(1, triton.cdiv(triton.cdiv(length, splits), block_t)) * block_t
    return max(1, triton.cdiv(length, chunk)), chunk


def plan_token_sweep(dim: int, element_size: int, length: int, rows: int, device: torch.device) -> TilePlan:
    """The `TilePlan` of a fused pooling sweep (one program per row split, all of D)."""
    block_t, block_d = token_tile(dim, element_size)
    num_splits, chunk_len = token_splits(length, rows, block_t, device)
    return TilePlan(block_t, block_d, num_splits, chunk_len)
