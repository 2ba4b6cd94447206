"""95% intervals for benchmark accuracies *(ours: the benchmarks' own scripts report none)*.

Two methods, each where it is valid:

- **Wilson score interval** for an accuracy that counts right/wrong units (JudgeBench pairs, RewardBench
  subsets scored by a reward model). Unlike the normal-approximation (Wald) interval it keeps close to its
  nominal 95% coverage for small samples and for accuracies near 0 or 100%, and it never leaves [0, 100]
  (Brown, Cai & DasGupta, "Interval Estimation for a Binomial Proportion", Statistical Science 2001).
- **Percentile bootstrap over rows** for a score that is not one proportion: RM-Bench's hard / normal / easy
  average 3 comparisons per row (rows, not comparisons, are the independent draws), domain means, RewardBench
  sections (weighted means of subsets) and judge scores with 0.5 for no verdict. Rows are resampled with
  replacement within each stratum (domain, subset), `RESAMPLES` times from `numpy.random.default_rng(seed)`,
  the score recomputed each time; the interval is the 2.5th and 97.5th percentiles. It cannot widen beyond
  what the rows show: an accuracy of 100% on every row gives [100, 100].
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

LEVEL = 0.95
Z = 1.959963984540054  # the standard normal quantile at 0.975
RESAMPLES = 2000

# Why each method, in the words the eval report prints.
WILSON_NOTE = ("Wilson score interval (each pair is right or wrong; unlike the normal approximation it keeps "
               "95% coverage for small samples and near 0 or 100)")
BOOTSTRAP_NOTE = (f"percentile bootstrap over rows ({RESAMPLES} resamples within each {{stratum}}, seed 0; each "
                  "score averages several comparisons or subsets, so rows are the independent draws)")


def wilson(right: float, total: int) -> list[float]:
    """The 95% Wilson score interval of `right` successes in `total` trials, as percentages `[low, high]`."""
    if total <= 0:
        raise ValueError(f"total: expected at least one trial, got {total}")
    share = right / total
    centre = share + Z**2 / (2 * total)
    spread = Z * math.sqrt(share * (1 - share) / total + Z**2 / (4 * total**2))
    scale = 1 + Z**2 / total
    return [100 * max(0.0, (centre - spread) / scale), 100 * min(1.0, (centre + spread) / scale)]


def bootstrap(strata: Mapping[str, np.ndarray], score: Callable[[dict[str, np.ndarray]], dict], *,
              resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Percentile bootstrap intervals of every number `score` returns.

    Args:
        strata: stratum name -> per-row values `[rows, ...]`; each resample draws as many rows from each
            stratum, with replacement.
        score: the statistic: strata of the same shapes -> a (nested) dict of floats, percentages.
        resamples, seed: number of resamples and the generator's seed.

    Returns:
        The dict `score` returns, each float replaced by `[low, high]` (2.5th and 97.5th percentiles).
    """
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        resampled = {name: values[rng.integers(0, len(values), len(values))] for name, values in strata.items()}
        draws.append(score(resampled))
    return _percentiles(draws)


def _percentiles(draws: list) -> dict | list[float]:
    first = draws[0]
    if isinstance(first, Mapping):
        return {key: _percentiles([draw[key] for draw in draws]) for key in first}
    low, high = np.percentile(np.asarray(draws, dtype=np.float64), [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return [float(low), float(high)]
