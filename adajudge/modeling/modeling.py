"""`AdaJudgeForRewardModeling`: any causal LM's base model plus an `adajudge.nn` reward head.

The model reads `input_ids [B, T]`, `attention_mask [B, T]` and optionally `response_mask [B, T]`, runs
the backbone (`AutoModel`, the causal LM without its LM head), and scores the last hidden states with the
head. Its output looks like a `*ForSequenceClassification` reward model's (`logits [B, 1]`), so TRL's
`RewardTrainer` trains it unchanged, transformers' `text-classification` pipeline scores with it, and TRL's
RLHF trainers take it (or its folder) as a reward; the output adds the head's router probabilities,
per-view scores, router entropy and representation. Building an `AdaJudgeConfig` registers it with
`AutoModelForSequenceClassification` (`adajudge.modeling.auto`). It also takes packed batches (whole
sequences side by side in rows, no padding; `adajudge.modeling.packing`, docs/packing.md).
"""
from __future__ import annotations

import enum
import inspect
import json
import os
from pathlib import Path

import torch
from transformers import AutoModel, PreTrainedModel

from adajudge.backbones.provenance import backbone_source
from adajudge.modeling.card import model_card
from adajudge.modeling.configuration import HEAD_KINDS, AdaJudgeConfig
from adajudge.modeling.output import AdaJudgeRewardOutput
from adajudge.modeling.packing import check_packing_support, packed_backbone_states
from adajudge.modeling.spans import chat_response_mask, scored_span_mask
from adajudge.nn import build_head

# LoraConfig fields that describe where a config came from, not the adapter itself.
_LORA_PROVENANCE = ("peft_type", "peft_version", "task_type", "base_model_name_or_path", "revision", "auto_mapping")


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def lora_config_to_dict(lora) -> dict:
    """A peft `LoraConfig` (or the dict of its arguments) as a compact JSON-able dict of non-default fields.

    Raises:
        TypeError: `lora` is neither a `LoraConfig` nor a dict.
    """
    from peft import LoraConfig

    if isinstance(lora, dict):
        lora = LoraConfig(**lora)
    elif not isinstance(lora, LoraConfig):
        raise TypeError(f"lora: expected a peft.LoraConfig or a dict of its arguments, got {type(lora).__name__}")
    defaults = LoraConfig().to_dict()
    out = {}
    for key, value in lora.to_dict().items():
        if key in _LORA_PROVENANCE or value == defaults.get(key):
            continue
        out[key] = _jsonable(value)
    return json.loads(json.dumps(out))


@torch.no_grad()
def _copy_out_of_memory_map(model: torch.nn.Module) -> None:
    """Move every parameter and buffer into a fresh allocation (see `AdaJudgeForRewardModeling.from_pretrained`)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.data = tensor.data.clone()


def _mark_initialized(module: torch.nn.Module) -> None:
    """Flag `module`'s submodules and tensors as initialised, the mark transformers gives loaded weights, so
    that `post_init`'s weight initialisation (and `initialize_weights` below) leaves their values alone."""
    for part in [*module.modules(), *module.parameters(), *module.buffers()]:
        part._is_hf_initialized = True


def _check_model_folder(name_or_path) -> None:
    """Raise a clear OSError for a local folder without config.json, naming the subfolder that holds a
    model when there is one (`adajudge train` writes `OUTPUT_DIR/model/`)."""
    folder = Path(name_or_path) if isinstance(name_or_path, (str, os.PathLike)) else None
    if folder is None or not folder.is_dir() or (folder / "config.json").is_file():
        return
    inner = [child for child in sorted(folder.iterdir()) if (child / "config.json").is_file()]
    hint = (f"; the model is in {inner[0]} (`adajudge train` saves it in OUTPUT_DIR/model/): load that folder"
            if inner else "")
    raise OSError(f"pretrained_model_name_or_path: expected a save_pretrained folder with a config.json, got "
                  f"{folder} (no config.json there{hint})")


