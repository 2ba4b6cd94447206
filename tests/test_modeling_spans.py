"""Finding the response in a chat-rendered sequence from its ids alone, as `adajudge.data` marks it."""
import pytest
import torch
from transformers import AutoTokenizer

from adajudge.data.collator import PreferenceCollator
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.spans import chat_response_header, chat_response_mask

EXAMPLES = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
     "chosen": "Paris.", "rejected": "It is Rome, of course."},
    {"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Say hi again"}], "chosen": "hi", "rejected": "no"},
]


def test_header_is_the_generation_prompt(tiny_llama_tokenizer):
    header = chat_response_header(tiny_llama_tokenizer)
    assert tiny_llama_tokenizer.decode(header) == "<|im_start|>assistant\n"


@pytest.mark.parametrize("side", ["right", "left"])
def test_mask_from_ids_is_the_training_response_mask(tiny_llama_tokenizer, side):
    batch = PreferenceCollator(tiny_llama_tokenizer, max_length=96, padding_side=side)(EXAMPLES)
    found = chat_response_mask(batch["input_ids"], batch["attention_mask"], chat_response_header(tiny_llama_tokenizer))
    assert found.dtype == torch.int64
    assert torch.equal(found, batch["response_mask"].long())  # multi-turn rows: the last assistant turn only


def test_rows_without_the_header_are_all_response():
    input_ids = torch.tensor([[5, 6, 7, 0], [1, 2, 5, 9], [0, 0, 1, 2]])
    attention_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 1, 1]])
    found = chat_response_mask(input_ids, attention_mask, [1, 2])
    assert found.tolist() == [[1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]]  # a header at the very end: empty response
    assert torch.equal(chat_response_mask(input_ids[:, :1], attention_mask[:, :1], [1, 2]), attention_mask[:, :1])


def test_model_with_a_header_scores_ids_alone_as_with_the_training_masks(tiny_backbone_path, tiny_llama_tokenizer):
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", num_blocks=1).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    batch = PreferenceCollator(tiny_llama_tokenizer, max_length=96)(EXAMPLES)
    with torch.no_grad():
        masked = model(**batch).logits
        before = model(batch["input_ids"], batch["attention_mask"]).logits
        model.config.response_header_ids = chat_response_header(tiny_llama_tokenizer)
        after = model(batch["input_ids"], batch["attention_mask"]).logits
    assert torch.equal(after, masked) and not torch.allclose(before, masked, atol=1e-4)


def test_tokenizers_without_a_usable_generation_prompt_are_refused(tiny_llama_tokenizer):
    plain = AutoTokenizer.from_pretrained(tiny_llama_tokenizer.name_or_path)
    plain.chat_template = None
    with pytest.raises(ValueError, match="tokenizer: expected a tokenizer with a chat template"):
        chat_response_header(plain)
    plain.chat_template = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    with pytest.raises(ValueError, match="generation prompt"):
        chat_response_header(plain)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"response_header_ids": []}, TypeError, "response_header_ids"),
        ({"response_header_ids": [1, "2"]}, TypeError, "response_header_ids"),
        ({"response_header_ids": (1, 2)}, TypeError, "response_header_ids"),
        ({"input_convention": "causal"}, ValueError, "input_convention"),
        ({"training_summary": ["bt"]}, TypeError, "training_summary"),
    ],
)
def test_config_refuses_bad_span_settings(kwargs, error, match):
    from adajudge.modeling import AdaJudgeConfig

    with pytest.raises(error, match=match):
        AdaJudgeConfig(**kwargs)
