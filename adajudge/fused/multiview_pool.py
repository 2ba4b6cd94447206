"""Multi-view pooling in a few large PyTorch calls, with the analytic backward of docs/design.md §3:
launchers, autograd Function, entry point.

Passes over `hidden` (the `[B, T, D]` tensor that dominates the traffic):

    forward:  a = hidden @ w_a                 read 1   scores [B, T]
              [z_M; z_A; z_P] = W @ hidden     read 2   W = [1_R/|R|; β; 1_P/|P|], [B, 3, T]
    backward: q = hidden @ dz_A                read 1   [B, T]
              dw_a = g @ hidden                read 2   g_t = β_t (q_t − Σ_s β_s q_s)
              dH = Wᵀ @ [dz_M; dz_A; w_a; dz_P]   write 1 (the only [B, T, D] allocation)

The last-token view is a gather and its gradient a scatter-add into one row of dH. fp32 and fp64 inputs
are read in place; fp16/bf16 inputs are upcast one row-slab at a time (`_SLAB_BYTES`), so the fp32
temporary stays bounded whatever the batch. The packed layout is scattered into a padded one of
`max_seqlen` columns with index tensors of static size (no host sync), and gathered back in the backward.

Two CPU-only choices, both behind a device check: the `<hidden_t, dz_A>` products run as one
matrix-vector product per row (`torch.mv`; a batched product with N = 1 was slower on CPU, see
bench/RESULTS.md), and the one `[B, T, D]` allocation gets huge-page advice (`adajudge.fused.memory`).
"""
import torch

from adajudge.fused.memory import empty_huge_paged
from adajudge.views import View

_SLAB_BYTES = 64 << 20


def _response_and_prompt(attention_mask, response_mask):
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    return response, real & ~response


