"""The model card (README.md) that `AdaJudgeForRewardModeling.save_pretrained` writes beside the weights.

Front matter for the Hugging Face Hub, written by `huggingface_hub.ModelCardData`: `library_name: adajudge`,
`pipeline_tag: text-classification`, `tags: [reward-model, adajudge]`, and, when known,
`base_model` and `license` (the backbone's, `adajudge.backbones.provenance`) and `datasets` (Hub ids of the
training data). Then one table (backbone as people name it, head and its options, adapters, how inputs
without a response mask are read, loss, data, held-out accuracy), how to install adajudge, and the commands
that load and use the folder. Nothing in it is a path of the machine that saved it.
"""
from __future__ import annotations

import json

from huggingface_hub import ModelCard, ModelCardData

from adajudge.backbones.provenance import BackboneSource

NOT_RECORDED = "not recorded (`adajudge train` records it)"

# How adajudge is installed today: from its repository, not from PyPI.
INSTALL = "adajudge is not on PyPI: clone its repository and run `pip install .` in the clone (see its README)"

HOW_TO_LOAD = f"""\
## How to load

This folder needs the `adajudge` Python package: importing it registers the model with transformers'
Auto classes (no `trust_remote_code`, no code in this folder).
{INSTALL}.
Without adajudge, transformers stops at config.json: "model type `adajudge` ... does not recognize this
architecture".

```python
import adajudge  # registers AdaJudgeForRewardModeling with AutoModelForSequenceClassification
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")  # when the tokenizer was saved here
conversation = [{{"role": "user", "content": "What is 2 + 2?"}}, {{"role": "assistant", "content": "4"}}]
scorer = pipeline("text-classification", model="path/to/this/folder", function_to_apply="none")
reward = scorer(tokenizer.apply_chat_template(conversation, tokenize=False))[0]["score"]
```

As the reward of TRL's RLHF trainers: `GRPOTrainer(..., reward_funcs="path/to/this/folder")`, or a function
built by `adajudge.eval.reward_fn_from_model(model, tokenizer)`, which also passes the response mask.
"""

_HEAD_NAMES = {"adajudge": "AdaJudge", "last": "last-token", "mean": "mean-pooling", "attn": "attention-pooling"}


def count(number: int, noun: str) -> str:
    """`number` and `noun`, plural unless the number is 1: `count(1, "epoch")` -> "1 epoch"."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _options(options: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in options.items()) or "defaults"


def backbone_name(source: BackboneSource, model_type: str) -> str:
    """The backbone as people name it: the last part of its Hub id, else "a local `<model_type>` checkpoint"."""
    return source.name.rsplit("/", 1)[-1] if source.name else f"a local `{model_type}` checkpoint"


def _backbone_row(model, source: BackboneSource) -> str:
    config, text = model.config, model.config.get_text_config()
    parameters = sum(p.numel() for p in model.backbone.parameters())
    layers = getattr(text, "num_hidden_layers", None)
    shape = f"{count(parameters, 'parameter')}, D = {config.hidden_size}"
    if layers is not None:
        shape += f", {count(layers, 'layer')}"
    if source.name:
        row = f"{backbone_name(source, text.model_type)} (`{source.name}`): `{text.model_type}` architecture, {shape}"
    else:
        row = f"a local checkpoint (no Hub name recorded): `{text.model_type}` architecture, {shape}"
    if source.weights:
        row += f"; weights {source.weights}"
    return row


def _training_rows(summary: dict) -> list[tuple[str, str]]:
    loss = summary.get("loss")
    if loss is not None:
        loss = f"`{loss}` ({_options(summary.get('loss_options') or {})})"
    data = summary.get("data")
    if data is not None:
        data = ", ".join(f"`{name}`" for name in data)
        if summary.get("datasets"):
            data += " (" + ", ".join(summary["datasets"]) + ")"
        details = []
        if summary.get("train_pairs") is not None:
            details.append(count(summary["train_pairs"], "training pair"))
        if summary.get("epochs") is not None:
            details.append(count(summary["epochs"], "epoch"))
        if details:
            data += "; " + ", ".join(details)
    accuracy = summary.get("heldout_accuracy")
    if accuracy is not None:
        pairs = summary.get("heldout_pairs")
        if pairs is None:
            accuracy = f"{accuracy:.3f}"
        else:
            accuracy = f"{accuracy:.3f} ({round(accuracy * pairs)} of {count(pairs, 'held-out pair')})"
    elif summary.get("heldout_pairs") == 0:
        accuracy = "none: no pairs were held out"
    return [
        ("loss", loss or NOT_RECORDED),
        ("data", data or NOT_RECORDED),
        ("held-out accuracy", accuracy or NOT_RECORDED),
    ]


def card_data(model) -> ModelCardData:
    """The Hub metadata of `model`'s card (module docstring)."""
    config = model.config
    source = BackboneSource.from_dict(config.backbone_source)
    summary = config.training_summary or {}
    return ModelCardData(
        library_name="adajudge",
        pipeline_tag="text-classification",
        tags=["reward-model", "adajudge"],
        base_model=source.name,
        license=source.license,
        datasets=list(summary["datasets"]) if summary.get("datasets") else None,
    )


def model_card(model) -> ModelCard:
    """The model card of `model` (an `AdaJudgeForRewardModeling`), from its config and parameters; `str()` of
    it is the README.md text."""
    config = model.config
    text = config.get_text_config()
    source = BackboneSource.from_dict(config.backbone_source)
    head_parameters = sum(p.numel() for p in model.head.parameters())
    if config.lora is not None:
        adapters = f"LoRA ({_options(config.lora)}); other backbone weights frozen"
    else:
        adapters = "none; backbone frozen" if config.freeze_backbone else "none; backbone trained"
    convention = {
        "adajudge": "every real token is response; positions count real tokens (either padding side)",
        "sequence_classification": "as the transformers sequence classifier it came from (`replace_reward_head`)",
    }[config.input_convention]
    if config.input_convention == "adajudge" and config.response_header_ids:
        convention = (f"the response is what follows the last chat generation prompt (ids "
                      f"{config.response_header_ids}), as in training; positions count real tokens")
    rows = [
        ("backbone", _backbone_row(model, source)),
        ("head", f"`{config.head}` ({_options(config.head_options)}): {count(head_parameters, 'parameter')}"),
        ("adapters", adapters),
        ("inputs without a response mask", convention),
        *_training_rows(config.training_summary or {}),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    body = (
        f"# Reward model: {_HEAD_NAMES[config.head]} head on {backbone_name(source, text.model_type)}\n\n"
        "An `adajudge.AdaJudgeForRewardModeling`: the backbone's last hidden states scored by an adajudge\n"
        "reward head; `logits [B, 1]` is the reward.\n\n"
        f"| | |\n|---|---|\n{table}\n\n{HOW_TO_LOAD}"
    )
    return ModelCard(f"---\n{card_data(model).to_yaml()}\n---\n\n{body}")
