"""Bad input raises a TypeError/ValueError naming the argument; backends never fall back silently."""
import pytest
import torch

from adajudge.ops import multiview_pool, preference_loss, router_mix

H = torch.randn(2, 5, 8)
MASK = torch.ones(2, 5, dtype=torch.long)
W = torch.randn(8)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"hidden": H[0]}, ValueError, "hidden"),
        ({"hidden": H.long()}, TypeError, "hidden"),
        ({"hidden": [1.0]}, TypeError, "hidden"),
        ({"attention_mask": MASK[:, :4]}, ValueError, "attention_mask"),
        ({"attention_mask": MASK.float()}, TypeError, "attention_mask"),
        ({"attention_mask": MASK * 2}, ValueError, "attention_mask"),
        ({"response_mask": MASK[:1]}, ValueError, "response_mask"),
        ({"response_mask": torch.ones(2, 5, dtype=torch.long), "attention_mask": torch.zeros(2, 5, dtype=torch.long)},
         ValueError, "subset"),
        ({"attn_weight": torch.randn(7)}, ValueError, "attn_weight"),
        ({"attn_bias": torch.randn(2)}, ValueError, "attn_bias"),
        ({"backend": "cuda"}, ValueError, "backend"),
        ({"cu_seqlens": torch.tensor([0, 5, 10], dtype=torch.int32)}, ValueError, "hidden"),
    ],
)
def test_multiview_pool_rejects(kwargs, error, words):
    args = {"hidden": H, "attention_mask": MASK, "response_mask": None, "attn_weight": W, **kwargs}
    with pytest.raises(error, match=words):
        multiview_pool(args.pop("hidden"), args.pop("attention_mask"), args.pop("response_mask"), **args)


def test_multiview_pool_rejects_bad_cu_seqlens():
    packed = torch.randn(10, 8)
    ones = torch.ones(10, dtype=torch.long)
    with pytest.raises(ValueError, match="cu_seqlens"):
        multiview_pool(packed, ones, attn_weight=W, cu_seqlens=torch.tensor([0, 6, 4, 10], dtype=torch.int32))
    with pytest.raises(ValueError, match="cu_seqlens"):
        multiview_pool(packed, ones, attn_weight=W, cu_seqlens=torch.tensor([0, 6, 9], dtype=torch.int32))
    with pytest.raises(TypeError, match="cu_seqlens"):
        multiview_pool(packed, ones, attn_weight=W, cu_seqlens=torch.tensor([0.0, 10.0]))


def test_triton_backend_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="CUDA"):
        multiview_pool(H, MASK, attn_weight=W, backend="triton")


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"router_logits": torch.randn(3)}, ValueError, "router_logits"),
        ({"view_scores": torch.randn(3, 2)}, ValueError, "view_scores"),
        ({"view_scores": torch.ones(3, 3, dtype=torch.long)}, TypeError, "view_scores"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": "1"}, TypeError, "temperature"),
        ({"backend": None}, ValueError, "backend"),
    ],
)
def test_router_mix_rejects(kwargs, error, words):
    args = {"router_logits": torch.randn(3, 3), "view_scores": torch.randn(3, 3), **kwargs}
    with pytest.raises(error, match=words):
        router_mix(args.pop("router_logits"), args.pop("view_scores"), **args)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"chosen": torch.randn(4, 1)}, ValueError, "chosen"),
        ({"rejected": torch.randn(5)}, ValueError, "rejected"),
        ({"chosen": torch.randn(0), "rejected": torch.randn(0)}, ValueError, "at least one pair"),
        ({"margin": torch.randn(3)}, ValueError, "margin"),
        ({"weights": torch.ones(4, dtype=torch.long)}, TypeError, "weights"),
        ({"chosen_repr": torch.randn(4, 3)}, ValueError, "both"),
        ({"chosen_repr": torch.randn(4, 3), "rejected_repr": torch.randn(4, 2)}, ValueError, "rejected_repr"),
        ({"norm_scale": 1.0}, ValueError, "norm_scale"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"temperature": float("nan")}, ValueError, "temperature"),
        ({"reduction": "avg"}, ValueError, "reduction"),
        ({"eps": 0.0}, ValueError, "eps"),
    ],
)
def test_preference_loss_rejects(kwargs, error, words):
    args = {"chosen": torch.randn(4), "rejected": torch.randn(4), **kwargs}
    with pytest.raises(error, match=words):
        preference_loss(args.pop("chosen"), args.pop("rejected"), **args)
