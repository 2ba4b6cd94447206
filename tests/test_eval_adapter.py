"""reward_fn_from_model: a tiny random transformers sequence classifier and a response-mask model."""
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaForSequenceClassification

from adajudge.backbones.tiny import tiny_backbone_dir, tiny_tokenizer
from adajudge.data.encoding import encode_prompt_response
from adajudge.eval import reward_fn_from_model, score_rm_bench

PROMPTS = ["What is 2+2?", "Name a colour.", "Say hi.", "Explain gravity in one line.", "x"]
RESPONSES = ["4", "Blue, like the sky on a clear day.", "hi", "Mass attracts mass.", "a much longer answer " * 5]


@pytest.fixture(scope="module")
def classifier_and_tokenizer(tmp_path_factory):
    path = tiny_backbone_dir(tmp_path_factory.mktemp("tiny"), hidden_size=32, num_layers=1)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification.from_pretrained(path, num_labels=1)
    return model.eval(), tiny_tokenizer()


def one_at_a_time(model, tokenizer, max_length=256):
    """Rewards computed pair by pair without padding: the definition the batched adapter must match."""
    rewards = []
    with torch.no_grad():
        for prompt, response in zip(PROMPTS, RESPONSES):
            encoding = encode_prompt_response(tokenizer, prompt, response, max_length=max_length)
            ids = torch.tensor([encoding["input_ids"]])
            rewards.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, 0].item())
    return rewards


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_batched_sorted_rewards_equal_one_at_a_time_in_input_order(classifier_and_tokenizer, batch_size):
    model, tokenizer = classifier_and_tokenizer
    expected = one_at_a_time(model, tokenizer)
    got = reward_fn_from_model(model, tokenizer, batch_size=batch_size, max_length=256, progress=False)(
        PROMPTS, RESPONSES)
    assert isinstance(got, list) and all(isinstance(value, float) for value in got)
    assert len(set(expected)) == len(expected), "the random model must tell the pairs apart"
    assert got == pytest.approx(expected, abs=1e-5, rel=1e-5)


def test_training_flag_is_restored(classifier_and_tokenizer):
    model, tokenizer = classifier_and_tokenizer
    model.train()
    try:
        reward_fn = reward_fn_from_model(model, tokenizer, progress=False)
        reward_fn(PROMPTS[:2], RESPONSES[:2])
        assert model.training
    finally:
        model.eval()


def test_response_longer_than_max_length_is_cut_with_a_warning(classifier_and_tokenizer):
    model, tokenizer = classifier_and_tokenizer
    reward_fn = reward_fn_from_model(model, tokenizer, max_length=16, progress=False)
    with pytest.warns(UserWarning, match="1 of 2 responses are longer than max_length=16"):
        rewards = reward_fn(["q", "q"], ["short", "a response far longer than sixteen byte tokens"])
    assert len(rewards) == 2


def test_scorer_end_to_end(classifier_and_tokenizer):
    model, tokenizer = classifier_and_tokenizer
    rows = [{"prompt": p, "chosen": [r, r + "!", r + "?"], "rejected": ["no", "no!", "no?"]}
            for p, r in zip(PROMPTS, RESPONSES)]
    result = score_rm_bench(rows, reward_fn_from_model(model, tokenizer, batch_size=4, progress=False))
    assert 0.0 <= result["avg"] <= 100.0


class ResponseLengthModel(torch.nn.Module):
    """Stands for AdaJudgeForRewardModeling's interface: takes `response_mask`, reward = response tokens."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask, response_mask=None):
        assert response_mask is not None and bool((response_mask <= attention_mask).all())
        return SimpleNamespace(logits=response_mask.sum(dim=1, keepdim=True).float() + self.anchor)


def test_response_mask_is_passed_when_forward_takes_it():
    tokenizer = tiny_tokenizer()
    got = reward_fn_from_model(ResponseLengthModel(), tokenizer, batch_size=2, progress=False)(PROMPTS, RESPONSES)
    expected = [float(sum(encode_prompt_response(tokenizer, p, r, max_length=2048)["response_mask"]))
                for p, r in zip(PROMPTS, RESPONSES)]
    assert got == expected


def test_bad_arguments_raise(classifier_and_tokenizer):
    model, tokenizer = classifier_and_tokenizer
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        reward_fn_from_model(object(), tokenizer)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        reward_fn_from_model(model, tokenizer, batch_size=0)
    two_labels = SimpleNamespace(num_labels=2, pad_token_id=0)
    module = ResponseLengthModel()
    module.config = two_labels
    with pytest.raises(ValueError, match=r"model: expected one score per sequence .*got num_labels=2"):
        reward_fn_from_model(module, tokenizer)
    pad_id = model.config.pad_token_id
    model.config.pad_token_id = None
    try:
        with pytest.raises(ValueError, match=r"model.config.pad_token_id: expected a token id .*got None"):
            reward_fn_from_model(model, tokenizer)
    finally:
        model.config.pad_token_id = pad_id
    with pytest.raises(ValueError, match="prompts, responses: expected the same length, got 1 and 2"):
        reward_fn_from_model(model, tokenizer, progress=False)(["a"], ["b", "c"])


@pytest.fixture(scope="module")
def adajudge_model(tmp_path_factory):
    from adajudge import AdaJudgeForRewardModeling

    path = tiny_backbone_dir(tmp_path_factory.mktemp("tiny_adajudge"), hidden_size=32, num_layers=1)
    torch.manual_seed(0)
    return AdaJudgeForRewardModeling.from_backbone(path, head="adajudge", num_blocks=1).eval()


def test_adajudge_model_batched_equals_one_at_a_time(adajudge_model):
    tokenizer = tiny_tokenizer()
    expected = []
    with torch.no_grad():
        for prompt, response in zip(PROMPTS, RESPONSES):
            encoding = encode_prompt_response(tokenizer, prompt, response, max_length=256)
            ids, mask = torch.tensor([encoding["input_ids"]]), torch.tensor([encoding["response_mask"]])
            expected.append(adajudge_model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                           response_mask=mask).logits[0, 0].item())
    assert len(set(expected)) == len(expected), "the random head must tell the pairs apart"
    got = reward_fn_from_model(adajudge_model, tokenizer, batch_size=3, max_length=256, progress=False)(
        PROMPTS, RESPONSES)
    assert got == pytest.approx(expected, abs=1e-5, rel=1e-5)
