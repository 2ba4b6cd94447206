"""Padding-free batches: whole sequences packed into rows under a token budget (docs/packing.md).

A padded batch of `B` sequences is `[B, T]` with `T` the longest, so every sequence pays for the longest one;
on the hh-rlhf harmless test split, 64 % of a 16-pair batch's tokens are padding (`python -m bench.packing`).
A packed batch places whole sequences side by side in rows of at most `row_tokens` tokens (first-fit
decreasing: longest first, each into the first row with room), so only the rows' tails are padding:

- `input_ids [R, L]` int64: the rows (`L` the longest row, at most `row_tokens`; `PackedPreferenceCollator`
  makes rows as long as the batch's longest sequence by default), `pad_token_id` after each row's last
  sequence.
- `position_ids [R, L]` int64: `0, 1, ...` within each sequence (the positions it has alone); 0 on the tails.
  transformers' attention reads the sequence boundaries from them (no attention across two sequences).
- `token_index [total]` int64: where each packed token sits in the flattened rows (`input_ids.view(-1)`),
  sequences in the TRL order (chosen 0..N-1, then rejected 0..N-1), tokens in order.
- `cu_seqlens [2N+1]` int32 and `max_seqlen` (int): the boundaries of those sequences in the packed order, as
  flash-attn's varlen functions and `adajudge.ops.multiview_pool` take them.
- `response_mask [total]` int64, packed the same way.

No sequence is ever split across rows; a sequence is at most the collator's `max_length`, which the
truncation policy of `adajudge.data.encoding` enforces (the prompt is cut first; a response that cannot fit
drops the pair), and rows are at least as long as the longest sequence, so every sequence fits a row.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from adajudge.validation import check_int

PACKED_KEYS = ("input_ids", "position_ids", "token_index", "cu_seqlens", "max_seqlen", "response_mask")


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Place sequences of `lengths` into rows of at most `row_tokens` tokens, first-fit decreasing.

    Longest first (ties by index), each sequence goes into the first row that still has room, else opens a
    row. Deterministic. Returns the rows, each the list of its sequences' indices in placement order.

    Raises:
        ValueError: `row_tokens < 1`, or a length that is negative or longer than `row_tokens` (sequences
            are never split).
    """
    check_int("row_tokens", row_tokens, at_least=1)
    for index, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"lengths[{index}]: expected an int >= 0, got {length!r}")
        if length > row_tokens:
            raise ValueError(
                f"lengths[{index}]: expected at most row_tokens={row_tokens} tokens (a sequence is never split "
                f"across rows), got {length}"
            )
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if row is None:
            rows.append([])
            room.append(row_tokens)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= lengths[index]
    return rows


def encoding_tensors(encodings: Sequence[Mapping]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`(input_ids, response_mask)` int64 1-D tensors of each encoding (lists of int or 1-D tensors).

    Raises:
        ValueError: an encoding whose two entries are not 1-D of one length.
    """
    sequences = []
    for index, encoding in enumerate(encodings):
        ids = torch.as_tensor(encoding["input_ids"], dtype=torch.long)
        mask = torch.as_tensor(encoding["response_mask"], dtype=torch.long)
        if ids.dim() != 1 or ids.shape != mask.shape:
            raise ValueError(
                f"encodings[{index}]: expected 1-D input_ids and response_mask of equal length, got shapes "
                f"{tuple(ids.shape)} and {tuple(mask.shape)}"
            )
        sequences.append((ids, mask))
    return sequences


def pack_encodings(encodings: Sequence[Mapping], pad_token_id: int, row_tokens: int) -> dict:
    """Pack encodings (`input_ids`, `response_mask`: equal-length int lists or 1-D tensors) into rows.

    Args:
        encodings: the `S` sequences in the order the packed layout keeps (a preference batch: chosen rows,
            then rejected rows).
        pad_token_id: id written on the rows' tails.
        row_tokens: the most tokens in a row.

    Returns:
        The packed batch of the module docstring (`input_ids`, `position_ids`, `token_index`, `cu_seqlens`,
        `max_seqlen`, `response_mask`), sequences in the order of `encodings`.
    """
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
        raise TypeError(f"pad_token_id: expected an int, got {pad_token_id!r}")
    if len(encodings) == 0:
        raise ValueError("encodings: expected at least one encoding, got an empty sequence")
    sequences = encoding_tensors(encodings)
    lengths = [ids.numel() for ids, _ in sequences]
    rows = pack_rows(lengths, row_tokens)
    width = max(max(sum(lengths[i] for i in row) for row in rows), 1)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    starts = [0] * len(sequences)  # flat position of each sequence's first token in the rows
    for r, row in enumerate(rows):
        column = 0
        for i in row:
            n = lengths[i]
            input_ids[r, column : column + n] = sequences[i][0]
            position_ids[r, column : column + n] = torch.arange(n)
            starts[i] = r * width + column
            column += n
    token_index = torch.cat(
        [torch.arange(start, start + n) for start, n in zip(starts, lengths)] or [torch.empty(0, dtype=torch.long)]
    )
    cu_seqlens = torch.tensor([0, *lengths]).cumsum(0).to(torch.int32)
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "token_index": token_index,
        "cu_seqlens": cu_seqlens,
        "max_seqlen": max(lengths),
        "response_mask": torch.cat([mask for _, mask in sequences]),
    }


def is_packed(batch: Mapping) -> bool:
    """Whether `batch` is in the packed layout (it has `cu_seqlens`) rather than the padded one."""
    return batch.get("cu_seqlens") is not None


def token_counts(batch: Mapping) -> dict[str, int]:
    """What one batch costs, in tokens: `{"tokens", "padded_tokens", "computed_tokens"}`.

    - `tokens`: real tokens (the sequences' lengths summed).
    - `padded_tokens`: what a padded batch of the same sequences holds, `sequences × longest`
      (`PreferenceCollator` without `pad_to_multiple_of`).
    - `computed_tokens`: the token positions the batch runs through the model: `[B, T]` padded, the rows'
      `R × L` packed (their tails included), or the packed total for cached features (no rows).

    Takes a padded batch (`attention_mask [B, T]`) or a packed one (`cu_seqlens`, `max_seqlen`), of token
    ids or of cached features (`hidden`). Reads the counts on the host.
    """
    if is_packed(batch):
        cu_seqlens = batch["cu_seqlens"]
        sequences = cu_seqlens.numel() - 1
        tokens = int(cu_seqlens[-1])
        rows = batch.get("input_ids")
        computed = rows.numel() if rows is not None else tokens
        return {"tokens": tokens, "padded_tokens": sequences * int(batch["max_seqlen"]), "computed_tokens": computed}
    mask = batch["attention_mask"]
    return {"tokens": int(mask.sum()), "padded_tokens": mask.numel(), "computed_tokens": mask.numel()}
