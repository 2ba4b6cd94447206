"""`AdaJudgeConfig`: a backbone's config plus the reward head's kind and options."""
from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

HEAD_KINDS = ("adajudge", "last", "mean", "attn")


class AdaJudgeConfig(PretrainedConfig):
    """Configuration of `AdaJudgeForRewardModeling`: backbone config, head kind, head options, adapters.

    The backbone's config is stored whole under `text_config` (so `config.get_text_config()` returns it, as
    transformers and TRL expect of composite models; `backbone_config` is an alias). `num_labels` is 1: the
    model outputs one reward per sequence, like a `*ForSequenceClassification` reward model.

    Args:
        text_config: the backbone's config (a `PretrainedConfig` or its dict); None gives a default Llama.
        head: "adajudge", "last", "mean" or "attn" (`adajudge.nn.build_head` kinds).
        head_options: JSON-able keyword arguments of the head's constructor, e.g. `{"num_blocks": 2}`.
        freeze_backbone: backbone parameters get `requires_grad=False` when the model is built.
        lora: peft `LoraConfig` arguments as a dict (see `AdaJudgeForRewardModeling.from_backbone`), or None.
        pad_token_id: the tokenizer's pad id (masks, not ids, mark padding; kept for tools that read it).

    Example:
        >>> config = AdaJudgeConfig(text_config=LlamaConfig(hidden_size=64), head="last")  # doctest: +SKIP
    """

    model_type = "adajudge"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    text_config: dict | PretrainedConfig | None = None
    head: str = "adajudge"
    head_options: dict | None = None
    freeze_backbone: bool = False
    lora: dict | None = None
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        kwargs.setdefault("num_labels", 1)
        super().__post_init__(**kwargs)
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head: expected one of {HEAD_KINDS}, got {self.head!r}")
        if self.head_options is None:
            self.head_options = {}
        if not isinstance(self.head_options, dict):
            raise TypeError(
                f"head_options: expected a dict of head constructor options, got {type(self.head_options).__name__}"
            )
        if not isinstance(self.freeze_backbone, bool):
            raise TypeError(f"freeze_backbone: expected a bool, got {type(self.freeze_backbone).__name__}")
        if self.lora is not None and not isinstance(self.lora, dict):
            raise TypeError(f"lora: expected None or a dict (LoraConfig.to_dict()), got {type(self.lora).__name__}")

    @property
    def backbone_config(self) -> PretrainedConfig:
        """The backbone's config (the same object as `text_config`)."""
        return self.text_config

    @property
    def hidden_size(self) -> int:
        """Width `D` of the backbone's last hidden states, the head's input."""
        return self.text_config.hidden_size
