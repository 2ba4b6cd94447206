"""Random inputs for the op tests and a runner that returns every output and every input gradient.

Backends under test: `torch` (always) and `triton` (CUDA, or the CPU interpreter set up in conftest.py).
"""
import torch
from hypothesis import strategies as st

from adajudge import ops, reference
from adajudge.testing import assert_close

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
LOW_PRECISION = [torch.float32, torch.bfloat16, torch.float16]
BACKENDS = ["torch", "triton"]


def run_with_grads(fn, inputs: dict, differentiable: list, grad_outputs):
    """Call `fn(**inputs)`; return `(outputs, grads)` with grads of `differentiable` (None if unused)."""
    leaves = {k: (v.detach().requires_grad_() if k in differentiable else v) for k, v in inputs.items()}
    outputs = fn(**leaves)
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    grads = torch.autograd.grad([o for o, _ in pairs], [leaves[k] for k in differentiable], [g for _, g in pairs],
                                allow_unused=True)
    return [o.detach() for o in outputs], list(grads)


def check_against_reference(op_name, inputs, differentiable, grad_outputs, backend, dtype, output_dtypes, **options):
    """Compare `ops.<op_name>(backend=...)` with the reference in `dtype` and in fp64 (the suite's rule)."""
    op, ref = getattr(ops, op_name), getattr(reference, op_name)
    actual = run_with_grads(lambda **kw: op(**kw, **options, backend=backend), inputs, differentiable, grad_outputs)
    same_dtype = run_with_grads(lambda **kw: ref(**kw, **options), inputs, differentiable, grad_outputs)
    as64 = lambda x: x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
    expected = run_with_grads(
        lambda **kw: ref(**kw, **options),
        {k: as64(v) for k, v in inputs.items()}, differentiable, [g.double() for g in grad_outputs],
    )
    for i, (a, e, r, want) in enumerate(zip(actual[0], expected[0], same_dtype[0], output_dtypes)):
        assert_close(f"{op_name}[{backend}] output {i}", a, e, r, dtype=dtype, expected_dtype=want)
    for name, a, e, r in zip(differentiable, actual[1], expected[1], same_dtype[1]):
        want = None if a is None else inputs[name].dtype
        assert_close(f"{op_name}[{backend}] d_{name}", a, e, r, dtype=dtype, expected_dtype=want)


@st.composite
def pooling_masks(draw, batch, length):
    """attention/response masks [B, T]: per row a left- or right-padded prompt+response, or any 0/1 pattern."""
    attention = torch.zeros(batch, length, dtype=torch.long)
    response = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        if draw(st.booleans()):
            real = draw(st.integers(0, length))
            prompt = draw(st.integers(0, real))
            start = length - real if draw(st.booleans()) else 0  # left or right padding
            attention[b, start:start + real] = 1
            response[b, start + prompt:start + real] = 1
        else:
            bits = draw(st.lists(st.integers(0, 3), min_size=length, max_size=length))
            attention[b] = torch.tensor([int(x > 0) for x in bits])
            response[b] = torch.tensor([int(x > 1) for x in bits])
    return attention, response
