"""Preference loss modules (docs/design.md §6): BT, Focal-BT, NormBT with its EMA, and the AdaJudge objective."""
import math

import pytest
import torch
import torch.nn.functional as F

from adajudge.nn import AdaJudgeLoss, BTLoss, FocalBTLoss, HeadOutput, NormBTLoss
from adajudge.testing import assert_close

N, D = 6, 5


def pairs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    chosen, rejected, margin = (torch.randn(N, generator=generator) * 2 for _ in range(3))
    weights = torch.rand(N, generator=generator) + 0.5
    chosen_repr, rejected_repr = (torch.randn(N, D, generator=generator) for _ in range(2))
    return chosen.requires_grad_(), rejected.requires_grad_(), margin, weights, chosen_repr, rejected_repr


def focal_bt(chosen, rejected, margin=None, weights=None, temperature=1.0, gamma=0.0, center_coef=0.0, factor=None):
    """docs/design.md §6 written out in `chosen`'s dtype: `mean(w · f · (1 − σ(Δ))^γ · −log σ(Δ)) + center`."""
    dtype = chosen.dtype
    delta = (chosen - rejected - (0 if margin is None else margin.to(dtype))) / temperature
    loss = (1 - torch.sigmoid(delta)) ** gamma * -F.logsigmoid(delta)
    loss = loss * (1 if factor is None else factor.to(dtype)) * (1 if weights is None else weights.to(dtype))
    return loss.mean() + center_coef * ((chosen + rejected) ** 2).mean()


def check_loss(name, loss, leaves, formula):
    """The suite's tolerance rule (`adajudge.testing`): the fp32 `loss` and its gradients w.r.t. `leaves`
    against `formula(*leaves)` in float64, with `formula` in fp32 as the same-precision reference."""
    actual = torch.autograd.grad(loss, leaves, retain_graph=True)
    results = {}
    for dtype in (torch.float64, torch.float32):
        copies = [leaf.detach().to(dtype).requires_grad_() for leaf in leaves]
        value = formula(*copies)
        results[dtype] = (value, torch.autograd.grad(value, copies))
    (expected, expected_grads), (reference, reference_grads) = results[torch.float64], results[torch.float32]
    assert_close(name, loss, expected, reference, dtype=torch.float32, expected_dtype=torch.float32)
    for i, grad in enumerate(actual):
        assert_close(f"{name}: d/d input {i}", grad, expected_grads[i], reference_grads[i], dtype=torch.float32)


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_bt_loss_matches_formula_with_margin_weights_temperature_and_centering(backend):
    chosen, rejected, margin, weights, *_ = pairs()
    loss = BTLoss(temperature=0.5, center_coef=0.01, backend=backend)(chosen, rejected, margin=margin, weights=weights)
    assert loss.shape == ()
    check_loss(
        "bt", loss, (chosen, rejected), lambda c, r: focal_bt(c, r, margin, weights, temperature=0.5, center_coef=0.01)
    )
    check_loss("plain bt", BTLoss(backend=backend)(chosen, rejected), (chosen, rejected), focal_bt)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_bt_loss_matches_formula_and_differentiates_the_factor(gamma):
    chosen, rejected, margin, weights, *_ = pairs(1)
    loss = FocalBTLoss(gamma=gamma, backend="torch")(chosen, rejected, margin=margin, weights=weights)
    check_loss("focal", loss, (chosen, rejected), lambda c, r: focal_bt(c, r, margin, weights, gamma=gamma))
    assert FocalBTLoss().gamma == 2.0


def test_norm_bt_ema_lives_in_state_dict_and_follows_its_update_rule():
    module = NormBTLoss(momentum=0.9, backend="torch")
    assert set(module.state_dict()) == {"running_distance", "num_batches_tracked"}
    distances = []
    for seed in range(3):
        chosen, rejected, _, _, chosen_repr, rejected_repr = pairs(seed)
        module(chosen, rejected, chosen_repr=chosen_repr, rejected_repr=rejected_repr)
        distances.append((chosen_repr - rejected_repr).norm(dim=1).mean())
    expected = distances[0]  # the first batch sets it
    for distance in distances[1:]:
        expected = 0.9 * expected + 0.1 * distance
    torch.testing.assert_close(module.running_distance, expected, rtol=1e-6, atol=1e-6)
    assert module.num_batches_tracked == 3

    restored = NormBTLoss()
    restored.load_state_dict(module.state_dict())
    assert torch.equal(restored.running_distance, module.running_distance)


