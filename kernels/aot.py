"""Ahead-of-time builds with no GPU (docs/design.md §10): the stand-in driver, the build of one recorded
launch, and the CUDA binary tools that ship in Triton's wheel.

Shared by the compile check (`python -m adajudge.kernels.compile_check`: registers, spills, Inductor's
view of the kernels) and the static performance model (`python -m bench.gpu_model`: the SASS of the
runtime variant read against a GPU's launch plan). A `Launch` recorded by `launch.record_launches` is
built by Triton's own `JITFunction.warmup` while `ahead_of_time(arch)` makes Triton target
`cuda:sm_<arch>`, so the build carries exactly the runtime's specialisations (16-byte alignment,
divisibility by 16, the constexprs, warps and stages the launcher chose).
"""
if __name__ != "adajudge.kernels.aot":  # before any import: nothing here runs under another name
    raise ImportError(f"{__name__}: the repository's kernels/ folder is the package `adajudge.kernels` (a top-level "
                      "`kernels` is PyPI's kernel hub); install adajudge and import adajudge.kernels")

import contextlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # pinned: fusion changes codegen and registers

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.runtime.driver import driver  # noqa: E402
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

CUDA_BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


class AheadOfTimeDriver:
    """What `JITFunction.warmup` asks of Triton's active driver, for a GPU that is not here."""

    def __init__(self, arch: int):
        self.arch = arch

    def get_current_target(self):
        return GPUTarget("cuda", self.arch, 32)

    def get_current_device(self):
        return self.arch  # one kernel cache per architecture

    def get_current_stream(self, device=None):
        return 0

    def get_active_torch_device(self):
        return torch.device("cpu")


@contextlib.contextmanager
def ahead_of_time(arch: int):
    """Make Triton build for `cuda:sm_<arch>` with no GPU, for the duration of the block."""
    previous = driver._active
    driver.set_active(AheadOfTimeDriver(arch))
    try:
        yield
    finally:
        driver._active = previous


def build(launch):
    """The `CompiledKernel` of a recorded `Launch` for the architecture of the enclosing `ahead_of_time`
    (Triton's cache serves a build it has made before). `asm` holds its "ttir", "ttgir", "ptx", "cubin".
    Raises `RuntimeError` for a kernel defined under Triton's CPU interpreter, which builds nothing."""
    if isinstance(launch.kernel, InterpretedFunction):
        raise RuntimeError(f"{launch.name}: defined under TRITON_INTERPRET=1, Triton's CPU interpreter, which builds no "
                           "cubin; run ahead-of-time builds (compile check, bench.gpu_model) without TRITON_INTERPRET")
    return launch.kernel.warmup(**launch.arguments, grid=launch.grid, num_warps=launch.num_warps,
                                num_stages=launch.num_stages)


def _tool(name: str, cubin: bytes, *flags: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        return subprocess.run([CUDA_BIN / name, *flags, file.name], capture_output=True, text=True, check=True).stdout


def sass(cubin: bytes) -> str:
    """The cubin's SASS with source line information (`nvdisasm -c -g -gi`): every instruction is preceded,
    where its line changes, by `//## File "...", line N [inlined at "...", line M ...]`."""
    return _tool("nvdisasm", cubin, "-c", "-g", "-gi")


def resource_usage(cubin: bytes, code: str | None = None) -> dict:
    """Registers, stack, static shared memory (bytes) and local-memory spill instructions (`LDL`/`STL`) of a
    cubin, read by cuobjdump; `code`: its SASS when already disassembled."""
    usage = _tool("cuobjdump", cubin, "-res-usage")
    code = code if code is not None else _tool("cuobjdump", cubin, "-sass")

    def field(name):
        return int(re.search(rf"{name}:(\d+)", usage).group(1))

    return {
        "registers": field("REG"),
        "stack_bytes": field("STACK"),
        "shared_bytes": field("SHARED"),
        "spills": len(re.findall(r"\b(?:LDL|STL)\b", code)),
    }
