"""Where a case's free choices come from: hypothesis (`adajudge.testing.strategies`, which shrinks a failing
case to a small one) or a seeded `random.Random` (the fixed cases `check_op` runs without hypothesis).

The case builders in `adajudge.testing.cases` ask only these four questions, so both sources draw from the
same distributions. Each question's first or lowest answer is the simplest, which is where hypothesis
shrinks to.
"""
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Choices(Protocol):
    def integer(self, low: int, high: int) -> int:
        """An int in [low, high] (simplest: low)."""

    def boolean(self) -> bool:
        """True or False (simplest: False)."""

    def sample(self, options: Sequence[T]) -> T:
        """One of `options` (simplest: the first)."""

    def real(self, low: float, high: float) -> float:
        """A float in [low, high]."""


class SeededChoices:
    """`Choices` from `random.Random(seed)`: the same seed gives the same case on every machine."""

    def __init__(self, seed: int | str):
        self._random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def boolean(self) -> bool:
        return self._random.random() < 0.5

    def sample(self, options: Sequence[T]) -> T:
        return options[self._random.randrange(len(options))]

    def real(self, low: float, high: float) -> float:
        return self._random.uniform(low, high)
