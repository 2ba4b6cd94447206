"""adajudge: Triton kernels and drop-in heads for reward models.

Three systems, one library:

- AdaJudge (arXiv 2601.08097): refinement blocks, depth gate, multi-view pooling and a router.
- NormBT (arXiv 2512.06343): Bradley-Terry with a per-pair weight from the representation distance.
- RRM (arXiv 2505.14674): a generative pairwise judge with knockout and ELO tournaments.

`adajudge.ops` holds the fused ops, `adajudge.reference` their plain PyTorch definitions, `adajudge.nn` the
modules; they need only torch (and Triton for the kernels). `import adajudge` imports neither them nor the
transformers-facing `adajudge.modeling`: `AdaJudgeConfig`, `AdaJudgeForRewardModeling` and
`replace_reward_head` load on first use. Where transformers is installed, importing adajudge registers
`AdaJudgeConfig` with `AutoConfig` (and building one registers `AdaJudgeForRewardModeling` with
`AutoModelForSequenceClassification`, `adajudge.modeling.auto`), which lets `from_pretrained`, `pipeline` and
TRL load a saved reward model without `trust_remote_code`.
"""

__version__ = "0.1.0"

from adajudge.modeling.auto import register_with_transformers  # noqa: E402  (a light module: no transformers import)

# Loaded from `adajudge.modeling` on first access (PEP 562): they import transformers.
_MODELING_NAMES = ("AdaJudgeConfig", "AdaJudgeForRewardModeling", "replace_reward_head")

__all__ = ["__version__", *_MODELING_NAMES]


def __getattr__(name: str):
    if name in _MODELING_NAMES:
        from adajudge import modeling

        return getattr(modeling, name)
    raise AttributeError(f"module 'adajudge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODELING_NAMES})


register_with_transformers()
