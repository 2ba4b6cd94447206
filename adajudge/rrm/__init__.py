"""RRM: reward modelling as text generation (arXiv 2505.14674; docs/design.md §7).

A causal LM reads a query and two answers, reasons, and ends with ``\\boxed{Assistant 1}`` or
``\\boxed{Assistant 2}``; knockout and ELO tournaments turn those pairwise verdicts into a choice
among N candidates.

- ``prompt``: the comparison prompt (``DEFAULT_PROMPT``, the RRM authors' ``RRM_PROMPT``, or your own
  ``PromptTemplate``); ``verdict``: ``parse_verdict``; ``tournaments``: ``knockout``, ``elo_ratings``,
  ``best_of_n``; ``judge``: ``PairwiseJudge`` (transformers ``generate``); ``server_judge``: ``ServerJudge``
  (the same judge generating on an OpenAI-compatible server through ``openai_engine.OpenAIEngine``);
  ``cli``: ``adajudge judge``.

The judges import torch, transformers and openai, so they are loaded on first use.
"""
from .prompt import DEFAULT_PROMPT, RRM_PROMPT, PromptTemplate
from .tournaments import EloRatings, KnockoutResult, Match, Round, best_of_n, elo_ratings, knockout
from .verdict import parse_verdict

__all__ = [
    "parse_verdict", "knockout", "elo_ratings", "best_of_n", "PairwiseJudge",
    "Judgement", "Vote", "KnockoutResult", "Round", "EloRatings", "Match",
    "PromptTemplate", "DEFAULT_PROMPT", "RRM_PROMPT", "ServerJudge", "OpenAIEngine", "ServerError",
]

_LAZY = {"PairwiseJudge": "judge", "Judgement": "judge", "Vote": "judge", "ServerJudge": "server_judge",
         "OpenAIEngine": "openai_engine", "ServerError": "openai_engine"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'adajudge.rrm' has no attribute {name!r}")
