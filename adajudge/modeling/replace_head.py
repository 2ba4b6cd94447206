"""`replace_reward_head`: swap a transformers `*ForSequenceClassification` reward model's pooling and score
head for an `adajudge.nn` head, in place.

Which token transformers scores (`GenericForSequenceClassification.forward`, transformers 5): the
rightmost position whose id is not `pad_token_id`, `argmax(arange(T) * (input_ids != pad))`, whatever the
attention mask and padding side; the last position when there is no pad token. So with pad = EOS and a
trailing EOS, the token *before* the EOS is scored.

The replaced model gives the head `attention_mask` as the real tokens and, as `response_mask`, the real
tokens up to and including that scored position. `LastTokenHead` then scores exactly transformers' token
(its `score.weight` is copied from the old score layer, so logits are unchanged); other heads pool over
the same span. Differences from transformers, all on inputs transformers itself warns about or rejects:
a row with no non-pad token scores an empty response (reward = bias) instead of position 0; without
`input_ids` (`inputs_embeds`) or without a pad token the last real token is scored, not position -1.

Saving. `save_pretrained` writes the model as an `AdaJudgeForRewardModeling` folder (`as_reward_model`):
backbone + head under `input_convention="sequence_classification"`, which reads inputs as this forward
does, so `AdaJudgeForRewardModeling.from_pretrained` / `AutoModelForSequenceClassification.from_pretrained`
(adajudge imported) give back bit-identical rewards. A transformers install without adajudge cannot load the
folder (not even with `head="last"`, whose weights are the original score layer's): its config.json names
adajudge's model type, so loading stops with a message to install adajudge rather than loading the original
class with a missing score layer *(ours)*.
"""
from __future__ import annotations

import json

import torch
from torch import nn
from transformers import MODEL_MAPPING, PreTrainedModel

from adajudge.backbones.provenance import backbone_source
from adajudge.modeling.configuration import HEAD_KINDS, AdaJudgeConfig
from adajudge.modeling.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.output import AdaJudgeRewardOutput
from adajudge.modeling.spans import scored_span_mask
from adajudge.nn import build_head


