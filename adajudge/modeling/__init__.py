"""transformers models with adajudge heads: `AdaJudgeForRewardModeling` and `replace_reward_head`.

Importing this package (which `import adajudge` does) registers the model with transformers' Auto classes.
"""
from adajudge.modeling.auto import register_auto_classes
from adajudge.modeling.configuration import AdaJudgeConfig
from adajudge.modeling.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.output import AdaJudgeRewardOutput
from adajudge.modeling.replace_head import replace_reward_head

register_auto_classes()

__all__ = ["AdaJudgeConfig", "AdaJudgeForRewardModeling", "AdaJudgeRewardOutput", "replace_reward_head"]
