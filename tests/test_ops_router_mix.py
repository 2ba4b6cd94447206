"""router_mix: every backend against the reference (forward, every gradient), and its contracts."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_cases import BACKENDS, DEVICE, LOW_PRECISION, check_against_reference

from adajudge.ops import router_mix


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 150), views=st.integers(1, 5), temperature=st.floats(0.1, 5.0),
       scale=st.sampled_from([1.0, 30.0]), seed=st.integers(0, 2**16))
def test_matches_reference(backend, dtype, batch, views, temperature, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        "router_logits": (scale * torch.randn(batch, views, generator=gen)).to(dtype).to(DEVICE),
        "view_scores": torch.randn(batch, views, generator=gen).to(dtype).to(DEVICE),
    }
    grads = [torch.randn(batch, generator=gen).to(DEVICE), torch.randn(batch, views, generator=gen).to(DEVICE),
             torch.randn(batch, generator=gen).to(DEVICE)]
    check_against_reference("router_mix", inputs, ["router_logits", "view_scores"], grads, backend, dtype,
                            [torch.float32] * 3, temperature=temperature)


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
