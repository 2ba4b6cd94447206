"""The op tests' device and backends, and `check_against_reference` for hand-made inputs: both on the testing
kit (`adajudge.testing`), which draws the property tests' inputs and holds the comparison.

Backends under test: `torch` (always) and `triton` (CUDA, or the CPU interpreter set up in conftest.py).
`run_with_grads` and `pooling_masks` are the kit's, re-exported for test files that import them from here.
"""
import functools

import torch

from adajudge import ops
from adajudge.testing import OP_SPECS, Case, check_case, run_with_grads
from adajudge.testing.strategies import pooling_masks

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
LOW_PRECISION = [torch.float32, torch.bfloat16, torch.float16]
BACKENDS = ["torch", "triton"]

__all__ = ["BACKENDS", "DEVICE", "LOW_PRECISION", "check_against_reference", "pooling_masks", "run_with_grads"]


def check_against_reference(op_name, inputs, differentiable, grad_outputs, backend, dtype, output_dtypes, **options):
    """Compare `ops.<op_name>(backend=...)` on these inputs with the reference in `dtype` and in fp64 (the
    kit's `check_case`: every output, with `output_dtypes`, and every gradient of `differentiable`)."""
    spec = OP_SPECS[op_name]
    assert list(output_dtypes) == [spec.output_dtype(dtype)] * len(spec.outputs), (output_dtypes, spec.output_dtype(dtype))
    layout = "packed" if options.get("cu_seqlens") is not None else spec.layouts[0]
    case = Case(op_name, dtype, layout, {**inputs, **options}, tuple(differentiable), tuple(grad_outputs))
    check_case(functools.partial(getattr(ops, op_name), backend=backend), case)
