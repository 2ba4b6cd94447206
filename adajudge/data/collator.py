"""Batch preference pairs in the TRL layout (chosen sequences first, then rejected): padded into `[2N, T]`
(`PreferenceCollator`) or packed into rows without padding (`PackedPreferenceCollator`, docs/packing.md)."""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch

from adajudge.data.encoding import TruncationStats, encode_pair
from adajudge.data.packing import encoding_tensors, pack_encodings
from adajudge.validation import check_int

ENCODED_KEYS = ("chosen_input_ids", "chosen_response_mask", "rejected_input_ids", "rejected_response_mask")


def pad_encodings(
    encodings: Sequence[Mapping],
    pad_token_id: int,
    padding_side: str = "right",
    *,
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pad variable-length encodings into a batch.

    Args:
        encodings: B mappings with `input_ids` and `response_mask` (equal-length lists of int or 1-D tensors).
        pad_token_id: id written into padded positions.
        padding_side: "right" (pads after the tokens) or "left" (pads before them).
        pad_to_multiple_of: round the padded length T up to a multiple of this, or None.

    Returns:
        `input_ids [B, T]`, `attention_mask [B, T]`, `response_mask [B, T]`, all int64, with T the longest
        encoding (rounded up); `attention_mask` is 1 on real tokens, `response_mask` a subset of it.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side: expected 'right' or 'left', got {padding_side!r}")
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
        raise TypeError(f"pad_token_id: expected an int, got {pad_token_id!r}")
    if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1):
        raise ValueError(f"pad_to_multiple_of: expected None or an int >= 1, got {pad_to_multiple_of!r}")
    if len(encodings) == 0:
        raise ValueError("encodings: expected at least one encoding, got an empty sequence")
    rows = encoding_tensors(encodings)
    length = max(ids.numel() for ids, _ in rows)
    if pad_to_multiple_of is not None:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, length), dtype=torch.long)
    response_mask = torch.zeros((batch, length), dtype=torch.long)
    for row, (ids, mask) in enumerate(rows):
        n = ids.numel()
        span = slice(0, n) if padding_side == "right" else slice(length - n, length)
        input_ids[row, span] = ids
        attention_mask[row, span] = 1
        response_mask[row, span] = mask
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


