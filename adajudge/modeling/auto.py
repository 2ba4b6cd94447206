"""Registration with transformers' Auto classes, run when `adajudge` (or `adajudge.modeling`) is imported.

After it, `AutoConfig.from_pretrained(folder)` returns an `AdaJudgeConfig` and
`AutoModelForSequenceClassification.from_pretrained(folder)` an `AdaJudgeForRewardModeling` for a folder
written by adajudge, with no `trust_remote_code` and no code in the folder; so do `pipeline(...)` and TRL's
trainers, which load through them.
"""
from transformers import AutoConfig, AutoModelForSequenceClassification
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from adajudge.modeling.configuration import LEGACY_MODEL_TYPES, MODEL_TYPE, AdaJudgeConfig
from adajudge.modeling.modeling import AdaJudgeForRewardModeling


def register_auto_classes() -> None:
    """Register `AdaJudgeConfig` under its model type and `AdaJudgeForRewardModeling` for it (idempotent).

    The model types of earlier versions (`LEGACY_MODEL_TYPES`) map to `AdaJudgeConfig` too, so their folders
    still load; `AutoConfig.register` refuses a name other than the class's `model_type`, so these aliases go
    into the same mapping through its own `register`.
    """
    AutoConfig.register(MODEL_TYPE, AdaJudgeConfig, exist_ok=True)
    for legacy in LEGACY_MODEL_TYPES:
        CONFIG_MAPPING.register(legacy, AdaJudgeConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(AdaJudgeConfig, AdaJudgeForRewardModeling, exist_ok=True)
