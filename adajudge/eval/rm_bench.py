"""RM-Bench scoring (Liu et al., 2024; THU-KEG/RM-Bench), exactly as the official `compute_accuracy` does it.

Each row has three chosen and three rejected responses in the styles concise, detailed plain text and
detailed markdown. `A[i][j]` is the share of rows with `r(chosen_i) > r(rejected_j)` (a tie loses). Hard is
the mean of the upper triangle (`i < j`: the chosen answer is plainer than the rejected one), normal the
mean of the diagonal, easy the mean of the lower triangle; a set of rows scores `mean(hard, normal, easy)`.

Over several domains (`scripts/utils.py`: a row belongs to the first of chat, math, code, safety that its
`domain` starts with, so the safety-refuse and safety-response files are one safety domain), each domain is
scored on its own rows; the headline hard, normal and easy are each the mean over the domains, and the total
is the mean of the domains' scores. That total is `avg`, as RM-Bench names it (its results tables' "Avg",
`total_avg_acc` in its code); a domain's own mean of hard, normal and easy is its `avg` too.

Every score carries a 95% interval (`ci95`): a percentile bootstrap over rows, within each domain
(`adajudge.eval.intervals`), since each row's score averages several comparisons.
"""
import numpy as np

from adajudge.eval._rewards import DEFAULT_BATCH_SIZE, RewardFn, compute_rewards
from adajudge.eval._rows import as_rows, text_field, text_list_field
from adajudge.eval.intervals import bootstrap

STYLES: tuple[str, ...] = ("concise", "detailed_plain", "detailed_markdown")

DOMAINS: tuple[str, ...] = ("chat", "math", "code", "safety")

SCORES: tuple[str, ...] = ("hard", "normal", "easy", "avg")

CI_METHOD = "percentile bootstrap over rows, within each domain (adajudge.eval.intervals)"


def score_rm_bench(rows, reward_fn: RewardFn, *, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Score a reward function on RM-Bench rows; every figure is a percentage (0-100).

    Args:
        rows: dicts with `prompt` (str), `chosen` and `rejected` (3 str each, in `STYLES` order) and,
            optionally, `domain` (a str starting with chat, math, code or safety: `safety-refuse`, ...).
            Either every row has a `domain` or none has.
        reward_fn: `reward_fn(prompts: list[str], responses: list[str]) -> list[float]`, called with at most
            `batch_size` pairs per call.
        batch_size: most (prompt, response) pairs per `reward_fn` call.

    Returns:
        `{"hard", "normal", "easy", "avg": float, "matrix": A as 3 lists of 3 percentages, "ci95": {score:
        [low, high]}, "ci95_method": str, "counts": {"all": rows, domain: rows, ...}}`. Rows without a
        domain are scored as one set. Rows with domains add `"domains": {domain: {"hard", "normal", "easy",
        "avg", "matrix", "ci95"}}` (in the order chat, math, code, safety; only the domains present) and
        `"pooled": {"hard", "normal", "easy", "avg", "matrix", "ci95"}` over all rows as one set; the
        top-level `hard`, `normal`, `easy`, `avg` are then the means over the domains (the official
        headline), and `matrix` the mean of the domains' matrices *(ours: the official code reports no matrix
        over domains)*. Over a subset of the four domains the means are over the domains present *(ours: the
        official code needs all four; such a headline is not comparable to the official one)*.
    """
    rows = as_rows(rows)
    domains = _domains(rows)
    prompts, responses = [], []
    for index, row in enumerate(rows):
        prompt = text_field(row, index, "prompt")
        chosen = text_list_field(row, index, "chosen", len(STYLES))
        rejected = text_list_field(row, index, "rejected", len(STYLES))
        prompts.extend([prompt] * (2 * len(STYLES)))
        responses.extend(chosen + rejected)

    rewards = np.asarray(compute_rewards(reward_fn, prompts, responses, batch_size=batch_size), dtype=object)
    rewards = rewards.reshape(len(rows), 2, len(STYLES))
    # wins[row, i, j] = r(chosen_i) > r(rejected_j); object dtype keeps Python's exact int/float comparison
    wins = (rewards[:, 0, :, None] > rewards[:, 1, None, :]).astype(np.float64)

    if domains is None:
        ci = bootstrap({"all": wins}, lambda strata: _scores(_summary(strata["all"].mean(axis=0))))
        return {**_summary(wins.mean(axis=0)), "ci95": ci, "ci95_method": CI_METHOD, "counts": {"all": len(rows)}}
    present = [name for name in DOMAINS if name in domains]
    members = {name: np.array([domain == name for domain in domains]) for name in present}
    strata = {name: wins[member] for name, member in members.items()}
    result, by_domain, pooled = _over_domains(strata)
    ci = bootstrap(strata, lambda resampled: _over_domains_scores(resampled))
    result["ci95"] = ci["headline"]
    result["ci95_method"] = CI_METHOD
    result["domains"] = {name: {**scores, "ci95": ci["domains"][name]} for name, scores in by_domain.items()}
    result["pooled"] = {**pooled, "ci95": ci["pooled"]}
    result["counts"] = {"all": len(rows), **{name: int(member.sum()) for name, member in members.items()}}
    return result


def _over_domains(strata: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """(headline, per-domain summaries, pooled summary) of per-domain win arrays `[rows, 3, 3]`."""
    by_domain = {name: _summary(wins.mean(axis=0)) for name, wins in strata.items()}
    headline = {key: float(np.mean([scores[key] for scores in by_domain.values()])) for key in SCORES}
    headline["matrix"] = np.mean([scores["matrix"] for scores in by_domain.values()], axis=0).tolist()
    pooled = _summary(np.concatenate(list(strata.values())).mean(axis=0))
    return headline, by_domain, pooled


def _over_domains_scores(strata: dict[str, np.ndarray]) -> dict:
    headline, by_domain, pooled = _over_domains(strata)
    return {"headline": _scores(headline), "domains": {name: _scores(scores) for name, scores in by_domain.items()},
            "pooled": _scores(pooled)}


def _scores(summary: dict) -> dict:
    return {key: summary[key] for key in SCORES}


def _domains(rows) -> list[str] | None:
    """Each row's domain among `DOMAINS`, or None when no row has a `domain` field."""
    has_domain = ["domain" in row for row in rows]
    if not any(has_domain):
        return None
    if not all(has_domain):
        missing = has_domain.index(False)
        raise ValueError(f"rows[{missing}]: expected a 'domain' field, as the other rows have (give every row a "
                         "domain, or none), got none")
    domains = []
    for index, row in enumerate(rows):
        domain = text_field(row, index, "domain")
        matched = next((name for name in DOMAINS if domain.startswith(name)), None)
        if matched is None:
            raise ValueError(f"rows[{index}]['domain']: expected a domain starting with one of {DOMAINS}, "
                             f"got {domain!r}")
        domains.append(matched)
    return domains


def _summary(matrix: np.ndarray) -> dict:
    """Hard, normal, easy and their mean from the win-rate matrix `A [3, 3]` (fractions), in the official
    order of operations; percentages."""
    size = len(STYLES)
    pairs = size * (size - 1) / 2
    hard = np.sum(np.triu(matrix, 1)) / pairs
    normal = np.mean(np.diag(matrix))
    easy = np.sum(np.tril(matrix, -1)) / pairs
    scores = {"hard": float(hard * 100), "normal": float(normal * 100), "easy": float(easy * 100)}
    scores["avg"] = sum(scores.values()) / len(scores)
    scores["matrix"] = (matrix * 100).tolist()
    return scores
