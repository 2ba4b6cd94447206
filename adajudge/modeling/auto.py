"""Registration with transformers' Auto classes, run when `adajudge` (or `adajudge.modeling`) is imported.

After it, `AutoConfig.from_pretrained(folder)` returns an `AdaJudgeConfig` and
`AutoModelForSequenceClassification.from_pretrained(folder)` an `AdaJudgeForRewardModeling` for a folder
written by adajudge, with no `trust_remote_code` and no code in the folder; so do `pipeline(...)` and TRL's
trainers, which load through them.
"""
from transformers import AutoConfig, AutoModelForSequenceClassification

from adajudge.modeling.configuration import MODEL_TYPE, AdaJudgeConfig
from adajudge.modeling.modeling import AdaJudgeForRewardModeling


def register_auto_classes() -> None:
    """Register `AdaJudgeConfig` under its model type and `AdaJudgeForRewardModeling` for it (idempotent)."""
    AutoConfig.register(MODEL_TYPE, AdaJudgeConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(AdaJudgeConfig, AdaJudgeForRewardModeling, exist_ok=True)
