"""Batches cut by a token budget instead of a pair count, so that every step carries about the same tokens.

With packing (docs/packing.md) a step costs its real tokens, not `pairs × longest`; a fixed number of pairs per
step then gives steps of very different cost and memory.
`token_budget_batches` visits the pairs in the same seeded order as fixed-size batches (`randperm` of a
generator seeded with `seed + epoch`) and closes a batch when the next pair would take it over `max_tokens`;
so each batch holds between `max_tokens − longest pair` and `max_tokens` tokens, and a varying number of pairs
*(ours: greedy in visiting order, as fairseq's `max_tokens` batching; no sorting by length, which would make
the batches' content depend on length)*.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from adajudge.validation import check_int


def visiting_order(num_pairs: int, seed: int, epoch: int) -> list[int]:
    """The pairs' order in epoch `epoch`: `randperm(num_pairs)` of a generator seeded with `seed + epoch`."""
    return torch.randperm(num_pairs, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


def token_budget_batches(pair_tokens: Sequence[int], max_tokens: int, *, seed: int = 0, epoch: int = 0) -> list[list[int]]:
    """Batches of pair indices holding at most `max_tokens` tokens each, in the seeded visiting order.

    Args:
        pair_tokens: tokens of each pair (its chosen and rejected sequences together).
        max_tokens: the budget of one batch; at least the largest entry of `pair_tokens`.
        seed, epoch: the visiting order is `visiting_order(len(pair_tokens), seed, epoch)`.

    Raises:
        ValueError: `max_tokens` below the largest pair, or a negative entry.
    """
    check_int("max_tokens", max_tokens, at_least=1)
    if not pair_tokens:
        return []
    if min(pair_tokens) < 0:
        raise ValueError(f"pair_tokens: expected counts >= 0, got {min(pair_tokens)}")
    if max(pair_tokens) > max_tokens:
        raise ValueError(
            f"max_tokens: expected at least the largest pair's {max(pair_tokens)} tokens (a pair is never split), "
            f"got {max_tokens}"
        )
    batches, batch, tokens = [], [], 0
    for index in visiting_order(len(pair_tokens), seed, epoch):
        if batch and tokens + pair_tokens[index] > max_tokens:
            batches.append(batch)
            batch, tokens = [], 0
        batch.append(index)
        tokens += pair_tokens[index]
    batches.append(batch)
    return batches


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """`token_budget_batches` as a batch sampler for `torch.utils.data.DataLoader(batch_sampler=...)`.

    Call `set_epoch(epoch)` before each epoch (accelerate's prepared data loaders do) for a new order.

    Example:
        >>> sampler = TokenBudgetBatchSampler([len(p["chosen_input_ids"]) + len(p["rejected_input_ids"])
        ...                                    for p in pairs], max_tokens=8192)  # doctest: +SKIP
        >>> loader = DataLoader(pairs, batch_sampler=sampler, collate_fn=PackedPreferenceCollator(tok))  # doctest: +SKIP
    """

    def __init__(self, pair_tokens: Sequence[int], max_tokens: int, *, seed: int = 0):
        self.pair_tokens = list(pair_tokens)
        self.max_tokens = max_tokens
        self.seed = seed
        self.epoch = 0
        token_budget_batches(self.pair_tokens, max_tokens, seed=seed)  # check the arguments now

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        return token_budget_batches(self.pair_tokens, self.max_tokens, seed=self.seed, epoch=self.epoch)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
