"""adajudge: Triton kernels and drop-in heads for reward models.

Three systems, one library:

- AdaJudge (arXiv 2601.08097): refinement blocks, depth gate, multi-view pooling and a router.
- NormBT (arXiv 2512.06343): Bradley-Terry with a per-pair weight from the representation distance.
- RRM (arXiv 2505.14674): a generative pairwise judge with knockout and ELO tournaments.

`adajudge.ops` holds the fused ops, `adajudge.reference` their plain PyTorch definitions, `adajudge.nn` the
modules. The transformers wrapper is imported lazily so that `import adajudge` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "AdaJudgeConfig": "adajudge.modeling.configuration",
    "AdaJudgeForRewardModeling": "adajudge.modeling.modeling",
    "replace_reward_head": "adajudge.modeling.replace_head",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adajudge' has no attribute {name!r}")
