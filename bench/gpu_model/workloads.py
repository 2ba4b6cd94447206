"""The launches each pass of each op makes at the GPU presets' shapes, as the launchers plan them for a GPU
with a given number of SMs, recorded without running anything.

A `Pass` is one op's forward or backward at one shape, dtype and layout: the Triton launches the launchers
made (`launch.record_launches(execute=False)` under `launch.assume_multiprocessors`), and the PyTorch ops
they ran around them (zero-fills of partial buffers, host-side sums and casts), recorded with a
`TorchDispatchMode` as `TorchOp`s with the bytes each reads and writes. Inputs are allocated with
`torch.empty` (never touched, so a 512 MiB `hidden` costs no memory) except the values control flow reads:
token kinds and `cu_seqlens`.

Shapes *(ours, from the issue's presets)*: pooling at B16 T2048 D4096, B1 T32768 D4096, B64 T512 D2048 and
B8 T1024 D8192, padded (`[B, T, D]`) and packed (`[B·T, D]`, B rows of T tokens each: the same bytes, so the
two layouts compare); router mix and the focal loss at N = 4096, 262144, 4194304 (`bench.sweeps`' GPU
preset); NormBT at D = 4096 and N = 32, 4096, 65536, 262144, with μ the batch mean (`normbt`, what
`ops.preference_loss` does without `norm_scale`) and with μ a tensor (`normbt_ema`, what `NormBTLoss`
passes). The loss backward is PyTorch elementwise code, not a Triton kernel, and is not modelled.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adajudge.kernels import multiview_pool, preference_loss, router_mix
from adajudge.kernels.launch import Launch, assume_multiprocessors, record_launches
from adajudge.kernels.pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS
from bench.bytes_model import bytes_moved

POOL_SHAPES = ({"B": 16, "T": 2048, "D": 4096}, {"B": 1, "T": 32768, "D": 4096},
               {"B": 64, "T": 512, "D": 2048}, {"B": 8, "T": 1024, "D": 8192})
ROUTER_SIZES = (4096, 262144, 4194304)
FOCAL_SIZES = (4096, 262144, 4194304)
NORMBT_SIZES = (32, 4096, 65536, 262144)
NORMBT_DIM = 4096
VIEWS = 3
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
DEFAULT_DTYPES = ("bf16", "fp32")
LAYOUTS = ("padded", "packed")
# The kernel arguments whose one read (forward) or read + write (backward) make each op's floor.
STREAMED = {"multiview_pool": ("hidden", "d_hidden"),
            "router_mix": ("router_logits", "view_scores", "reward", "probs", "entropy", "grad_reward", "grad_probs",
                           "grad_entropy", "d_logits", "d_scores"),
            "preference_loss": ("chosen", "rejected", "chosen_repr", "rejected_repr", "loss")}
_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)


@dataclasses.dataclass(frozen=True)
class TorchOp:
    """A PyTorch op a launcher ran (on a GPU, one CUDA kernel): its name and the bytes it moves."""

    name: str
    read_bytes: int
    write_bytes: int


@dataclasses.dataclass
class Pass:
    op: str
    variant: str  # "fused" / "two_phase" (pooling forward), "focal" / "normbt" / "normbt_ema" (loss), else ""
    pass_: str  # "forward" or "backward"
    shape: dict
    dtype: str
    layout: str  # "padded" / "packed" (pooling), "dense" otherwise
    launches: list[Launch]
    torch_ops: list[TorchOp]
    floor_bytes: int  # the streamed tensors read once (forward), read and written once (backward)
    default: bool = True  # the variant `backend="auto"` runs
    streamed: tuple[str, ...] = ()  # the kernel arguments the floor counts; STREAMED[op] when empty

    def __post_init__(self):
        self.streamed = self.streamed or STREAMED[self.op]

    @property
    def shape_label(self) -> str:
        return " ".join(f"{key}{value}" for key, value in self.shape.items())


def _floor(op: str, variant: str, shape: dict, dtype: torch.dtype, pass_: str) -> int:
    """The bench's bytes model (`bench.bytes_model`), so predicted and measured GB/s share one floor."""
    return bytes_moved(op, variant, shape, dtype, torch.int8, pass_)


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return 0


class _TorchOpRecorder(TorchDispatchMode):
    """Records the ATen ops run inside adajudge's launchers (entered again for their bodies, as
    `torch.library.triton_op` itself does for functionalization), with the bytes each moves."""

    def __init__(self):
        super().__init__()
        self.ops: list[TorchOp] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "adajudge":
            with self:
                return func.redispatch(_CPU, *args, **kwargs)
        out = func(*args, **kwargs)
        schema = func._schema
        name = func.overloadpacket.__name__
        aliased = [ret.alias_info for ret in schema.returns]
        if "empty" in name or (aliased and all(a is not None and not a.is_write for a in aliased)):
            return out  # allocation or view: no kernel, no bytes
        written = _nbytes(out)
        if name in ("zeros", "ones", "full", "fill", "fill_", "zero_", "zeros_like", "ones_like", "full_like"):
            read = 0
        else:
            mutated = [a for a, arg in zip(args, schema.arguments) if arg.alias_info is not None and arg.alias_info.is_write]
            read = _nbytes([a for a in args if isinstance(a, torch.Tensor)]) - _nbytes(mutated)
        if written or read:
            self.ops.append(TorchOp(name, read, written))
        return out


def _record(call) -> tuple[list[Launch], list[TorchOp], object]:
    recorder = _TorchOpRecorder()
    with record_launches(execute=False) as launches, recorder:
        result = call()
    return list(launches), recorder.ops, result