def test_norm_bt_loss_uses_the_updated_ema_as_mu():
    module = NormBTLoss(gamma=1.0, eps=1e-6, backend="torch")
    module.running_distance.fill_(3.0)
    module.num_batches_tracked.fill_(5)
    chosen, rejected, margin, weights, chosen_repr, rejected_repr = pairs(2)
    loss = module(chosen, rejected, chosen_repr=chosen_repr, rejected_repr=rejected_repr, margin=margin, weights=weights)
    distance = (chosen_repr - rejected_repr).norm(dim=1)
    factor = (0.9 * 3.0 + 0.1 * distance.mean()) / (distance + 1e-6)  # updated μ over each pair's distance
    check_loss("normbt", loss, (chosen, rejected), lambda c, r: focal_bt(c, r, margin, weights, gamma=1.0, factor=factor))


def test_norm_bt_eval_mode_leaves_the_ema_alone():
    chosen, rejected, _, _, chosen_repr, rejected_repr = pairs(3)
    distance = (chosen_repr - rejected_repr).norm(dim=1)
    fresh = NormBTLoss(backend="torch").eval()  # nothing tracked yet: μ is this batch's mean distance
    loss = fresh(chosen, rejected, chosen_repr=chosen_repr, rejected_repr=rejected_repr)
    check_loss("eval normbt", loss, (chosen, rejected), lambda c, r: focal_bt(c, r, factor=distance.mean() / (distance + 1e-6)))
    assert fresh.num_batches_tracked == 0 and fresh.running_distance == 0

    tracked = NormBTLoss(backend="torch").eval()
    tracked.running_distance.fill_(2.0)
    tracked.num_batches_tracked.fill_(1)
    loss = tracked(chosen, rejected, chosen_repr=chosen_repr, rejected_repr=rejected_repr)
    check_loss("eval normbt", loss, (chosen, rejected), lambda c, r: focal_bt(c, r, factor=2.0 / (distance + 1e-6)))
    assert tracked.running_distance == 2.0 and tracked.num_batches_tracked == 1


def head_output(entropy, views=3):
    """A `HeadOutput` with rewards `linspace(-1, 1)` and the given router entropies `[B]` (leaves)."""
    entropy.requires_grad_(True)
    batch = entropy.shape[0]
    reward = torch.linspace(-1, 1, batch, requires_grad=True)
    return HeadOutput(reward, reward[:, None].expand(batch, views), torch.full((batch, views), 1 / views), entropy,
                      torch.zeros(batch, D))


def adajudge_formula(gamma=2.0, coef=0.1, floor=0.5, margin=None, weights=None, temperature=1.0):
    """docs/design.md §6: focal BT `+ λ · mean over both sides of max(0, η − H)²`, as a function of the leaves."""

    def formula(chosen, rejected, chosen_entropy, rejected_entropy):
        below = (floor - torch.cat([chosen_entropy, rejected_entropy])).clamp(min=0)
        bt = focal_bt(chosen, rejected, margin, weights, temperature=temperature, gamma=gamma)
        return bt + coef * below.square().mean()

    return formula


def leaves(chosen: HeadOutput, rejected: HeadOutput):
    return chosen.reward, rejected.reward, chosen.router_entropy, rejected.router_entropy


def test_adajudge_loss_is_focal_bt_plus_entropy_floor():
    # entropies on both sides of the 0.5 floor: 4 of the 8 are penalised
    chosen = head_output(torch.tensor([0.1, 0.7, 0.45, 1.0], requires_grad=True))
    rejected = head_output(torch.tensor([0.0, 0.5, 0.2, 0.9], requires_grad=True))
    loss = AdaJudgeLoss(backend="torch")(chosen, rejected)
    check_loss("adajudge", loss, leaves(chosen, rejected), adajudge_formula())
    penalty = loss - FocalBTLoss(backend="torch")(chosen.reward, rejected.reward)
    torch.testing.assert_close(penalty, 0.1 * (0.4**2 + 0.05**2 + 0.5**2 + 0.3**2) / 8 * torch.ones(()))


