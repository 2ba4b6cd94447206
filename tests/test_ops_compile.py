"""torch.compile(fullgraph=True) of pooling followed by a focal NormBT loss matches eager."""
import torch

from adajudge.ops import multiview_pool, preference_loss


def pooled_focal_normbt(hidden, attention_mask, response_mask, weight, bias, pairs):
    views = multiview_pool(hidden, attention_mask, response_mask, attn_weight=weight, attn_bias=bias)
    rewards = views.float().sum(-1) @ torch.tensor([0.3, -0.2, 0.5, 0.1])
    representation = views[:, 2].float()
    return preference_loss(rewards[:pairs], rewards[pairs:], gamma=2.0,
                           chosen_repr=representation[:pairs], rejected_repr=representation[pairs:])


def test_compiled_pool_and_focal_normbt_loss_match_eager():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(6, 12, 16, generator=gen)
    attention = torch.ones(6, 12, dtype=torch.long)
    attention[1, :4] = 0
    response = attention.clone()
    response[:, :5] = 0
    weight, bias = torch.randn(16, generator=gen), torch.tensor(0.1)
    results = []
    for fn in (pooled_focal_normbt, torch.compile(pooled_focal_normbt, fullgraph=True)):
        leaves = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
        loss = fn(leaves[0], attention, response, leaves[1], leaves[2], 3)
        results.append([loss, *torch.autograd.grad(loss, leaves)])
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
