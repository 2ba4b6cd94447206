"""The one loss interface: every adajudge loss takes `pair_loss(chosen, rejected)` on `HeadOutput`s, and it
is the loss's own `forward` on the fields that loss reads."""
import pytest
import torch
from torch import nn

from adajudge.nn import AdaJudgeLoss, BTLoss, FocalBTLoss, HeadOutput, NormBTLoss, PairLoss
from adajudge.training.losses import LOSSES, build_loss

N, V, D = 5, 3, 4


def sides(seed=0):
    """Two `HeadOutput`s of `N` rows (chosen, rejected) with random fields, plus `margin` and `weights`."""
    generator = torch.Generator().manual_seed(seed)

    def side():
        probs = torch.softmax(torch.randn(N, V, generator=generator), -1)
        return HeadOutput(
            reward=torch.randn(N, generator=generator).requires_grad_(),
            view_scores=torch.randn(N, V, generator=generator),
            router_probs=probs,
            router_entropy=(-(probs * probs.log()).sum(-1)).requires_grad_(),
            representation=torch.randn(N, D, generator=generator).requires_grad_(),
        )

    return side(), side(), torch.randn(N, generator=generator), torch.rand(N, generator=generator) + 0.5


FORWARDS = {
    BTLoss: lambda loss, c, r, **kw: loss(c.reward, r.reward, **kw),
    FocalBTLoss: lambda loss, c, r, **kw: loss(c.reward, r.reward, **kw),
    NormBTLoss: lambda loss, c, r, **kw: loss(
        c.reward, r.reward, chosen_repr=c.representation, rejected_repr=r.representation, **kw
    ),
    AdaJudgeLoss: lambda loss, c, r, **kw: loss(c, r, **kw),
}


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("with_margin_and_weights", [False, True])
def test_pair_loss_is_the_forward_on_the_fields_the_loss_reads(kind, with_margin_and_weights):
    chosen, rejected, margin, weights = sides()
    options = {"margin": margin, "weights": weights} if with_margin_and_weights else {}
    via_pairs, via_forward = build_loss(kind, backend="torch"), build_loss(kind, backend="torch")
    assert isinstance(via_pairs, PairLoss)
    got = via_pairs.pair_loss(chosen, rejected, **options)
    expected = FORWARDS[type(via_forward)](via_forward, chosen, rejected, **options)
    assert got.dtype == torch.float32 and got.shape == ()
    assert torch.equal(got, expected)
    leaves = [chosen.reward, rejected.reward, chosen.router_entropy, rejected.router_entropy]
    got_grads = torch.autograd.grad(got, leaves, allow_unused=True)
    expected_grads = torch.autograd.grad(expected, leaves, allow_unused=True)
    for got_grad, expected_grad in zip(got_grads, expected_grads):
        assert (got_grad is None) == (expected_grad is None)
        assert got_grad is None or torch.equal(got_grad, expected_grad)
    assert via_pairs.state_dict().keys() == via_forward.state_dict().keys()
    for name, tensor in via_pairs.state_dict().items():  # NormBT's EMA moved the same way
        assert torch.equal(tensor, via_forward.state_dict()[name]), name


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_pair_loss_rejects_what_is_not_a_head_output(kind):
    chosen, rejected, *_ = sides()
    loss = build_loss(kind, backend="torch")
    with pytest.raises(TypeError, match=r"chosen: expected an adajudge.nn.HeadOutput, got Tensor"):
        loss.pair_loss(chosen.reward, rejected)
    with pytest.raises(TypeError, match=r"rejected: expected an adajudge.nn.HeadOutput, got dict"):
        loss.pair_loss(chosen, {"reward": rejected.reward})


def test_a_new_loss_implements_pair_loss():
    class Incomplete(PairLoss):
        pass

    with pytest.raises(TypeError, match="_pair_loss"):
        Incomplete()

    class MarginLoss(PairLoss):
        def _pair_loss(self, chosen, rejected, *, margin, weights):
            return (1 - (chosen.reward - rejected.reward)).clamp(min=0).mean()

    chosen, rejected, *_ = sides()
    expected = (1 - (chosen.reward - rejected.reward)).clamp(min=0).mean()
    assert torch.equal(MarginLoss().pair_loss(chosen, rejected), expected)


def test_training_takes_only_pair_losses():
    pytest.importorskip("trl", reason="needs TRL (the train extra); the floor environment, like the GPU machine, has none")
    from adajudge.training.trainer import AdaJudgeRewardTrainer

    with pytest.raises(TypeError, match=r"loss: expected a loss name or an adajudge.nn.PairLoss, got MSELoss"):
        AdaJudgeRewardTrainer(model=None, loss=nn.MSELoss())