def _row_slabs(hidden):
    """Slices of the batch dim such that each `hidden[rows]` upcast to fp32 stays under `_SLAB_BYTES`.

    fp32/fp64 tensors are used in place: one slice covering the whole batch.
    """
    if hidden.dtype in (torch.float32, torch.float64):
        return [slice(None)]
    step = max(1, _SLAB_BYTES // max(hidden.shape[1] * hidden.shape[2] * 4, 1))
    return [slice(start, start + step) for start in range(0, hidden.shape[0], step)]


def _row_dots(h, vectors):
    """`<h[b, t], vectors[b]>` for `h [b, T, D]`, `vectors [b, D]` → `[b, T]`."""
    if h.device.type == "cpu" and h.shape[0] > 0:
        return torch.stack([torch.mv(h_row, v_row) for h_row, v_row in zip(h, vectors)])
    return torch.bmm(h, vectors[:, :, None]).squeeze(2)


def packed_positions(cu_seqlens: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(row, column)` `[total_T]` int64 of every packed token in the padded layout; sync-free."""
    starts = cu_seqlens.to(torch.int64).contiguous()  # searchsorted warns on (and copies) strided boundaries
    tokens = torch.arange(total, device=cu_seqlens.device)
    row = torch.searchsorted(starts[1:], tokens, right=True)
    return row, tokens - starts[row]


def _pad(x: torch.Tensor, row: torch.Tensor, column: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    out = x.new_zeros((rows, columns, *x.shape[1:]))
    out[row, column] = x
    return out


def _masked_softmax(scores, mask):
    """Softmax of `scores [B, T]` over `mask`; a row with no True entry gives zeros (never NaN): masked
    entries get the dtype's lowest value, not −inf, and the result is multiplied by the mask."""
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=1) * mask


def multiview_pool_fwd(hidden, attention_mask, response_mask, attn_weight, attn_bias):
    """Padded `hidden [B, T, D]` → `(views [B, 4, D] in hidden.dtype, saved)`; `saved` feeds
    `multiview_pool_bwd`: `(beta, last_index, mean_weights, prompt_weights)`."""
    response, prompt = _response_and_prompt(attention_mask, response_mask)
    batch, length, dim = hidden.shape
    compute_dtype = torch.promote_types(hidden.dtype, torch.float32)
    w = attn_weight.to(compute_dtype)

    positions = torch.arange(length, device=hidden.device)
    last_index = torch.where(response, positions, -1).amax(dim=1)  # [B], -1 when R_b is empty
    mean_weights = response / response.sum(1, keepdim=True, dtype=compute_dtype).clamp(min=1)  # 1_R/|R|, [B, T]
    prompt_weights = prompt / prompt.sum(1, keepdim=True, dtype=compute_dtype).clamp(min=1)  # 1_P/|P|

    pooled, betas = [], []
    for rows in _row_slabs(hidden):
        h = hidden[rows].to(compute_dtype)
        scores = torch.matmul(h, w)  # [b, T], read 1
        if attn_bias is not None:
            scores = scores + attn_bias.to(compute_dtype)
        beta = _masked_softmax(scores, response[rows])
        mix = torch.stack([mean_weights[rows], beta, prompt_weights[rows]], dim=1)  # [b, 3, T]
        pooled.append(torch.bmm(mix, h))  # read 2
        betas.append(beta)
        del h  # one upcast slab alive at a time
    pooled, beta = (pooled[0], betas[0]) if len(pooled) == 1 else (torch.cat(pooled), torch.cat(betas))

    gather_index = last_index.clamp(min=0)[:, None, None].expand(batch, 1, dim)
    z_last = hidden.gather(1, gather_index) * (last_index >= 0)[:, None, None]  # [B, 1, D]
    views = torch.cat([z_last, pooled.to(hidden.dtype)], dim=1)  # View order: last, mean, attn, prompt
    return views, (beta, last_index, mean_weights, prompt_weights)


def multiview_pool_bwd(grad_views, hidden, attn_weight, attn_bias, saved, needs_d_hidden=True):
    """VJP of docs/design.md §3 for padded `hidden`: `(d_hidden or None, d_attn_weight, d_attn_bias or None)`.
    `needs_d_hidden=False` (a frozen backbone's states) skips the one `[B, T, D]` write."""
    beta, last_index, mean_weights, prompt_weights = saved
    batch, length, dim = hidden.shape
    compute_dtype = beta.dtype
    grad = grad_views.to(compute_dtype)
    dz_attn = grad[:, View.ATTN]
    slabs = _row_slabs(hidden)
    q = torch.cat([_row_dots(hidden[rows].to(compute_dtype), dz_attn[rows]) for rows in slabs])  # [B, T], read 1
    # <z_A, dz_A> written as Σ_s β_s q_s: equal in exact arithmetic, and the same rounded q_t on both sides of
    # g_t's difference, so a one-token response gives g = 0 exactly, as autograd's softmax backward does.
    g = beta * (q - (beta * q).sum(-1, keepdim=True))  # [B, T]
    d_weight = torch.zeros(dim, dtype=compute_dtype, device=hidden.device)
    for rows in slabs:
        d_weight = d_weight + torch.bmm(g[rows, None, :], hidden[rows].to(compute_dtype)).sum((0, 1))  # read 2

    d_bias = None if attn_bias is None else g.sum().to(attn_bias.dtype).reshape(attn_bias.shape)
    if not needs_d_hidden:
        return None, d_weight.to(attn_weight.dtype), d_bias
    # dH_t = [t=τ]·dz_L + 1_R/|R|·dz_M + β_t·dz_A + g_t·w_a + 1_P/|P|·dz_P: one batched product, then τ's row.
    token_weights = torch.stack([mean_weights, beta, g, prompt_weights], dim=2)  # [B, T, 4]
    row_grads = torch.stack(
        [grad[:, View.MEAN], dz_attn, attn_weight.to(compute_dtype).expand(batch, dim), grad[:, View.PROMPT]], dim=1
    )  # [B, 4, D]
    d_hidden = empty_huge_paged(hidden.shape, hidden.dtype, hidden.device)  # the only [B, T, D] allocation
    if hidden.dtype == compute_dtype:
        torch.bmm(token_weights, row_grads, out=d_hidden)  # write 1
    else:
        for rows in _row_slabs(hidden):
            d_hidden[rows] = torch.bmm(token_weights[rows], row_grads[rows])
    has_last = last_index >= 0
    scatter_index = last_index.clamp(min=0)[:, None, None].expand(batch, 1, dim)
    d_last = (grad[:, View.LAST : View.LAST + 1] * has_last[:, None, None]).to(d_hidden.dtype)
    d_hidden.scatter_add_(1, scatter_index, d_last)
    return d_hidden, d_weight.to(attn_weight.dtype), d_bias


class MultiViewPoolFused(torch.autograd.Function):
    """`multiview_pool` on the fused PyTorch path; the packed layout is padded here and unpadded again."""

    @staticmethod
    def forward(ctx, hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen):
        row = column = None
        if cu_seqlens is not None:
            row, column = packed_positions(cu_seqlens, hidden.shape[0])
            shape = (cu_seqlens.numel() - 1, max(max_seqlen, 1))
            attention_mask = _pad(attention_mask, row, column, *shape)
            response_mask = None if response_mask is None else _pad(response_mask, row, column, *shape)
            padded = _pad(hidden, row, column, *shape)
        else:
            padded = hidden
        views, saved = multiview_pool_fwd(padded, attention_mask, response_mask, attn_weight, attn_bias)
        ctx.save_for_backward(hidden, attn_weight, attn_bias, row, column, *saved)
        ctx.padded_shape = padded.shape[:2]
        return views

    @staticmethod
    def backward(ctx, grad_views):
        hidden, attn_weight, attn_bias, row, column, *saved = ctx.saved_tensors
        padded = hidden if row is None else _pad(hidden, row, column, *ctx.padded_shape)
        needs_d_hidden = ctx.needs_input_grad[0]
        d_hidden, d_weight, d_bias = multiview_pool_bwd(grad_views, padded, attn_weight, attn_bias, tuple(saved), needs_d_hidden)
        if row is not None and needs_d_hidden:
            d_hidden = d_hidden[row, column]
        return d_hidden, None, None, d_weight, d_bias, None, None


def multiview_pool_fused(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen):
    """`adajudge.ops.multiview_pool` on the fused PyTorch path, for validated input (any float dtype; fp64 is
    computed in fp64); packed input with its longest row `max_seqlen` as an int."""
    return MultiViewPoolFused.apply(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen)
