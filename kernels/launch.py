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
import inspect

import torch
import triton
from torch._subclasses.fake_tensor import FakeTensor
from torch.library import wrap_triton
from triton.runtime.interpreter import InterpretedFunction

# Warps for the small [B, V] and [N] kernels.
SMALL_WARPS = 4
# Software-pipelining depth of every kernel's loops: 1 (none). The pooling kernels issue their next block's
# loads themselves (register prefetch), which keeps the tile out of shared memory.
NUM_STAGES = 1
# Programs per SM that `target_programs` aims for (the small kernels: 4-warp programs).
PROGRAMS_PER_SM = 4
# SMs the CPU interpreter stands in for: a few programs, enough to exercise every split path.
INTERPRETER_MULTIPROCESSORS = 1
# CUDA's grid limits: axis 0 up to 2³¹ − 1 blocks, axes 1 and 2 up to 65535.
GRID_LIMITS = (2**31 - 1, 65535, 65535)
# (major, minor) of the installed Triton: launch plans that work around one version's ptxas read it.
TRITON_VERSION = tuple(int(part) for part in triton.__version__.split(".")[:2])


@dataclasses.dataclass(frozen=True)
class Launch:
    """One kernel launch as a launcher issued it: what `record_launches` collects."""

    kernel: object
    grid: tuple[int, ...]
    arguments: dict
    num_warps: int
    num_stages: int

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


def launch(kernel, grid: tuple[int, ...], *, num_warps: int, num_stages: int = NUM_STAGES, **arguments) -> None:
    """Launch `kernel[grid](**arguments)`; raise `ValueError` for a grid CUDA would refuse.

    Keyword arguments only, as at every launch site of the library. The only build options are `num_warps`
    and `num_stages`, the ones `torch.compile`'s Inductor keeps when it launches a user kernel (it drops
    `maxnreg`), so a compiled graph runs the very builds the compile check makes: no kernel relies on a
    register cap (the plans keep every build at or under 255 registers, at most two programs per SM).
    An empty grid (a zero-sized batch) launches nothing.
    """
    for axis, (size, limit) in enumerate(zip(grid, GRID_LIMITS)):
        if size > limit:
            raise ValueError(f"grid: expected axis {axis} <= {limit} (CUDA's limit), got {size} for {kernel}")
    unknown = set(arguments) - set(inspect.signature(kernel.fn).parameters)
    if unknown:  # Triton would take them as build options (maxnreg, num_ctas, ...), which Inductor drops
        raise TypeError(f"arguments: expected parameters of {kernel.fn.__name__}, got {sorted(unknown)}")
    if _recording is not None:
        _recording.append(Launch(kernel, tuple(grid), arguments, num_warps, num_stages))
        if not _execute:
            return
    if min(grid) == 0:
        return
    if isinstance(kernel, InterpretedFunction) and _hold_no_data(arguments):
        return  # the CPU interpreter cannot run on them; they carry shapes only, as in wrap_triton's fake kernel
    options = {"num_warps": num_warps, "num_stages": num_stages}
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


def multiprocessors(device: torch.device) -> int:
    """SMs of `device` (or of the GPU that `assume_multiprocessors` names); INTERPRETER_MULTIPROCESSORS under
    the CPU interpreter."""
    if _assumed_multiprocessors:
        return _assumed_multiprocessors[-1]
    if device.type == "cuda":
        return _multiprocessors(device.index if device.index is not None else torch.cuda.current_device())
    return INTERPRETER_MULTIPROCESSORS


def target_programs(device: torch.device) -> int:
    """How many 4-warp programs fill `device`: `PROGRAMS_PER_SM` per SM."""
    return PROGRAMS_PER_SM * multiprocessors(device)


_forced: dict = {}


@contextlib.contextmanager
def force_tile_plan(*, block_t: int | None = None, block_d: int | None = None, num_splits: int | None = None):
    """Test-only: make every pooling launch in the block use these sizes instead of the shape's heuristics, so
    small inputs still run several splits per row (`num_splits`) or several D tiles (a `block_d` below D,
    which the fused kernels cannot hold: the D-tiled kernels run then)."""
    previous = dict(_forced)
    _forced.update({k: v for k, v in {"block_t": block_t, "block_d": block_d, "num_splits": num_splits}.items() if v})
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(previous)


def forced(name: str, default: int) -> int:
    """`default`, or the size `force_tile_plan` imposes for `name`."""
    return _forced.get(name, default)
