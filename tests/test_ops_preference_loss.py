"""preference_loss: BT, focal, NormBT, margins, weights, centering; every backend against the reference."""
import functools

import pytest
import torch
from op_cases import BACKENDS, DEVICE, LOW_PRECISION, check_against_reference

from adajudge.ops import preference_loss
from adajudge.testing import check_op

EXAMPLES = 30


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_matches_reference(backend, dtype):
    """BT, focal, NormBT (μ batch mean, float, tensor), margins, weights, centering, every reduction."""
    results = check_op(functools.partial(preference_loss, backend=backend), "preference_loss", device=DEVICE,
                       dtypes=[dtype], examples=EXAMPLES)
    assert [(r.layout, r.cases) for r in results] == [("dense", EXAMPLES)]


def loss_case(spec, dtype):
    """`(inputs, differentiable, grad_outputs, options)` of `spec` in `dtype`."""
    pairs = spec["pairs"]
    gen = torch.Generator().manual_seed(spec["seed"])
    new = lambda *shape: torch.randn(*shape, generator=gen)
    inputs = {"chosen": (spec["scale"] * new(pairs)).to(dtype).to(DEVICE),
              "rejected": (spec["scale"] * new(pairs)).to(dtype).to(DEVICE)}
    differentiable = ["chosen", "rejected"]
    if spec["margin"]:
        inputs["margin"] = new(pairs).abs().to(dtype).to(DEVICE)
        differentiable.append("margin")
    if spec["weights"]:
        inputs["weights"] = torch.rand(pairs, generator=gen).to(dtype).to(DEVICE)
        differentiable.append("weights")
    options = {key: spec[key] for key in ("temperature", "gamma", "center_coef", "reduction")}
    if spec["repr_dim"]:
        inputs["chosen_repr"] = new(pairs, spec["repr_dim"]).to(dtype).to(DEVICE)
        inputs["rejected_repr"] = new(pairs, spec["repr_dim"]).to(dtype).to(DEVICE)
        if spec["norm_scale"] is not None:
            options["norm_scale"] = spec["norm_scale"]
    grad_shape = (pairs,) if options["reduction"] == "none" else ()
    return inputs, differentiable, [torch.randn(grad_shape, generator=gen).to(DEVICE)], options


# Found by hypothesis (test_matches_reference[torch.float16-triton], "d_chosen: non-finite values"): at seed 108
# pair 96's one-dimensional representations round to the same fp16 value, a duplicated pair at distance 0,
# which NormBT weighed μ/ε ≈ 10⁶ before the factor was capped (`NORMBT_MAX_FACTOR`): its summed gradient
# overflowed fp16 on the torch and triton paths.
DUPLICATED_PAIR = {"pairs": 100, "seed": 108, "scale": 1.0, "margin": False, "weights": False, "temperature": 1.0,
                   "gamma": 0.0, "center_coef": 0.0, "reduction": "sum", "repr_dim": 1, "norm_scale": None}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_the_duplicated_pair_hypothesis_found(backend, dtype):
    inputs, differentiable, grads, options = loss_case(DUPLICATED_PAIR, dtype)
    check_against_reference("preference_loss", inputs, differentiable, grads, backend, dtype, [torch.float32], **options)


def test_fused_torch_path_gradcheck_fp64():
    gen = torch.Generator().manual_seed(0)
    leaf = lambda *shape: torch.randn(*shape, dtype=torch.float64, generator=gen).requires_grad_()
    chosen, rejected, margin, weights = leaf(9), leaf(9), leaf(9), leaf(9)
    reprs = torch.randn(2, 9, 5, dtype=torch.float64, generator=gen)
    for reduction in ("mean", "sum", "none"):
        fn = lambda c, r, m, w: preference_loss(
            c, r, margin=m, weights=w, gamma=2.0, temperature=0.7, center_coef=0.1,
            chosen_repr=reprs[0], rejected_repr=reprs[1], reduction=reduction, backend="torch")
        assert torch.autograd.gradcheck(fn, (chosen, rejected, margin, weights))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_huge_rewards_give_finite_loss_and_gradients(backend, gamma):
    chosen = torch.tensor([1e4, -1e4, 3.0], device=DEVICE, requires_grad=True)
    rejected = torch.tensor([-1e4, 1e4, 3.0], device=DEVICE, requires_grad=True)
    loss = preference_loss(chosen, rejected, gamma=gamma, backend=backend)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all()
    assert loss.item() == pytest.approx((0.0 + 2e4 + torch.nn.functional.softplus(torch.tensor(0.0)).item() * 0.5**gamma) / 3,
                                        rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_normbt_batch_mean_scale_equals_passing_it(backend):
    gen = torch.Generator().manual_seed(5)
    chosen, rejected = torch.randn(40, generator=gen).to(DEVICE), torch.randn(40, generator=gen).to(DEVICE)
    reprs = torch.randn(2, 40, 16, generator=gen).to(DEVICE)
    mean_distance = (reprs[0] - reprs[1]).norm(dim=-1).mean()
    implicit = preference_loss(chosen, rejected, chosen_repr=reprs[0], rejected_repr=reprs[1], reduction="none", backend=backend)
    explicit = preference_loss(chosen, rejected, chosen_repr=reprs[0], rejected_repr=reprs[1], norm_scale=mean_distance,
                               reduction="none", backend=backend)
    torch.testing.assert_close(implicit, explicit)


@pytest.mark.parametrize("backend", BACKENDS)
def test_representations_get_no_gradient(backend):
    reprs = torch.randn(2, 4, 3, device=DEVICE, requires_grad=True)
    chosen = torch.randn(4, device=DEVICE, requires_grad=True)
    loss = preference_loss(chosen, torch.zeros(4, device=DEVICE), chosen_repr=reprs[0], rejected_repr=reprs[1], backend=backend)
    loss.backward()
    assert reprs.grad is None and chosen.grad is not None
