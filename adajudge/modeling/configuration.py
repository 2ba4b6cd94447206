"""`AdaJudgeConfig`: a backbone's config plus the reward head's kind and options."""
from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig

try:  # transformers >= 5.20: with the spec, save_pretrained writes the backbone config as a diff to its defaults
    from transformers.configuration_utils import SubConfigSpec
except ImportError:  # 5.17 to 5.19 have only the plain `sub_configs` mapping (and write a diff without it)
    SubConfigSpec = None

HEAD_KINDS = ("adajudge", "last", "mean", "attn")
INPUT_CONVENTIONS = ("adajudge", "sequence_classification")

# The `model_type` written to config.json: a plain identifier, as Hub tags, filters and widgets expect. A
# transformers install without adajudge stops at it ("...has model type `adajudge` but Transformers does not
# recognize this architecture"); the folder's model card says what to install. Importing adajudge registers it
# with AutoConfig, and building an AdaJudgeConfig registers the model (`adajudge.modeling.auto`).
MODEL_TYPE = "adajudge"
# Model types that earlier adajudge versions wrote; folders saved with them still load (`adajudge.modeling.auto`),
# and save again under `MODEL_TYPE`.
LEGACY_MODEL_TYPES = ("adajudge (pip install adajudge, then import adajudge)",)
DEFAULT_BACKBONE_TYPE = "llama"


def _resolve_text_config(text_config) -> PretrainedConfig:
    """The backbone config from what `AdaJudgeConfig(text_config=...)` or a config.json gave.

    A dict is read by the config class of its `model_type` (default "llama"), None gives a default Llama config.
    Resolved here, before transformers' own sub-config handling (`SubConfigSpec`, 5.20 and later only, which
    then finds a config and keeps it), so every supported transformers builds the same config and refuses the
    same wrong input.
    """
    if isinstance(text_config, PretrainedConfig):
        return text_config
    if text_config is None:
        return AutoConfig.for_model(DEFAULT_BACKBONE_TYPE)
    if isinstance(text_config, dict):
        fields = dict(text_config)
        return AutoConfig.for_model(fields.pop("model_type", DEFAULT_BACKBONE_TYPE), **fields)
    raise TypeError(f"text_config: expected a PretrainedConfig, a dict or None, got {type(text_config).__name__}")


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
        input_convention: how `forward` reads inputs given without a `response_mask`. "adajudge": position
            ids count real tokens (either padding side gives the same positions) and every real token is
            response, or, with `response_header_ids`, the tokens after them. "sequence_classification": as the
            transformers `*ForSequenceClassification` the model came from (`replace_reward_head`): the backbone's
            own position ids, and the response is the real tokens up to the one transformers scores (the last
            non-pad token).
        response_header_ids: token ids that open the response in a chat-rendered sequence, the chat
            template's generation prompt (`adajudge.modeling.spans.chat_response_header(tokenizer)`), or None.
            When set, a call without `response_mask` (a `pipeline`, TRL's RLHF trainers) takes as response
            the real tokens after their last occurrence, the layout `adajudge.data` trains on; a row without
            them is all response. `adajudge train` sets it from the tokenizer.
        training_summary: what the model was trained on, for its model card (`adajudge.modeling.card`), or
            None: a JSON-able dict with any of `loss` (str), `loss_options` (dict), `data` (list of file names),
            `datasets` (list of Hub dataset ids), `train_pairs`, `heldout_pairs` (int), `heldout_accuracy`
            (float), `epochs` (int).
        backbone_source: where the backbone came from, for the model card and its Hub metadata
            (`adajudge.backbones.provenance.BackboneSource.to_dict()`: `name`, `license`, `weights`), or None.

    config.json never holds a local path: the backbone config's `_name_or_path` (the folder it was loaded
    from) is left out when saving, as transformers leaves out the top-level one.

    Example:
        >>> config = AdaJudgeConfig(text_config=LlamaConfig(hidden_size=64), head="last")  # doctest: +SKIP
    """

    model_type = MODEL_TYPE
    if SubConfigSpec is not None:
        sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type=DEFAULT_BACKBONE_TYPE)}
    else:
        sub_configs = {"text_config": AutoConfig}

    text_config: dict | PretrainedConfig | None = None
    head: str = "adajudge"
    head_options: dict | None = None
    freeze_backbone: bool = False
    lora: dict | None = None
    pad_token_id: int | None = None
    input_convention: str = "adajudge"
    response_header_ids: list | None = None
    training_summary: dict | None = None
    backbone_source: dict | None = None

    def __post_init__(self, **kwargs):
        from adajudge.modeling.auto import register_model  # the model class, for the Auto classes that read this config

        register_model()
        kwargs.setdefault("num_labels", 1)
        self.text_config = _resolve_text_config(self.text_config)
        super().__post_init__(**kwargs)
        if self.head not in HEAD_KINDS:
            raise ValueError(f"head: expected one of {HEAD_KINDS}, got {self.head!r}")
        if self.input_convention not in INPUT_CONVENTIONS:
            raise ValueError(f"input_convention: expected one of {INPUT_CONVENTIONS}, got {self.input_convention!r}")
        if self.head_options is None:
            self.head_options = {}
        if not isinstance(self.head_options, dict):
            raise TypeError(
                f"head_options: expected a dict of head constructor options, got {type(self.head_options).__name__}"
            )
        header = self.response_header_ids
        if header is not None and (
            not isinstance(header, list) or not header or not all(isinstance(i, int) and not isinstance(i, bool) for i in header)
        ):
            raise TypeError(f"response_header_ids: expected None or a non-empty list of token ids, got {header!r}")
        if self.training_summary is not None and not isinstance(self.training_summary, dict):
            raise TypeError(
                f"training_summary: expected None or a dict, got {type(self.training_summary).__name__}"
            )
        if self.backbone_source is not None and not isinstance(self.backbone_source, dict):
            raise TypeError(f"backbone_source: expected None or a dict, got {type(self.backbone_source).__name__}")
        if not isinstance(self.freeze_backbone, bool):
            raise TypeError(f"freeze_backbone: expected a bool, got {type(self.freeze_backbone).__name__}")
        if self.lora is not None and not isinstance(self.lora, dict):
            raise TypeError(f"lora: expected None or a dict (LoraConfig.to_dict()), got {type(self.lora).__name__}")

    def __setstate__(self, state):
        """Unpickled (in a spawned process, say): register the model there too, as `__post_init__` does."""
        from adajudge.modeling.auto import register_model

        self.__dict__.update(state)
        register_model()

    def to_diff_dict(self) -> dict:
        """What `save_pretrained` writes: transformers' diff dict without the backbone's `_name_or_path`."""
        serialized = super().to_diff_dict()
        if isinstance(serialized.get("text_config"), dict):
            serialized["text_config"].pop("_name_or_path", None)
        return serialized

    @property
    def backbone_config(self) -> PretrainedConfig:
        """The backbone's config (the same object as `text_config`)."""
        return self.text_config

    @property
    def hidden_size(self) -> int:
        """Width `D` of the backbone's last hidden states, the head's input."""
        return self.text_config.hidden_size
