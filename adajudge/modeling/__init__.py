"""transformers models with adajudge heads: `AdaJudgeForRewardModeling` and `replace_reward_head`."""
from adajudge.modeling.configuration import AdaJudgeConfig
from adajudge.modeling.modeling import AdaJudgeForRewardModeling
from adajudge.modeling.output import AdaJudgeRewardOutput
from adajudge.modeling.replace_head import replace_reward_head

__all__ = ["AdaJudgeConfig", "AdaJudgeForRewardModeling", "AdaJudgeRewardOutput", "replace_reward_head"]
