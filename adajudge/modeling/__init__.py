"""transformers models with adajudge heads: `AdaJudgeForRewardModeling` and `replace_reward_head`.

The names below load their module on first access (PEP 562), so `import adajudge` (which imports
`adajudge.modeling.auto` to register the config with `AutoConfig`) does not import the model code.
"""
import importlib

# public name -> the module of this package that defines it
_MODULES = {
    "AdaJudgeConfig": "configuration",
    "AdaJudgeForRewardModeling": "modeling",
    "AdaJudgeRewardOutput": "output",
    "replace_reward_head": "replace_head",
}

__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(f"adajudge.modeling.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'adajudge.modeling' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
