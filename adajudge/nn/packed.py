"""The packed layout inside the heads: `N` sequences' tokens concatenated, `[total, D]`, with `cu_seqlens`.

`PackedSequences` carries the boundaries through one head forward and derives, once, what the layers need:
the sequence of each token (`token_sequence`, for the depth gate's per-sequence weights and the plain
poolings) and the block-diagonal layout of the attention fallback (`block_layout`).
"""
from __future__ import annotations

import functools

import torch

from adajudge.data.packing import pack_rows
from adajudge.validation import check_head_inputs, check_packed_head_inputs


class PackedSequences:
    """Boundaries of `N` packed sequences of `total` tokens in all: `cu_seqlens [N+1]` (int32 or int64, from 0
    to `total`) and, optionally, `max_seqlen`, the longest.

    Attributes derived on first use and kept: `max_seqlen` (read from `cu_seqlens` when not given),
    `token_sequence [total]` int64 (the sequence of each token), `block_layout` (see `BlockLayout`).
    """

    def __init__(self, cu_seqlens: torch.Tensor, total: int, max_seqlen: int | None = None):
        self.cu_seqlens = cu_seqlens
        self.num_sequences = cu_seqlens.numel() - 1
        self.total = total
        self.given_max_seqlen = max_seqlen

    @functools.cached_property
    def max_seqlen(self) -> int:
        """The longest sequence: the one given, else read from `cu_seqlens` (one host read, on first use)."""
        if self.given_max_seqlen is not None:
            return self.given_max_seqlen
        return int((self.cu_seqlens[1:] - self.cu_seqlens[:-1]).max())

    @functools.cached_property
    def token_sequence(self) -> torch.Tensor:
        """`[total]` int64: the index of the sequence each packed token belongs to (sync-free)."""
        ends = self.cu_seqlens[1:].to(torch.int64)
        return torch.searchsorted(ends, torch.arange(self.total, device=ends.device), right=True)

    @functools.cached_property
    def block_layout(self) -> BlockLayout:
        return BlockLayout(self.cu_seqlens)


def checked_head_inputs(hidden, attention_mask, response_mask, cu_seqlens, max_seqlen, hidden_size: int):
    """Check a head's inputs, padded (`cu_seqlens` None: `check_head_inputs`) or packed
    (`check_packed_head_inputs`); returns None for padded input, else the `PackedSequences` of packed input."""
    if cu_seqlens is None:
        check_head_inputs(hidden, attention_mask, response_mask, hidden_size)
        return None
    check_packed_head_inputs(hidden, attention_mask, response_mask, cu_seqlens, max_seqlen, hidden_size)
    return PackedSequences(cu_seqlens, hidden.shape[0], max_seqlen)


class BlockLayout:
    """Where each packed token sits in `[G, W]` blocks of whole sequences, for attention with a
    block-diagonal mask (`adajudge.nn.attention.block_diagonal_attention`).

    The sequences are placed first-fit decreasing (`adajudge.data.packing.pack_rows`) into blocks of
    `W = ` the longest sequence's tokens, so a block's attention costs at most `W²` and the blocks together at
    most about `total · W` (padding a batch of `N` sequences to `W` costs `N · W²`). Reads the lengths on the
    host once.

    Attributes:
        slot: `[total]` int64, the flat index `g · W + column` of each packed token in the blocks.
        mask: `[G, 1, W, W]` bool: query and key are in the same sequence. Free slots are marked as one more
            sequence, so their rows are finite (never all-False); their outputs are discarded.
        blocks, width: `G`, `W`.
    """

    def __init__(self, cu_seqlens: torch.Tensor):
        device = cu_seqlens.device
        bounds = cu_seqlens.tolist()
        starts, lengths = bounds[:-1], [end - start for start, end in zip(bounds[:-1], bounds[1:])]
        self.width = max(max(lengths, default=0), 1)
        rows = pack_rows(lengths, self.width)
        self.blocks = max(len(rows), 1)
        block_start = [0] * len(lengths)  # flat slot of each sequence's first token
        for g, row in enumerate(rows):
            column = g * self.width
            for i in row:
                block_start[i] = column
                column += lengths[i]
        counts = torch.tensor(lengths, dtype=torch.int64)
        shift = torch.tensor(block_start, dtype=torch.int64) - torch.tensor(starts, dtype=torch.int64)
        total = bounds[-1]
        self.slot = (torch.arange(total) + shift.repeat_interleave(counts, output_size=total)).to(device)
        owner = torch.full((self.blocks * self.width,), len(lengths), dtype=torch.int64, device=device)
        owner[self.slot] = torch.arange(len(lengths), device=device).repeat_interleave(counts.to(device), output_size=total)
        owner = owner.view(self.blocks, self.width)
        self.mask = (owner[:, :, None] == owner[:, None, :])[:, None]