def test_adajudge_loss_options_and_single_view_outputs():
    chosen = head_output(torch.tensor([0.2, 0.3], requires_grad=True))
    rejected = head_output(torch.tensor([0.0, 1.2], requires_grad=True))
    margin, weights = torch.tensor([0.5, -0.2]), torch.tensor([1.0, 2.0])
    loss = AdaJudgeLoss(gamma=1.0, entropy_coef=0.5, entropy_floor=1.0, temperature=2.0, backend="torch")(
        chosen, rejected, margin=margin, weights=weights
    )
    formula = adajudge_formula(gamma=1.0, coef=0.5, floor=1.0, margin=margin, weights=weights, temperature=2.0)
    check_loss("adajudge options", loss, leaves(chosen, rejected), formula)
    # One view (static heads): the most entropy it allows is log 1 = 0, so the floor adds nothing.
    chosen, rejected = head_output(torch.zeros(2), views=1), head_output(torch.zeros(2), views=1)
    static = AdaJudgeLoss(backend="torch")(chosen, rejected)
    check_loss("one view", static, leaves(chosen, rejected), adajudge_formula(floor=0.0))
    # Two views: a floor above log 2 is capped at log 2.
    chosen, rejected = head_output(torch.zeros(2), views=2), head_output(torch.zeros(2), views=2)
    two = AdaJudgeLoss(entropy_floor=5.0, entropy_coef=1.0, backend="torch")(chosen, rejected)
    check_loss("two views", two, leaves(chosen, rejected), adajudge_formula(coef=1.0, floor=math.log(2)))


def test_extreme_rewards_give_finite_loss_and_gradients():
    chosen = torch.tensor([1e4, -1e4, 0.0], requires_grad=True)
    rejected = torch.tensor([-1e4, 1e4, 0.0], requires_grad=True)
    for module in (BTLoss(backend="torch"), FocalBTLoss(backend="torch")):
        loss = module(chosen, rejected)
        assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in torch.autograd.grad(loss, (chosen, rejected)))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: BTLoss(temperature=0.0), ValueError, "temperature"),
        (lambda: BTLoss(center_coef=-1.0), ValueError, "center_coef"),
        (lambda: BTLoss(backend="cuda"), ValueError, "backend"),
        (lambda: FocalBTLoss(gamma=-0.5), ValueError, "gamma"),
        (lambda: FocalBTLoss(gamma="2"), TypeError, "gamma"),
        (lambda: NormBTLoss(momentum=1.0), ValueError, "momentum"),
        (lambda: NormBTLoss(eps=0.0), ValueError, "eps"),
        (lambda: AdaJudgeLoss(entropy_coef=-0.1), ValueError, "entropy_coef"),
        (lambda: AdaJudgeLoss(entropy_floor=float("nan")), ValueError, "entropy_floor"),
    ],
)
def test_bad_options_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_inputs_raise():
    chosen, rejected, margin, weights, chosen_repr, rejected_repr = pairs()
    with pytest.raises(ValueError, match="rejected"):
        BTLoss(backend="torch")(chosen, rejected[:-1])
    with pytest.raises(ValueError, match="rejected_repr"):
        NormBTLoss()(chosen, rejected, chosen_repr=chosen_repr, rejected_repr=rejected_repr[:, :-1])
    with pytest.raises(ValueError, match="chosen_repr"):
        NormBTLoss()(chosen, rejected, chosen_repr=chosen_repr[0], rejected_repr=rejected_repr[0])
    with pytest.raises(TypeError, match="chosen_repr"):
        NormBTLoss()(chosen, rejected, chosen_repr=chosen_repr.long(), rejected_repr=rejected_repr)
    module = NormBTLoss(backend="torch")
    with pytest.raises(ValueError, match="chosen_repr"):  # N of the representations differs from the rewards'
        module(chosen[:-1], rejected[:-1], chosen_repr=chosen_repr, rejected_repr=rejected_repr)
    assert module.num_batches_tracked == 0 and module.running_distance == 0
    with pytest.raises(TypeError, match="chosen"):
        AdaJudgeLoss()(chosen, rejected)
