"""router_mix: every backend against the reference (forward, every gradient), and its contracts."""
import functools

import pytest
import torch
from op_cases import BACKENDS, DEVICE, LOW_PRECISION

from adajudge.ops import router_mix
from adajudge.testing import check_op

EXAMPLES = 25


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_matches_reference(backend, dtype):
    results = check_op(functools.partial(router_mix, backend=backend), "router_mix", device=DEVICE, dtypes=[dtype],
                       examples=EXAMPLES)
    assert [(r.layout, r.cases) for r in results] == [("dense", EXAMPLES)]


def test_fused_torch_path_gradcheck_fp64():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    scores = torch.randn(6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, s: router_mix(u, s, temperature=0.7, backend="torch"), (logits, scores))


@pytest.mark.parametrize("backend", BACKENDS)
def test_saturated_router_has_finite_gradients(backend):
    logits = torch.tensor([[200.0, -200.0, 0.0]], device=DEVICE, requires_grad=True)
    scores = torch.randn(1, 3, device=DEVICE, requires_grad=True)
    reward, probs, entropy = router_mix(logits, scores, backend=backend)
    (reward + probs.sum() + entropy).sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(scores.grad).all()
    assert entropy.item() == pytest.approx(0.0, abs=1e-6)
