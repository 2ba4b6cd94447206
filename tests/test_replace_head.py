"""replace_reward_head: a transformers sequence classifier keeps its logits with the fused last-token head."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from adajudge.modeling import replace_reward_head
from adajudge.nn import AdaJudgeHead, LastTokenHead

EOS, VOCAB, T = 3, 40, 9


def tiny_classifier(pad_token_id: int, num_labels: int = 1, seed: int = 0) -> LlamaForSequenceClassification:
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, pad_token_id=pad_token_id, eos_token_id=EOS, num_labels=num_labels,
    )
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(config).eval()


def batch(pad_token_id: int, side: str, trailing_eos: bool):
    """5 rows of lengths 9, 6, 4, 7, 1, ids >= 4 (never pad or EOS), EOS appended when asked, then padded."""
    generator = torch.Generator().manual_seed(1)
    lengths = [T, 6, 4, 7, 1]
    input_ids = torch.full((len(lengths), T), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        tokens = torch.randint(4, VOCAB, (n,), generator=generator)
        if trailing_eos:
            tokens[-1] = EOS
        span = slice(0, n) if side == "right" else slice(T - n, T)
        input_ids[row, span], attention_mask[row, span] = tokens, 1
    return input_ids, attention_mask


CASES = [
    pytest.param(0, False, id="pad!=eos"),
    pytest.param(0, True, id="pad!=eos,trailing-eos"),
    pytest.param(EOS, True, id="pad=eos,trailing-eos"),
    pytest.param(EOS, False, id="pad=eos"),
]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pad_token_id, trailing_eos", CASES)
def test_last_head_keeps_logits(pad_token_id, trailing_eos, side):
    model = tiny_classifier(pad_token_id)
    input_ids, attention_mask = batch(pad_token_id, side, trailing_eos)
    with torch.no_grad():
        before = model(input_ids=input_ids, attention_mask=attention_mask).logits
    returned = replace_reward_head(model, head="last")
    assert returned is model and isinstance(model, LlamaForSequenceClassification)
    assert isinstance(model.score, LastTokenHead)
    with torch.no_grad():
        after = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert after.shape == before.shape == (5, 1)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    if pad_token_id == EOS and trailing_eos:
        # transformers scores the token before the trailing EOS: check the case is really exercised
        with torch.no_grad():
            hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        eos_logits = model.score.score(hidden[torch.arange(5), attention_mask.cumsum(1).argmax(1)])
        assert not torch.allclose(eos_logits, before, atol=1e-3)


def test_single_row_without_attention_mask():
    model = tiny_classifier(0)
    input_ids, _ = batch(0, "right", False)
    with torch.no_grad():
        before = model(input_ids=input_ids[:1]).logits
        after = replace_reward_head(model, head="last")(input_ids=input_ids[:1]).logits
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_gradients_reach_the_new_head_and_the_backbone():
    model = replace_reward_head(tiny_classifier(0).train(), head="last")
    input_ids, attention_mask = batch(0, "left", False)
    model(input_ids=input_ids, attention_mask=attention_mask).logits.sum().backward()
    assert model.score.score.weight.grad is not None and model.score.score.weight.grad.abs().sum() > 0
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


def test_adajudge_head_replacement():
    model = replace_reward_head(tiny_classifier(0), head="adajudge", num_blocks=1, scorer_hidden=8, router_hidden=8)
    assert isinstance(model.score, AdaJudgeHead)
    input_ids, attention_mask = batch(0, "right", True)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask)
    assert out.logits.shape == (5, 1) and torch.isfinite(out.logits).all()
    assert out.router_probs.shape == (5, 3)
    torch.testing.assert_close(out.router_probs.sum(-1), torch.ones(5))
    assert out.representation.shape == (5, 32)


def test_labels_give_a_regression_loss():
    model = replace_reward_head(tiny_classifier(0), head="last")
    input_ids, attention_mask = batch(0, "right", False)
    labels = torch.linspace(-1, 1, 5)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), labels))


def test_explicit_response_mask_overrides_the_scored_span():
    model = replace_reward_head(tiny_classifier(0), head="last")
    input_ids, attention_mask = batch(0, "right", False)
    response_mask = attention_mask.clone()
    response_mask[0, 5:] = 0  # score row 0 at position 4
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, response_mask=response_mask)
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(out.logits[0], model.score.score(hidden[0, 4]), atol=1e-6, rtol=0)


def test_errors():
    with pytest.raises(TypeError, match="PreTrainedModel"):
        replace_reward_head(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="num_labels=1"):
        replace_reward_head(tiny_classifier(0, num_labels=2))
    with pytest.raises(ValueError, match="head"):
        replace_reward_head(tiny_classifier(0), head="max")
    model = replace_reward_head(tiny_classifier(0))
    with pytest.raises(ValueError, match="already replaced"):
        replace_reward_head(model)
