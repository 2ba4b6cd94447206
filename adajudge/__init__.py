"""adajudge: Triton kernels and drop-in heads for reward models.

Three systems, one library:

- AdaJudge (arXiv 2601.08097): refinement blocks, depth gate, multi-view pooling and a router.
- NormBT (arXiv 2512.06343): Bradley-Terry with a per-pair weight from the representation distance.
- RRM (arXiv 2505.14674): a generative pairwise judge with knockout and ELO tournaments.

`adajudge.ops` holds the fused ops, `adajudge.reference` their plain PyTorch definitions, `adajudge.nn` the
modules. Importing adajudge registers `AdaJudgeConfig` and `AdaJudgeForRewardModeling` with transformers'
`AutoConfig` and `AutoModelForSequenceClassification` (so it imports torch and transformers), which lets
`from_pretrained`, `pipeline` and TRL load a saved reward model without `trust_remote_code`.
"""

__version__ = "0.1.0"

from adajudge.modeling import AdaJudgeConfig, AdaJudgeForRewardModeling, replace_reward_head  # noqa: E402

__all__ = ["__version__", "AdaJudgeConfig", "AdaJudgeForRewardModeling", "replace_reward_head"]
