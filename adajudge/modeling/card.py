"""The model card (README.md) that `AdaJudgeForRewardModeling.save_pretrained` writes beside the weights.

Front matter for the Hugging Face Hub (`library_name: adajudge`, `pipeline_tag: text-classification`), then
one table (backbone, head and its options, adapters, how inputs without a response mask are read, loss,
data, held-out accuracy) and the commands that load and use the folder.
"""
from __future__ import annotations

import json

NOT_RECORDED = "not recorded (`adajudge train` records it)"

HOW_TO_LOAD = """\
## How to load

The folder needs the `adajudge` package (`pip install adajudge`): importing it registers the model with
transformers' Auto classes. Without it, transformers stops at config.json with an error whose quoted model
type says to install and import adajudge.

```python
import adajudge  # registers AdaJudgeForRewardModeling with AutoModelForSequenceClassification
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

model = AutoModelForSequenceClassification.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")  # when the tokenizer was saved here
conversation = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]
scorer = pipeline("text-classification", model="path/to/this/folder", function_to_apply="none")
reward = scorer(tokenizer.apply_chat_template(conversation, tokenize=False))[0]["score"]
```

As the reward of TRL's RLHF trainers: `GRPOTrainer(..., reward_funcs="path/to/this/folder")`, or a function
built by `adajudge.eval.reward_fn_from_model(model, tokenizer)`, which also passes the response mask.
"""


def _options(options: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in options.items()) or "defaults"


def _training_rows(summary: dict) -> list[tuple[str, str]]:
    loss = summary.get("loss")
    if loss is not None:
        loss = f"`{loss}` ({_options(summary.get('loss_options') or {})})"
    data = summary.get("data")
    if data is not None:
        data = ", ".join(f"`{name}`" for name in data)
        if summary.get("train_pairs") is not None:
            data += f"; {summary['train_pairs']} training pairs"
        if summary.get("epochs") is not None:
            data += f", {summary['epochs']} epochs"
    accuracy = summary.get("heldout_accuracy")
    if accuracy is not None:
        accuracy = f"{accuracy:.3f} on {summary.get('heldout_pairs', '?')} held-out pairs"
    elif summary.get("heldout_pairs") == 0:
        accuracy = "none: no pairs were held out"
    return [
        ("loss", loss or NOT_RECORDED),
        ("data", data or NOT_RECORDED),
        ("held-out accuracy", accuracy or NOT_RECORDED),
    ]


def model_card(model) -> str:
    """The README.md text for `model` (an `AdaJudgeForRewardModeling`), from its config and parameters."""
    config = model.config
    text = config.get_text_config()
    backbone_parameters = sum(p.numel() for p in model.backbone.parameters())
    head_parameters = sum(p.numel() for p in model.head.parameters())
    source = getattr(text, "_name_or_path", "") or "unknown"
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
        ("backbone", f"`{text.model_type}` from `{source}`: {backbone_parameters:,} parameters, "
                     f"D = {config.hidden_size}, {getattr(text, 'num_hidden_layers', '?')} layers"),
        ("head", f"`{config.head}` ({_options(config.head_options)}): {head_parameters:,} parameters"),
        ("adapters", adapters),
        ("inputs without a response mask", convention),
        *_training_rows(config.training_summary or {}),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        "---\nlibrary_name: adajudge\npipeline_tag: text-classification\ntags:\n- reward-model\n- adajudge\n---\n\n"
        f"# Reward model: `{config.head}` head on `{text.model_type}`\n\n"
        "An `adajudge.AdaJudgeForRewardModeling`: the backbone's last hidden states scored by an adajudge\n"
        "reward head; `logits [B, 1]` is the reward.\n\n"
        f"| | |\n|---|---|\n{table}\n\n{HOW_TO_LOAD}"
    )
