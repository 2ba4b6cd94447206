"""Packed sequences through a transformers backbone, without padding and without attention across sequences.

A packed batch (`adajudge.data.packing`, docs/packing.md) holds rows `input_ids [R, L]` of whole sequences with
`position_ids [R, L]` restarting at 0 for every sequence, and `token_index [total]` / `cu_seqlens [N+1]` naming
the sequences. Two ways through the backbone, both what transformers offers for packed sequences:

- flash-attention (`is_flash_attention_requested(config)`: flash_attention_2/3, hub flash kernels): the
  sequences are laid end to end in one row `[1, total]`, and `cu_seq_lens_q/k`, `max_length_q/k`
  (transformers' `FlashAttentionKwargs`) go to the varlen kernel: no padding at all.
- every other implementation (sdpa, eager, flex_attention): the rows run as they are, with `attention_mask=None`
  and the restarting `position_ids`; transformers' mask builder (`masking_utils.find_packed_sequence_indices`,
  called by `create_causal_mask` when no 2-D mask and no cache are given; in transformers 5.17 and 5.25) reads
  the sequence boundaries from the position ids and builds a block-diagonal causal mask. A row's attention
  costs at most `L²`, `L` bounded by the collator's `row_tokens`.

Neither way is checked by transformers against models that build their masks otherwise (an architecture
that ignores `position_ids` there, or a cache left on, `use_cache=True`, which switches the detection off:
then the first sequence of a row would be right and the others silently wrong). So `check_packing_support`
runs the backbone once on a probe, three sequences packed into two rows against each sequence alone, and
raises `PackingUnsupportedError` when they differ.
"""
from __future__ import annotations

import torch

from adajudge.data.packing import pack_encodings
from adajudge.validation import check_tensor, check_values

# Probe sequences (token ids taken modulo the vocabulary): two share a row, the third has a row with a tail.
_PROBE = ([11, 12, 13, 14, 15], [21, 22, 23], [31, 32])
_PROBE_ROW_TOKENS = 8
# How far the probe's packed states may be from each sequence alone, relative to their size, per dtype: a
# few units of rounding (the attention sums run over other lengths); attention leaking from another
# sequence moves them by O(1).
_PROBE_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-3, torch.bfloat16: 5e-2, torch.float16: 1e-2}


class PackingUnsupportedError(ValueError):
    """The backbone does not keep packed sequences apart (see `check_packing_support`)."""


def uses_flash_varlen(config) -> bool:
    """Whether `config`'s attention implementation is a flash-attention one (takes `cu_seq_lens_q/k`)."""
    from transformers.utils.generic import is_flash_attention_requested

    return is_flash_attention_requested(config)


def packed_backbone_states(
    backbone,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    token_index: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int | None = None,
    **kwargs,
):
    """Run `backbone` on a packed batch; returns `(hidden [total, D], outputs)`.

    Args:
        backbone: a transformers base model (`AutoModel`).
        input_ids, position_ids: `[R, L]` rows, positions restarting at 0 per sequence (module docstring).
        token_index: `[total]` int64, each packed token's place in `input_ids.view(-1)`, in the packed order.
        cu_seqlens: `[N+1]` int32/int64 boundaries of the packed order; `max_seqlen`: the longest (read from
            `cu_seqlens` when None; one sync).
        **kwargs: passed to the backbone (`output_hidden_states`, ...); `use_cache` is always False.

    Returns:
        `hidden [total, D]`: the last hidden state of every packed token, in the packed order; `outputs`: the
        backbone's output (its per-layer states, if asked for, in the layout it ran: the rows, or one row).
    """
    check_tensor("input_ids", input_ids, ndim=2, dtypes=(torch.int64, torch.int32))
    check_tensor("position_ids", position_ids, shape=input_ids.shape, dtypes=(torch.int64, torch.int32),
                 device=input_ids.device)
    check_tensor("token_index", token_index, ndim=1, dtypes=(torch.int64,), device=input_ids.device)
    check_values((
        "token_index",
        lambda: (token_index < 0).any() | (token_index >= input_ids.numel()).any(),
        lambda: f"expected positions in the rows, 0 to {input_ids.numel() - 1}, got values outside",
    ))
    if uses_flash_varlen(backbone.config):
        if max_seqlen is None:
            max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
        cu_seq_lens = cu_seqlens.to(torch.int32)
        outputs = backbone(
            input_ids=input_ids.reshape(-1).index_select(0, token_index)[None],
            position_ids=position_ids.reshape(-1).index_select(0, token_index)[None],
            cu_seq_lens_q=cu_seq_lens,
            cu_seq_lens_k=cu_seq_lens,
            max_length_q=max_seqlen,
            max_length_k=max_seqlen,
            use_cache=False,
            return_dict=True,
            **kwargs,
        )
        return outputs.last_hidden_state[0], outputs
    outputs = backbone(
        input_ids=input_ids, position_ids=position_ids, attention_mask=None, use_cache=False, return_dict=True, **kwargs
    )
    hidden = outputs.last_hidden_state
    return hidden.reshape(-1, hidden.shape[-1]).index_select(0, token_index), outputs


@torch.no_grad()
def check_packing_support(backbone) -> None:
    """Check that `backbone` gives packed sequences the states they have alone (module docstring).

    Runs the backbone (in eval mode, restored after) on three short sequences packed into two rows and on
    each alone, on the backbone's device.

    Raises:
        PackingUnsupportedError: the states differ by more than rounding: the backbone lets attention cross
            from one packed sequence to another (or fails on the packed call); train with padded batches
            (`--no-packing`, `packing=False`) or choose an attention implementation that reads sequence
            boundaries from `position_ids` (sdpa, eager, flex_attention, flash_attention_2).
    """
    parameter = next(backbone.parameters())
    vocab = backbone.config.get_text_config().vocab_size
    sequences = [torch.tensor(ids) % vocab for ids in _PROBE]
    batch = pack_encodings(
        [{"input_ids": ids, "response_mask": torch.ones_like(ids)} for ids in sequences], 0, _PROBE_ROW_TOKENS
    )
    modes = {module: module.training for module in backbone.modules()}
    backbone.eval()
    implementation = backbone.config._attn_implementation
    try:
        try:
            packed, _ = packed_backbone_states(
                backbone,
                *(batch[key].to(parameter.device) for key in ("input_ids", "position_ids", "token_index", "cu_seqlens")),
                batch["max_seqlen"],
            )
        except (RuntimeError, TypeError, ValueError) as error:
            raise PackingUnsupportedError(
                f"backbone: the packed call failed with attn_implementation={implementation!r}: {error}"
            ) from error
        alone = torch.cat([
            backbone(input_ids=ids[None].to(parameter.device), use_cache=False, return_dict=True).last_hidden_state[0]
            for ids in sequences
        ])
    finally:
        for module, training in modes.items():
            module.train(training)
    error = (packed.double() - alone.double()).abs().max().item()
    scale = max(1.0, alone.double().abs().max().item())
    if error > _PROBE_TOLERANCE.get(packed.dtype, 5e-2) * scale:
        import transformers

        raise PackingUnsupportedError(
            f"backbone: packed sequences are not kept apart with attn_implementation={implementation!r} "
            f"(transformers {transformers.__version__}): their states differ from each sequence's own by "
            f"{error:.3g}; train with padded batches (--no-packing / packing=False) or use an attention "
            "implementation that reads sequence boundaries from position_ids (sdpa, eager, flex_attention, "
            "flash_attention_2)"
        )
