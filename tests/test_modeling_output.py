"""One output type for adajudge's transformers models: `AdaJudgeRewardOutput` carries the head's `HeadOutput`."""
import dataclasses

import torch
from transformers import LlamaConfig, LlamaForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutputWithPast

from adajudge.modeling import AdaJudgeForRewardModeling, AdaJudgeRewardOutput, replace_reward_head
from adajudge.modeling.output import HEAD_FIELDS
from adajudge.nn import HeadOutput


def head_output(batch=3, views=3, width=4):
    generator = torch.Generator().manual_seed(0)
    return HeadOutput(*(torch.randn(shape, generator=generator) for shape in
                        [(batch,), (batch, views), (batch, views), (batch,), (batch, width)]))


def test_output_fields_are_the_head_output_fields_and_convert_both_ways():
    assert set(HEAD_FIELDS) | {"reward"} == {field.name for field in dataclasses.fields(HeadOutput)}
    model_fields = {field.name for field in dataclasses.fields(AdaJudgeRewardOutput)}
    assert set(HEAD_FIELDS) <= model_fields and issubclass(AdaJudgeRewardOutput, SequenceClassifierOutputWithPast)
    head = head_output()
    output = AdaJudgeRewardOutput.from_head(head)
    assert output.logits.shape == (3, 1) and torch.equal(output.logits[:, 0], head.reward)
    back = output.head_output()
    for field in dataclasses.fields(HeadOutput):
        assert torch.equal(getattr(back, field.name), getattr(head, field.name)), field.name
    assert list(output.keys()) == ["logits", *HEAD_FIELDS]  # the tuple order: logits first


def test_both_models_return_the_one_output_type(tiny_backbone_path):
    input_ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="mean").eval()
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, num_labels=1)
    replaced = replace_reward_head(LlamaForSequenceClassification(config).eval(), head="adajudge", num_blocks=1)
    with torch.no_grad():
        for out, views in ((model(input_ids, attention_mask), 1), (replaced(input_ids, attention_mask), 3)):
            assert type(out) is AdaJudgeRewardOutput
            head = out.head_output()
            assert head.reward.shape == (2,) and head.view_scores.shape == (2, views)
            assert torch.equal(head.reward, out.logits[:, 0])