class PreferenceCollator:
    """Collate preference examples into one stacked batch: rows `0..N-1` chosen, rows `N..2N-1` rejected.

    Examples are either raw `{"prompt", "chosen", "rejected"[, "margin", "weight"]}` (str or chat messages;
    tokenised with `encode_pair` and the truncation policy of `adajudge.data.encoding`) or already encoded
    (`chosen_input_ids`, `chosen_response_mask`, `rejected_input_ids`, `rejected_response_mask`, e.g. from
    `encode_pairs` or a `datasets.map`). A raw pair whose response cannot fit is dropped from the batch,
    counted in `self.stats` and reported with a warning the first time.

    Args:
        tokenizer: its `pad_token_id` pads; it tokenises raw examples.
        max_length: longest sequence for raw examples.
        padding_side: "right" or "left"; default the tokenizer's `padding_side`.
        pad_to_multiple_of: optional rounding of the padded length.

    Returns (from `__call__`):
        `input_ids`, `attention_mask`, `response_mask`: int64 `[2N, T]`; `margin`, `weight`: fp32 `[N]` when the
        examples carry them (all or none of a batch must).
    """

    def __init__(self, tokenizer, max_length: int = 1024, padding_side: str | None = None, pad_to_multiple_of=None):
        if tokenizer.pad_token_id is None:
            raise ValueError(
                "tokenizer.pad_token_id: expected a pad token, got None; set one, e.g. "
                "`tokenizer.pad_token = tokenizer.eos_token` (masks, not ids, mark padding here)"
            )
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length: expected an int >= 1, got {max_length!r}")
        padding_side = padding_side if padding_side is not None else getattr(tokenizer, "padding_side", "right")
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side: expected 'right' or 'left', got {padding_side!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.stats = TruncationStats()
        self._warned = False

    def _encode(self, examples: Sequence[Mapping]) -> list[dict]:
        encoded = []
        for index, example in enumerate(examples):
            if not isinstance(example, Mapping):
                raise TypeError(f"examples[{index}]: expected a mapping, got {type(example).__name__}")
            if all(key in example for key in ENCODED_KEYS):
                encoded.append(example)
                continue
            item = encode_pair(self.tokenizer, example, max_length=self.max_length, stats=self.stats)
            if item is not None:
                encoded.append(item)
        dropped = len(examples) - len(encoded)
        if dropped and not self._warned:
            warnings.warn(
                f"PreferenceCollator dropped {dropped} pair(s) whose response exceeds max_length={self.max_length} "
                f"(running count in collator.stats: {self.stats})",
                stacklevel=3,
            )
            self._warned = True
        if not encoded:
            raise ValueError(
                f"examples: all {len(examples)} pairs were dropped (responses longer than "
                f"max_length={self.max_length}); raise max_length or filter the data with encode_pairs"
            )
        return encoded

    def _sequences(self, examples: Sequence[Mapping]) -> tuple[list[dict], list[dict]]:
        """`(encoded pairs, sequences)`: the kept pairs, and their `{input_ids, response_mask}` sequences in the
        TRL order (every chosen one, then every rejected one)."""
        if len(examples) == 0:
            raise ValueError("examples: expected at least one preference example, got none")
        encoded = self._encode(examples)
        sequences = [{"input_ids": e[f"{side}_input_ids"], "response_mask": e[f"{side}_response_mask"]}
                     for side in ("chosen", "rejected") for e in encoded]
        return encoded, sequences

    @staticmethod
    def _pair_columns(encoded: list[dict]) -> dict[str, torch.Tensor]:
        """`margin` / `weight` `[N]` fp32 when the pairs carry them (all or none of a batch must)."""
        columns = {}
        for key in ("margin", "weight"):
            present = [e.get(key) is not None for e in encoded]
            if any(present) and not all(present):
                raise ValueError(
                    f"examples: {key!r} is given for {sum(present)} of {len(present)} pairs; give it for all or none"
                )
            if all(present):
                columns[key] = torch.tensor([float(e[key]) for e in encoded], dtype=torch.float32)
        return columns

    def __call__(self, examples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        encoded, sequences = self._sequences(examples)
        batch = pad_encodings(
            sequences, self.tokenizer.pad_token_id, self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of
        )
        return {**batch, **self._pair_columns(encoded)}


class PackedPreferenceCollator(PreferenceCollator):
    """Collate preference examples into a packed batch: whole sequences side by side in rows of at most
    `row_tokens` tokens, no padding but the rows' tails (`adajudge.data.packing`, docs/packing.md).

    Examples and the truncation policy are `PreferenceCollator`'s (raw or already encoded pairs; a sequence
    is at most `max_length` tokens, the prompt cut first, a pair whose response cannot fit dropped and
    counted in `self.stats`). `AdaJudgeForRewardModeling` takes the batch as it is (`model(**batch)`) and
    returns the rewards in the TRL order: the first N chosen, the next N rejected.

    Args:
        tokenizer: its `pad_token_id` fills the rows' tails; it tokenises raw examples.
        max_length: longest sequence for raw examples.
        row_tokens: the most tokens in a row, at least `max_length` (so every sequence fits); default None:
            each batch's rows are as long as its longest sequence *(ours)*. A row's attention costs its length
            squared (SDPA with a block-diagonal mask computes every block), so rows as long as the longest
            sequence cost about what the real tokens cost, `total × longest`, no more than padding
            (`sequences × longest²`), while rows of `max_length` can cost more than padding when the batch is
            short; on the hh-rlhf harmless test split (16 pairs per batch, max_length 1024) they also leave
            shorter tails: 6.5 % of the row tokens against 8.8 %. With flash-attention the rows do not matter.

    Returns (from `__call__`):
        `input_ids`, `position_ids` int64 `[R, L]`; `token_index`, `response_mask` int64 `[total]`;
        `cu_seqlens` int32 `[2N+1]`; `max_seqlen` int; `margin`, `weight` fp32 `[N]` when the examples carry
        them.
    """

    def __init__(self, tokenizer, max_length: int = 1024, row_tokens: int | None = None):
        super().__init__(tokenizer, max_length=max_length)
        if row_tokens is not None:
            check_int("row_tokens", row_tokens, at_least=max_length)
        self.row_tokens = row_tokens

    def __call__(self, examples: Sequence[Mapping]) -> dict:
        encoded, sequences = self._sequences(examples)
        longest = max(len(sequence["input_ids"]) for sequence in sequences)
        budget = self.row_tokens or self.max_length
        if longest > budget:
            raise ValueError(
                f"examples: a sequence has {longest} tokens, more than {budget} (max_length / row_tokens); encoded "
                "examples must respect the truncation policy (encode_pairs with the collator's max_length)"
            )
        batch = pack_encodings(sequences, self.tokenizer.pad_token_id, self.row_tokens or max(longest, 1))
        return {**batch, **self._pair_columns(encoded)}