class RewardHeadMixin:
    """Forward of a `*ForSequenceClassification` whose `score` is an `adajudge.nn` head (see module doc)."""

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        response_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> AdaJudgeRewardOutput:
        """As the original forward, with `logits [B, 1]` from the head; `response_mask [B, T]` overrides the
        derived span (see `scored_span_mask`); other keyword arguments go to the base model."""
        outputs = getattr(self, self.base_model_prefix)(
            input_ids, attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=inputs_embeds, **kwargs
        )
        hidden = outputs.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        if response_mask is None:
            response_mask = scored_span_mask(input_ids, attention_mask, self.config.get_text_config().pad_token_id)
        head_output = self.score(hidden, attention_mask, response_mask)
        logits = head_output.reward[:, None]
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=logits, config=self.config)
        return AdaJudgeRewardOutput.from_head(
            head_output, loss=loss, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def as_reward_model(self) -> AdaJudgeForRewardModeling:
        """This model as an `AdaJudgeForRewardModeling` sharing its modules (the base model as `backbone`,
        the adajudge head as `head`; nothing is copied), with `input_convention="sequence_classification"`,
        so its rewards are this model's.

        Raises:
            TypeError: the head options are not JSON-able (a config stores them).
            ValueError: `AutoModel` builds another class than this model's base model from its config.
        """
        backbone = getattr(self, self.base_model_prefix)
        rebuilt = MODEL_MAPPING[type(self.config)] if type(self.config) in MODEL_MAPPING else None
        if rebuilt is not type(backbone):
            raise ValueError(
                f"model: its base model is a {type(backbone).__name__}, but AutoModel builds "
                f"{getattr(rebuilt, '__name__', None)} from its config, so a saved folder would not load back"
            )
        kind, options = self.reward_head_kind, self.reward_head_options
        try:
            json.dumps(options)
        except TypeError as error:
            raise TypeError(f"head_options: expected JSON-able values (a config stores them), got {options!r}") from error
        config = AdaJudgeConfig(
            text_config=self.config.to_dict(),
            attn_implementation=self.config._attn_implementation,
            head=kind,
            head_options=dict(options),
            pad_token_id=self.config.get_text_config().pad_token_id,
            input_convention="sequence_classification",
            backbone_source=backbone_source(self.config._name_or_path).to_dict(),
        )
        config._name_or_path = self.config._name_or_path
        return AdaJudgeForRewardModeling(config, backbone=backbone, head=self.score)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Save as an `AdaJudgeForRewardModeling` folder (`as_reward_model().save_pretrained`; module doc)."""
        self.as_reward_model().save_pretrained(save_directory, *args, **kwargs)


_REPLACED_CLASSES: dict[type, type] = {}


def _replaced_class(cls: type) -> type:
    """The subclass of `cls` whose forward runs the adajudge head, one per class.

    It keeps `cls`'s name (its module, `adajudge.modeling.replace_head`, tells them apart): transformers
    recognises models by class name (`Pipeline.check_model_type` compares `type(model).__name__` with the
    task's supported classes), and the replaced model takes the original's inputs and gives its outputs, so a
    `pipeline` over it should accept it as the original class, not log every supported class name.
    """
    if issubclass(cls, RewardHeadMixin):
        return cls
    if cls not in _REPLACED_CLASSES:
        _REPLACED_CLASSES[cls] = type(cls.__name__, (RewardHeadMixin, cls),
                                      {"__module__": __name__, "__qualname__": cls.__qualname__})
    return _REPLACED_CLASSES[cls]


def replace_reward_head(model: PreTrainedModel, head: str = "last", **head_options) -> PreTrainedModel:
    """Replace a `*ForSequenceClassification` (num_labels=1) reward model's score head by an adajudge head.

    The model is changed in place and returned: `model.score` becomes the head and the model's class a
    subclass of its own whose forward runs the head (so `isinstance` checks still pass). With
    `head="last"` the head is a `LastTokenHead` initialised from the old score layer (weight, and bias if
    any): logits stay the same for right and left padding and for pad = EOS (module doc).

    Args:
        model: a transformers sequence classifier with a linear `score` (Llama, Qwen, Mistral, Gemma, GPT-2,
            … all use `score`) and `config.num_labels == 1`.
        head: "last", "adajudge", "mean" or "attn".
        **head_options: the head's constructor options, e.g. `num_blocks=2`, `backend="torch"`.

    Returns:
        `model`, now returning `AdaJudgeRewardOutput` (`logits [B, 1]` plus the head's router fields);
        `model.save_pretrained` writes an `AdaJudgeForRewardModeling` folder (module doc).

    Example:
        >>> model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)  # doctest: +SKIP
        >>> model = replace_reward_head(model, head="adajudge", num_blocks=2)  # doctest: +SKIP
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model: expected a transformers PreTrainedModel, got {type(model).__name__}")
    score = getattr(model, "score", None)
    if isinstance(model, RewardHeadMixin):
        raise ValueError(f"model: its score head was already replaced ({type(model).__module__}."
                         f"{type(model).__qualname__})")
    if not isinstance(score, nn.Linear):
        raise TypeError(
            f"model: expected a *ForSequenceClassification with a linear `score` layer, got "
            f"{type(model).__name__} with score={type(score).__name__}"
        )
    if score.out_features != 1 or getattr(model.config, "num_labels", None) != 1:
        raise ValueError(
            f"model: expected a reward model with num_labels=1, got num_labels={model.config.num_labels} "
            f"(score.out_features={score.out_features})"
        )
    if head not in HEAD_KINDS:
        raise ValueError(f"head: expected one of {HEAD_KINDS}, got {head!r}")
    if head == "last":
        head_options.setdefault("bias", score.bias is not None)
    new_head = build_head(head, score.in_features, **head_options)
    new_head.to(device=score.weight.device, dtype=score.weight.dtype)
    if head == "last":
        with torch.no_grad():
            new_head.score.weight.copy_(score.weight)
            if score.bias is not None and new_head.score.bias is not None:
                new_head.score.bias.copy_(score.bias)
    model.score = new_head
    model.reward_head_kind, model.reward_head_options = head, dict(head_options)
    model.__class__ = _replaced_class(type(model))
    return model
