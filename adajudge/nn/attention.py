"""Bidirectional multi-head attention within each sequence (docs/design.md §5 step 1), padded or packed.

Two implementations with one result: flash-attn's varlen kernel (used when `flash_attn` is importable
and the tensors are CUDA fp16/bf16) and PyTorch's `scaled_dot_product_attention` with a mask (everywhere
else, and while `torch.compile` traces: the varlen path reads the longest length to the host, which would
break the graph) *(ours)*. Padded sequences (`padded_attention`, `[B, T, H, Dh]`) are masked by their keys'
padding; packed ones (`packed_attention`, `[total, H, Dh]` with `cu_seqlens`, docs/packing.md) go to the
varlen kernel as they are, or to SDPA in blocks of whole sequences with a block-diagonal mask. Neither uses
positions: the backbone's hidden states already carry them, and the result is then the same for either
padding side and for any packing.
"""
import functools

import torch
import torch.nn.functional as F

from adajudge.nn.packed import PackedSequences


@functools.cache
def flash_attn_varlen():
    """`flash_attn.flash_attn_varlen_func`, or `None` when flash-attn is not installed (it is optional)."""
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def flash_applies(x: torch.Tensor) -> bool:
    """Whether attention on `x` runs flash-attn's varlen kernel: CUDA fp16/bf16, flash-attn importable, and
    not while `torch.compile` traces."""
    return (
        x.is_cuda
        and x.dtype in (torch.float16, torch.bfloat16)
        and not torch.compiler.is_compiling()
        and flash_attn_varlen() is not None
    )


def padded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Softmax attention of every position over the real tokens of its own row.

    Args:
        q, k, v: `[B, T, H, Dh]`, one dtype and device.
        attention_mask: `[B, T]`, nonzero for real tokens (any pattern; a row may have none).

    Returns:
        `[B, T, H, Dh]` in `q.dtype`. Rows at padded positions, and every row of a sequence with no real
        token, are exactly zero (never NaN).
    """
    if flash_applies(q):
        return varlen_attention(flash_attn_varlen(), q, k, v, attention_mask)
    return sdpa_attention(q, k, v, attention_mask)


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`padded_attention` through `scaled_dot_product_attention` with a boolean key padding mask.

    A sequence with no real token would give an all-False mask row and NaN; such rows attend to every
    (padded, finite) key instead and are then zeroed with the other padded positions. Sync-free.
    """
    real = attention_mask.bool()  # [B, T]
    keys = real | ~real.any(dim=1, keepdim=True)  # [B, T], all True for an empty row
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=keys[:, None, None, :]
    )  # [B, H, T, Dh]
    return out.transpose(1, 2) * real[:, :, None, None].to(out.dtype)


def varlen_attention(varlen, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """`padded_attention` through a flash-attn style `varlen(q, k, v, *, cu_seqlens_q, cu_seqlens_k,
    max_seqlen_q, max_seqlen_k, causal)` on the real tokens gathered into one packed sequence.

    The real tokens of each row keep their order; padded positions of the output are zero. Reads the
    longest length to the host once (the varlen kernel needs it as an int).
    """
    batch, length, heads, head_dim = q.shape
    real = attention_mask.bool()
    lengths = real.sum(dim=1, dtype=torch.int32)  # [B]
    cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))  # [B + 1]
    index = real.flatten().nonzero().squeeze(1)  # [total], positions of real tokens in [B * T]
    out = q.new_zeros(batch * length, heads, head_dim)
    if index.numel() == 0:
        return out.view(batch, length, heads, head_dim)
    max_len = int(lengths.max())

    def pack(x):
        return x.reshape(batch * length, heads, head_dim).index_select(0, index)

    packed = varlen(
        pack(q),
        pack(k),
        pack(v),
        cu_seqlens_q=cu_seqlens,
        cu_seqlens_k=cu_seqlens,
        max_seqlen_q=max_len,
        max_seqlen_k=max_len,
        causal=False,
    )  # [total, H, Dh]
    return out.index_copy(0, index, packed).view(batch, length, heads, head_dim)


def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sequences: PackedSequences) -> torch.Tensor:
    """Softmax attention of every packed token over the tokens of its own sequence.

    Args:
        q, k, v: `[total, H, Dh]`, one dtype and device, the sequences of `sequences` one after another.
        sequences: their boundaries (`cu_seqlens`, `max_seqlen`); a sequence may be empty.

    Returns:
        `[total, H, Dh]` in `q.dtype`. flash-attn's varlen kernel where it applies (`flash_applies`: no host
        read), else `block_diagonal_attention` (reads the lengths on the host once per `sequences`).
    """
    if flash_applies(q):
        cu_seqlens = sequences.cu_seqlens.to(torch.int32)
        return flash_attn_varlen()(
            q,
            k,
            v,
            cu_seqlens_q=cu_seqlens,
            cu_seqlens_k=cu_seqlens,
            max_seqlen_q=sequences.max_seqlen,
            max_seqlen_k=sequences.max_seqlen,
            causal=False,
        )
    return block_diagonal_attention(q, k, v, sequences)


def block_diagonal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sequences: PackedSequences) -> torch.Tensor:
    """`packed_attention` through `scaled_dot_product_attention`: the tokens are placed in blocks of whole
    sequences (`sequences.block_layout`, at most the longest sequence wide), attended to with a mask that keeps
    each query within its own sequence, and gathered back."""
    total, heads, head_dim = q.shape
    layout = sequences.block_layout

    def place(x):  # [total, H, Dh] -> [G, H, W, Dh]
        slots = x.new_zeros(layout.blocks * layout.width, heads, head_dim).index_copy(0, layout.slot, x)
        return slots.view(layout.blocks, layout.width, heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(place(q), place(k), place(v), attn_mask=layout.mask)  # [G, H, W, Dh]
    return out.transpose(1, 2).reshape(layout.blocks * layout.width, heads, head_dim).index_select(0, layout.slot)
