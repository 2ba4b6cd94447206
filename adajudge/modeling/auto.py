"""Registration with transformers' Auto classes, in two steps, so that `import adajudge` stays light.

After `import adajudge`, `AutoConfig.from_pretrained(folder)` returns an `AdaJudgeConfig` and
`AutoModelForSequenceClassification.from_pretrained(folder)` an `AdaJudgeForRewardModeling` for a folder
written by adajudge, with no `trust_remote_code` and no code in the folder; so do `pipeline(...)` and TRL's
trainers, which load through them.

1. `import adajudge` calls `register_with_transformers`: `AutoConfig.register(MODEL_TYPE, AdaJudgeConfig)`,
   which imports transformers' configuration code and `adajudge.modeling.configuration` only.
2. Building an `AdaJudgeConfig` (which every Auto-class path does before it looks up the model class:
   `AutoConfig.from_pretrained`, `from_config(config)`, `for_model`), or unpickling one, calls
   `register_model`, which imports the model code and registers it with `AutoModelForSequenceClassification`.

transformers (5.17 to 5.25) offers no lazier way: `AutoConfig.register` and `AutoModel*.register` store class
objects, and the name-based lazy loading of its own models resolves names inside `transformers.models` only.
This module imports transformers inside its functions: importing it costs nothing.
"""
import functools
import importlib.metadata
import importlib.util
import warnings

# The oldest transformers adajudge.modeling is tested with: pyproject.toml's lower bound (a test keeps the two equal).
TRANSFORMERS_FLOOR = "5.17"


def register_with_transformers() -> bool:
    """Register `AdaJudgeConfig` with `AutoConfig` (idempotent). Returns False, and registers nothing, when
    transformers is not installed, or (with a warning) when it is older than `TRANSFORMERS_FLOOR`."""
    if importlib.util.find_spec("transformers") is None:
        return False
    from packaging.version import Version  # a dependency of transformers

    version = importlib.metadata.version("transformers")
    if Version(version) < Version(TRANSFORMERS_FLOOR):
        warnings.warn(f"adajudge: transformers {version} is older than {TRANSFORMERS_FLOOR}, which adajudge.modeling "
                      "needs; AdaJudge models are not registered with the Auto classes", stacklevel=3)
        return False
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from adajudge.modeling.configuration import LEGACY_MODEL_TYPES, MODEL_TYPE, AdaJudgeConfig

    AutoConfig.register(MODEL_TYPE, AdaJudgeConfig, exist_ok=True)
    # The model types of earlier versions map to AdaJudgeConfig too, so their folders still load.
    # `AutoConfig.register` refuses a name other than the class's `model_type`: the aliases go into its mapping.
    for legacy in LEGACY_MODEL_TYPES:
        CONFIG_MAPPING.register(legacy, AdaJudgeConfig, exist_ok=True)
    return True


@functools.cache
def register_model() -> None:
    """Register `AdaJudgeForRewardModeling` for `AdaJudgeConfig` with `AutoModelForSequenceClassification`
    (once per process; `AdaJudgeConfig` calls it when built)."""
    from transformers import AutoModelForSequenceClassification

    from adajudge.modeling.configuration import AdaJudgeConfig
    from adajudge.modeling.modeling import AdaJudgeForRewardModeling

    AutoModelForSequenceClassification.register(AdaJudgeConfig, AdaJudgeForRewardModeling, exist_ok=True)
