"""The one tolerance rule of the test suite, for users who property-test the kernels too.

Rule (after flash-attention's tests): an implementation computed in dtype `d` is compared with the float64
reference on the *same* inputs. Its worst error may be at most twice the worst error of the plain PyTorch
reference computed in `d`, plus a floor of `RESOLUTION[d]` times the size of the expected values:

    max|actual − expected₆₄| ≤ 2·max|reference_d − expected₆₄| + RESOLUTION[d]·max(1, max|expected₆₄|)

The output dtype must match too. On failure the message names the tensor, the worst element, both values
and the bound, so a failing property test says where it broke.
"""
import torch

# Floor of the bound per dtype, at scale 1: one unit in the last place for fp16/bf16; for fp32 about 80 ulp,
# because gradients that are exactly zero in exact arithmetic come out of cancellations such as
# g_t = β_t(<h_t, dz_A> − <z_A, dz_A>) at |<h_t, dz_A>|·ulp (measured: 1.2e-6 at D = 17, T = 20).
RESOLUTION = {
    torch.float64: 1e-12,
    torch.float32: 1e-5,
    torch.float16: 1e-3,
    torch.bfloat16: 8e-3,
}


def tolerance_bound(expected: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> float:
    """The bound of the module docstring for values computed in `dtype`."""
    expected = expected.double()
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    reference_error = (reference.double() - expected).abs().max().item() if expected.numel() else 0.0
    return 2.0 * reference_error + RESOLUTION[dtype] * scale


def assert_close(name: str, actual, expected, reference, *, dtype: torch.dtype, expected_dtype=None):
    """Assert `actual` meets the suite's rule against the fp64 `expected`, given the same-dtype `reference`.

    `None` is only accepted where all three are `None` (no gradient anywhere); `expected_dtype`, when given,
    is asserted as `actual.dtype`.
    """
    if actual is None or expected is None or reference is None:
        if not (actual is None and expected is None and reference is None):
            raise AssertionError(f"{name}: gradient presence differs (actual {actual is not None}, "
                                 f"expected {expected is not None}, reference {reference is not None})")
        return
    if expected_dtype is not None and actual.dtype != expected_dtype:
        raise AssertionError(f"{name}: dtype {actual.dtype}, expected {expected_dtype}")
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not torch.isfinite(actual).all():
        raise AssertionError(f"{name}: non-finite values at {torch.nonzero(~torch.isfinite(actual))[:4].tolist()}")
    if actual.numel() == 0:
        return
    error = (actual.double() - expected.double()).abs()
    bound = tolerance_bound(expected, reference, dtype)
    worst = error.argmax()
    if error.flatten()[worst] > bound:
        index = tuple(int(i) for i in torch.unravel_index(worst, error.shape))
        raise AssertionError(
            f"{name}: max error {error.flatten()[worst].item():.3e} > bound {bound:.3e} at {index}: "
            f"actual {actual.flatten()[worst].item():.8g}, expected {expected.flatten()[worst].item():.8g}"
        )
