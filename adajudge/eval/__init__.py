"""Benchmark scoring with the official rules: RewardBench, RM-Bench, JudgeBench.

The scorers take rows (dicts, as the `loaders` read them from the benchmarks' files) and a
`reward_fn(prompts: list[str], responses: list[str]) -> list[float]`; RewardBench and JudgeBench also take
a pairwise `judge_fn(question, answer_1, answer_2) -> 1 | 2 | None`, scored with their official generative
protocols (a judge that reorders answers itself opts in with `judge_in_order`, see `adajudge.eval._judge`;
`adajudge.rrm.PairwiseJudge` has it). Every figure is a percentage (0-100).
`reward_fn_from_model(model, tokenizer)` builds a `reward_fn` from a reward model; it is imported lazily so
that scoring alone needs neither torch nor transformers.

    >>> from adajudge.eval import loaders, score_rm_bench, reward_fn_from_model
    >>> rows = loaders.load_rm_bench("../shared/data/rm-bench-chat.json")
    >>> score_rm_bench(rows, reward_fn_from_model(model, tokenizer))
    {'hard': ..., 'normal': ..., 'easy': ..., 'avg': ..., 'ci95': {...}, ...}
"""
from adajudge.eval import loaders
from adajudge.eval.judgebench import score_judgebench
from adajudge.eval.rewardbench import score_rewardbench
from adajudge.eval.rm_bench import score_rm_bench

__all__ = ["loaders", "reward_fn_from_model", "score_judgebench", "score_rewardbench", "score_rm_bench"]


def __getattr__(name):
    if name == "reward_fn_from_model":
        from adajudge.eval.adapter import reward_fn_from_model

        return reward_fn_from_model
    raise AttributeError(f"module 'adajudge.eval' has no attribute {name!r}")