class AdaJudgeForRewardModeling(PreTrainedModel):
    """A reward model: `backbone` (any transformers base model) + `head` (`adajudge.nn.build_head`).

    Build one from a causal-LM checkpoint with `from_backbone`; save and reload with `save_pretrained` /
    `from_pretrained` (safetensors; `AutoModelForSequenceClassification.from_pretrained` once adajudge is
    imported). `config.head`/`config.head_options` rebuild the head, `config.lora` re-injects LoRA adapters,
    `config.freeze_backbone` re-freezes the backbone. `save_pretrained` also writes a model card (README.md).

    Attributes:
        backbone: the base model (`AutoModel.from_config(config.text_config)`), LoRA layers injected if any.
        head: the reward head, `head(hidden [B, T, D], attention_mask, response_mask) -> HeadOutput`.
    """

    config_class = AdaJudgeConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # The head stays fp32 when `from_pretrained` loads in fp16/bf16 (a regex on parameter names).
    _keep_in_fp32_modules_strict = [r"^head\."]

    def __init__(self, config: AdaJudgeConfig, backbone: PreTrainedModel | None = None, head=None):
        """`backbone` / `head`: existing modules to use as they are (shared, not copied, not re-initialised);
        default: built from `config`."""
        super().__init__(config)
        for given in (backbone, head):
            if given is not None:
                _mark_initialized(given)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.text_config)
        self.head = head if head is not None else build_head(config.head, config.hidden_size, **config.head_options)
        self.post_init()
        # After post_init: transformers' weight init would overwrite LoRA's zero-initialised B matrices.
        if config.lora is not None:
            self._inject_lora(config.lora)
        self._set_trainable()

    # ----------------------------------------------------------------------------------------- building
    @classmethod
    def from_backbone(
        cls,
        name_or_path,
        head: str = "adajudge",
        *,
        freeze_backbone: bool = False,
        lora=None,
        dtype: torch.dtype | str | None = None,
        **head_options,
    ) -> AdaJudgeForRewardModeling:
        """Wrap the base model of a causal-LM (or base-model) checkpoint with a fresh reward head.

        Args:
            name_or_path: a directory (e.g. `adajudge.backbones.smollm2.smollm2_dir()`) or a cached hub id; loaded
                with `AutoModel.from_pretrained`, which drops the LM head.
            head: "adajudge", "last", "mean" or "attn".
            freeze_backbone: give the backbone's parameters `requires_grad=False` (train the head alone).
            lora: a peft `LoraConfig` or a dict of its arguments: LoRA adapters are injected into the
                backbone, whose other parameters are frozen; the head stays trainable. Without
                `target_modules`, peft's default for the model type is used.
            dtype: dtype of the backbone's weights (default: the checkpoint's). The head is fp32.
            **head_options: the head constructor's options (JSON-able), e.g. `num_blocks=2`, `backend="torch"`.

        Example:
            >>> model = AdaJudgeForRewardModeling.from_backbone(
            ...     smollm2_dir(), head="adajudge", num_blocks=2)  # doctest: +SKIP
        """
        if head not in HEAD_KINDS:
            raise ValueError(f"head: expected one of {HEAD_KINDS}, got {head!r}")
        if freeze_backbone and lora is not None:
            raise ValueError("freeze_backbone/lora: pass one of them; LoRA already freezes the non-adapter weights")
        try:
            json.dumps(head_options)
        except TypeError as error:
            raise TypeError(
                f"head_options: expected JSON-able values (a config stores them), got {head_options!r}"
            ) from error
        lora_dict = lora_config_to_dict(lora) if lora is not None else None
        backbone_kwargs = {} if dtype is None else {"dtype": dtype}
        backbone = AutoModel.from_pretrained(name_or_path, **backbone_kwargs)
        _copy_out_of_memory_map(backbone)
        config = AdaJudgeConfig(
            text_config=backbone.config,
            # Without it the new config would reset the backbone config's attention implementation to None.
            attn_implementation=backbone.config._attn_implementation,
            head=head,
            head_options=dict(head_options),
            freeze_backbone=freeze_backbone,
            pad_token_id=backbone.config.pad_token_id,
            backbone_source=backbone_source(name_or_path).to_dict(),
        )
        # Tools that take a model object find its tokenizer here (`pipeline`, TRL's reward models); it stays in
        # memory (transformers does not write it to config.json).
        config._name_or_path = str(name_or_path)
        model = cls(config, backbone=backbone)
        if lora_dict is not None:
            model._inject_lora(lora_dict)
            model.config.lora = lora_dict
            model._set_trainable()
        return model

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> AdaJudgeForRewardModeling:
        """`PreTrainedModel.from_pretrained`, then two fixes so the loaded model behaves as the saved one.

        - Tensors are copied out of the safetensors memory map into fresh allocations: mapped tensors sit
          at arbitrary byte offsets, and CPU kernels vectorise unaligned data differently, which changes
          results in the last bit. After the copy, rewards are bit-identical to the saved model's.
        - `config.freeze_backbone`/`config.lora` are re-applied (loading resets `requires_grad`).

        Raises:
            OSError: the folder has no config.json; when it is an `adajudge train` output folder, the message
                names its `model/` subfolder, which holds the model.
        """
        if args:
            _check_model_folder(args[0])
        model = super().from_pretrained(*args, **kwargs)
        _copy_out_of_memory_map(model)
        model._set_trainable()
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained` (config.json, safetensors), plus a model card `README.md`
        (`adajudge.modeling.card.model_card`: backbone, head, training record, how to load) *(ours)*. An
        existing README.md in the folder is replaced. The tokenizer is saved separately
        (`tokenizer.save_pretrained(save_directory)`), as with any transformers model."""
        if kwargs.get("is_main_process", True):
            os.makedirs(save_directory, exist_ok=True)
            model_card(self).save(os.path.join(save_directory, "README.md"))
        super().save_pretrained(save_directory, *args, **kwargs)

    def _inject_lora(self, lora: dict) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        inject_adapter_in_model(LoraConfig(**lora), self.backbone)

    def _set_trainable(self) -> None:
        """Apply `config.freeze_backbone` / `config.lora`: backbone frozen, or only its LoRA adapters trainable."""
        if self.config.freeze_backbone or self.config.lora is not None:
            for name, parameter in self.backbone.named_parameters():
                parameter.requires_grad_(self.config.lora is not None and "lora_" in name)

    def _init_weights(self, module: torch.nn.Module) -> None:
        """No-op: the head initialises itself (see `initialize_weights`); the backbone uses its own rule."""

    @torch.no_grad()
    def initialize_weights(self) -> None:
        """transformers' initialisation of unloaded tensors, plus the head's own initialisation.

        transformers runs this on a fresh model and after `from_pretrained` for tensors the checkpoint did
        not hold (they lack its `_is_hf_initialized` flag), dispatching the backbone to its own
        `_init_weights`. The heads define their initialisation in their constructors (e.g. zero output
        projections), so each unflagged head tensor (a fresh model's, or a non-persistent buffer after
        `from_pretrained`) takes the value it has in a freshly built head; loaded tensors are left alone.
        """
        super().initialize_weights()
        own = dict(self.head.named_parameters()) | dict(self.head.named_buffers())
        missing = {name: tensor for name, tensor in own.items() if not getattr(tensor, "_is_hf_initialized", False)}
        if not missing:
            return
        fresh = build_head(self.config.head, self.config.hidden_size, **self.config.head_options)
        fresh_tensors = dict(fresh.named_parameters()) | dict(fresh.named_buffers())
        for name, tensor in missing.items():
            tensor.copy_(fresh_tensors[name].to(device=tensor.device, dtype=tensor.dtype))

    # ------------------------------------------------------------------------------------------ running
    def backbone_hidden_states(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ):
        """Run the backbone as `forward` does: position ids count real tokens, so either padding side
        gives a sequence the same positions (with `config.input_convention == "sequence_classification"`
        the backbone chooses them, as in transformers). Returns the backbone's output
        (`last_hidden_state [B, T, D]`).

        Use it to cache features for a frozen backbone; `score_hidden_states` then scores them.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("input_ids/inputs_embeds: expected exactly one of them")
        if self.config.input_convention == "adajudge":
            reference = input_ids if input_ids is not None else inputs_embeds
            if attention_mask is None:
                attention_mask = torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
            if position_ids is None and "position_ids" in inspect.signature(self.backbone.forward).parameters:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        return self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            use_cache=False,
            return_dict=True,
            **kwargs,
        )

    def check_packing_support(self) -> None:
        """Check once per model that the backbone keeps packed sequences apart
        (`adajudge.modeling.packing.check_packing_support`); the packed `forward` calls it on first use. Call it
        before wrapping the model for FSDP, so that the check's forward does not run inside a sharded one.

        Raises:
            PackingUnsupportedError: the backbone does not.
        """
        if not getattr(self, "_packing_supported", False):
            check_packing_support(self.backbone)
            self._packing_supported = True

    def packed_backbone_hidden_states(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        token_index: torch.Tensor,
        cu_seqlens: torch.Tensor,
        max_seqlen: int | None = None,
        **kwargs,
    ):
        """The backbone's last hidden states of a packed batch (`adajudge.data.packing`): `(hidden [total, D] in
        the packed order, backbone output)`; see `adajudge.modeling.packing.packed_backbone_states`."""
        self.check_packing_support()
        return packed_backbone_states(self.backbone, input_ids, position_ids, token_index, cu_seqlens, max_seqlen, **kwargs)

    def score_hidden_states(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor | None = None,
    ) -> AdaJudgeRewardOutput:
        """Run only the head on given backbone hidden states (e.g. cached features).

        Args:
            hidden_states: `[B, T, D]` last hidden states of this model's backbone.
            attention_mask: `[B, T]` 0/1 (either padding side).
            response_mask: `[B, T]` 0/1 subset of `attention_mask`; None means every real token.
        """
        return AdaJudgeRewardOutput.from_head(self.head(hidden_states, attention_mask, response_mask))

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        response_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        use_cache: bool | None = None,
        margin: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
        token_index: torch.Tensor | None = None,
        **kwargs,
    ) -> AdaJudgeRewardOutput | tuple:
        """Reward of each sequence, from a padded batch or a packed one.

        Args:
            input_ids: `[B, T]` token ids (or `inputs_embeds [B, T, D]`).
            attention_mask: `[B, T]` 0/1, 1 on real tokens, either padding side; None means all real.
            response_mask: `[B, T]` 0/1 marking the response being judged (a subset of `attention_mask`);
                None means every real token is response (no prompt view), or, when
                `config.response_header_ids` is set, the real tokens after its last occurrence (the chat
                response); with `config.input_convention == "sequence_classification"`, the real tokens up
                to the one a transformers sequence classifier scores (`adajudge.modeling.spans`).
            position_ids: default: the count of real tokens before each position (padding-side invariant).
            output_hidden_states: also return the backbone's per-layer hidden states.
            return_dict: False returns `output.to_tuple()`.
            use_cache, margin, weight: accepted and unused, because `trl.RewardTrainer` and
                `PreferenceCollator` batches pass them (a reward model keeps no cache; losses read margin
                and weight).
            cu_seqlens, max_seqlen, token_index: a packed batch (`PackedPreferenceCollator`, docs/packing.md):
                then `input_ids` and `position_ids` are `[R, L]` rows of whole sequences, `attention_mask` is
                None, `response_mask` is `[total]` in the packed order (None: every token, when the config
                names no other convention), and the output has one row per packed sequence, in that order
                (the collator's: chosen first, then rejected). Each sequence gets the reward it has alone.
            **kwargs: passed to the backbone.

        Returns:
            `AdaJudgeRewardOutput` with `logits [B, 1]` fp32 (the reward), `view_scores`, `router_probs`,
            `router_entropy`, `representation` (see the class) and `hidden_states` when asked.
        """
        if cu_seqlens is not None:
            output = self._packed_forward(
                input_ids, attention_mask, response_mask, position_ids, inputs_embeds, cu_seqlens, max_seqlen,
                token_index, output_hidden_states=output_hidden_states, **kwargs,
            )
            return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()
        outputs = self.backbone_hidden_states(
            input_ids,
            attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        if response_mask is None and self.config.input_convention == "sequence_classification":
            response_mask = scored_span_mask(input_ids, attention_mask, self.config.get_text_config().pad_token_id)
        elif response_mask is None and self.config.response_header_ids and input_ids is not None:
            response_mask = chat_response_mask(input_ids, attention_mask, self.config.response_header_ids)
        output = AdaJudgeRewardOutput.from_head(
            self.head(hidden, attention_mask, response_mask), hidden_states=outputs.hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def _packed_forward(
        self, input_ids, attention_mask, response_mask, position_ids, inputs_embeds, cu_seqlens, max_seqlen,
        token_index, **kwargs,
    ) -> AdaJudgeRewardOutput:
        """`forward` on a packed batch (see its `cu_seqlens` argument)."""
        if attention_mask is not None:
            raise ValueError(
                "attention_mask: expected None with cu_seqlens (a packed batch; transformers reads the sequence "
                "boundaries from position_ids only when no 2-D mask is given), got a tensor"
            )
        if inputs_embeds is not None or input_ids is None or position_ids is None or token_index is None:
            raise ValueError(
                "input_ids, position_ids, token_index: a packed batch needs all three (as PackedPreferenceCollator "
                "gives them) and no inputs_embeds"
            )
        if response_mask is None and (self.config.input_convention != "adajudge" or self.config.response_header_ids):
            raise ValueError(
                "response_mask: expected the packed response mask with cu_seqlens (this model finds the response "
                "from padded input_ids otherwise), got None"
            )
        hidden, outputs = self.packed_backbone_hidden_states(
            input_ids, position_ids, token_index, cu_seqlens, max_seqlen, **kwargs
        )
        head_output = self.head(hidden, None, response_mask, cu_seqlens=cu_seqlens, max_seqlen=max_seqlen)
        return AdaJudgeRewardOutput.from_head(head_output, hidden_states=outputs.hidden_states)