@dataclasses.dataclass
class _PoolInputs:
    hidden: torch.Tensor
    kinds: torch.Tensor
    cu_seqlens: torch.Tensor | None
    max_seqlen: int
    weight: torch.Tensor
    bias: torch.Tensor


def _pool_inputs(shape: dict, dtype: torch.dtype, layout: str) -> _PoolInputs:
    b, t, d = shape["B"], shape["T"], shape["D"]
    kinds = torch.full((b, t), 2, dtype=multiview_pool.KINDS_DTYPE)  # every token a response token; kinds steer no loop
    weight, bias = torch.empty(d, dtype=dtype), torch.empty((), dtype=dtype)
    if layout == "padded":
        return _PoolInputs(torch.empty(b, t, d, dtype=dtype), kinds, None, 0, weight, bias)
    cu_seqlens = torch.arange(0, b * t + 1, t, dtype=torch.int32)
    return _PoolInputs(torch.empty(b * t, d, dtype=dtype), kinds.reshape(-1), cu_seqlens, t, weight, bias)


def pooling_passes(shape: dict, dtype_name: str, layout: str) -> Iterator[Pass]:
    dtype = DTYPES[dtype_name]
    x = _pool_inputs(shape, dtype, layout)
    hidden_bytes = _nbytes(x.hidden)
    saved = None
    for variant in FORWARD_VARIANTS:
        previous = os.environ.get(FORWARD_VARIANT_ENV)
        os.environ[FORWARD_VARIANT_ENV] = variant
        try:
            launches, ops, outputs = _record(lambda: multiview_pool.multiview_pool_fwd(
                x.hidden, x.kinds, x.weight, x.bias, x.cu_seqlens, x.max_seqlen))
        finally:
            if previous is None:
                os.environ.pop(FORWARD_VARIANT_ENV)
            else:
                os.environ[FORWARD_VARIANT_ENV] = previous
        saved = saved or outputs
        yield Pass("multiview_pool", variant, "forward", shape, dtype_name, layout, launches, ops, hidden_bytes,
                   default=variant == FORWARD_VARIANTS[0])
    views, scores, z_attn, lse, counts, last_index = saved
    grad = torch.empty(views.shape, dtype=dtype)
    launches, ops, _ = _record(lambda: multiview_pool.multiview_pool_bwd(
        grad, x.hidden, x.kinds, scores, x.cu_seqlens, x.weight, z_attn, lse, counts, last_index, x.max_seqlen, True))
    yield Pass("multiview_pool", "", "backward", shape, dtype_name, layout, launches, ops, 2 * hidden_bytes)


def router_passes(rows: int, dtype_name: str) -> Iterator[Pass]:
    dtype = DTYPES[dtype_name]
    logits, scores = torch.empty(rows, VIEWS, dtype=dtype), torch.empty(rows, VIEWS, dtype=dtype)
    launches, ops, (reward, probs, entropy, log_probs) = _record(lambda: router_mix.router_mix_fwd(logits, scores, 1.0))
    shape = {"N": rows, "V": VIEWS}
    yield Pass("router_mix", "", "forward", shape, dtype_name, "dense", launches, ops,
               _floor("router_mix", "", shape, dtype, "forward"))
    grads = (torch.empty(rows), torch.empty(rows, VIEWS), torch.empty(rows))
    launches, ops, _ = _record(lambda: router_mix.router_mix_bwd(*grads, probs, log_probs, scores, 1.0))
    yield Pass("router_mix", "", "backward", shape, dtype_name, "dense", launches, ops,
               _floor("router_mix", "", shape, dtype, "backward"))


def loss_passes(variant: str, pairs: int, dtype_name: str, dim: int = NORMBT_DIM) -> Iterator[Pass]:
    dtype = DTYPES[dtype_name]
    chosen, rejected = torch.empty(pairs, dtype=dtype), torch.empty(pairs, dtype=dtype)
    reprs, scale, shape = (None, None), None, {"N": pairs}
    if variant != "focal":
        reprs = (torch.empty(pairs, dim, dtype=dtype), torch.empty(pairs, dim, dtype=dtype))
        scale = torch.ones(()) if variant == "normbt_ema" else None
        shape = {"N": pairs, "D": dim}
    launches, ops, _ = _record(lambda: preference_loss.preference_loss_fwd(
        chosen, rejected, None, None, *reprs, scale, None, 1.0, 2.0, 0.0, 1e-6))
    floor = _floor("preference_loss", "focal" if variant == "focal" else "normbt", shape, dtype, "forward")
    yield Pass("preference_loss", variant, "forward", shape, dtype_name, "dense", launches, ops, floor,
               default=variant != "normbt_ema")


def all_passes(multiprocessors: int, *, ops=("multiview_pool", "router_mix", "preference_loss"),
               dtypes=DEFAULT_DTYPES, pool_shapes=POOL_SHAPES, layouts=LAYOUTS) -> Iterator[Pass]:
    """Every pass of the model's table, planned for a GPU with `multiprocessors` SMs."""
    with assume_multiprocessors(multiprocessors):
        for dtype in dtypes:
            if "multiview_pool" in ops:
                for shape in pool_shapes:
                    for layout in layouts:
                        yield from pooling_passes(shape, dtype, layout)
            if "router_mix" in ops:
                for rows in ROUTER_SIZES:
                    yield from router_passes(rows, dtype)
            if "preference_loss" in ops:
                for pairs in FOCAL_SIZES:
                    yield from loss_passes("focal", pairs, dtype)
                for variant in ("normbt", "normbt_ema"):
                    for pairs in NORMBT_SIZES:
                        yield from loss_passes(variant, pairs, dtype)
