"""Calling a user's `reward_fn` in batches and checking what it returns.

`reward_fn(prompts: list[str], responses: list[str]) -> list[float]` scores each (prompt, response) pair
independently. The scorers hand it at most `batch_size` pairs per call, so a function that runs a model
(see `reward_fn_from_model`) or calls a server sees bounded batches.
"""
import math
import numbers
from collections.abc import Callable, Sequence

from adajudge.validation import check_callable, check_int

RewardFn = Callable[[list[str], list[str]], Sequence[float]]

DEFAULT_BATCH_SIZE = 256


def compute_rewards(reward_fn: RewardFn, prompts: list[str], responses: list[str], *,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> list[float]:
    """Rewards for `zip(prompts, responses)`, one per pair, in order.

    `reward_fn` may return a list, tuple, 1-D numpy array or 1-D tensor of real numbers; it must return
    exactly one real number per pair (NaN is refused: it would silently count as a lost comparison).
    Integers stay `int` and the rest become `float`, so comparisons are exact.
    """
    check_callable("reward_fn", reward_fn)
    batch_size = check_int("batch_size", batch_size, at_least=1)
    rewards: list[float] = []
    for start in range(0, len(prompts), batch_size):
        stop = min(start + batch_size, len(prompts))
        returned = reward_fn(prompts[start:stop], responses[start:stop])
        rewards.extend(_check_returned(returned, start, stop))
    return rewards


def _check_returned(returned, start: int, stop: int) -> list[float]:
    name = f"reward_fn(pairs [{start}:{stop}])"
    if hasattr(returned, "tolist") and not isinstance(returned, (list, tuple)):
        returned = returned.tolist()  # numpy array / torch tensor -> nested Python lists
    if isinstance(returned, (str, bytes)) or not isinstance(returned, Sequence):
        raise TypeError(f"{name}: expected a list of floats, got {type(returned).__name__}")
    if len(returned) != stop - start:
        raise ValueError(f"{name}: expected {stop - start} rewards (one per response), got {len(returned)}")
    values = []
    for offset, value in enumerate(returned):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}[{offset}]: expected a real number, got {type(value).__name__} ({value!r})")
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{name}[{offset}]: expected a real number, got NaN")
        values.append(value)
    return values
