"""Multi-view pooling in a few large PyTorch calls, with the analytic backward of DESIGN.md §3.

Passes over `hidden` (the `[B, T, D]` tensor that dominates the traffic):

    forward:  a = hidden @ w_a                 read 1   scores [B, T]
              [z_M; z_A; z_P] = W @ hidden     read 2   W = [1_R/|R|; β; 1_P/|P|], [B, 3, T]
    backward: q = hidden @ dz_A                read 1   [B, T], one mv per row
              dw_a = g @ hidden                read 2   g_t = β_t (q_t − <z_A, dz_A>)
              dH = Wᵀ @ [dz_L; dz_M; dz_A; w_a; dz_P]   write 1 (the only [B, T, D] allocation)

The last-token view is a gather and its gradient one column of the batched product. fp32 and fp64
inputs are read in place; fp16/bf16 inputs are upcast one row-slab at a time (`_SLAB_BYTES`), so the
fp32 temporary stays bounded whatever the batch.
"""
import torch

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
    step = max(1, _SLAB_BYTES // max(hidden[0].numel() * 4, 1))
    return [slice(start, start + step) for start in range(0, hidden.shape[0], step)]


def _pad_packed(hidden, attention_mask, response_mask, cu_seqlens):
    """Packed `[total_T, ...]` -> right-padded `[N, T_max, ...]`, plus the flat index of each real slot."""
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    n, max_len = lengths.numel(), int(lengths.max())
    slot = torch.arange(max_len, device=hidden.device).expand(n, max_len)
    valid = slot < lengths[:, None]
    flat_index = (cu_seqlens[:-1, None] + slot)[valid]

    def pad(x):
        out = x.new_zeros((n, max_len, *x.shape[1:]))
        out[valid] = x[flat_index]
        return out

    response = None if response_mask is None else pad(response_mask)
    return pad(hidden), pad(attention_mask), response, valid


def multiview_pool_fwd(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
    """Returns `(views [B, 4, D] in hidden.dtype, saved)`; `saved` feeds `multiview_pool_bwd`."""
    if cu_seqlens is not None:
        hidden, attention_mask, response_mask, valid = _pad_packed(hidden, attention_mask, response_mask, cu_seqlens)
    else:
        valid = None
    response, prompt = _response_and_prompt(attention_mask, response_mask)
    batch, length, dim = hidden.shape
    compute_dtype = torch.promote_types(hidden.dtype, torch.float32)
    w = attn_weight.to(compute_dtype)

    positions = torch.arange(length, device=hidden.device)
    last_index = torch.where(response, positions, -1).amax(dim=1)  # [B], -1 when R_b is empty
    n_response = response.sum(1, dtype=compute_dtype)
    n_prompt = prompt.sum(1, dtype=compute_dtype)

    pooled = torch.empty(batch, 3, dim, dtype=compute_dtype, device=hidden.device)
    beta = torch.empty(batch, length, dtype=compute_dtype, device=hidden.device)
    for rows in _row_slabs(hidden):
        h = hidden[rows].to(compute_dtype)
        scores = torch.matmul(h, w)  # [b, T], read 1
        if attn_bias is not None:
            scores += attn_bias.to(compute_dtype)
        scores.masked_fill_(~response[rows], torch.finfo(compute_dtype).min)
        beta[rows] = torch.softmax(scores, dim=1) * response[rows]
        mix = torch.stack(
            [response[rows] / n_response[rows].clamp(min=1)[:, None], beta[rows], prompt[rows] / n_prompt[rows].clamp(min=1)[:, None]],
            dim=1,
        )  # [b, 3, T]
        pooled[rows] = torch.bmm(mix, h)  # read 2
    z_last = hidden[torch.arange(batch, device=hidden.device), last_index.clamp(min=0)]
    z_last = z_last * (last_index >= 0)[:, None]

    views = torch.cat([z_last[:, None].to(hidden.dtype), pooled.to(hidden.dtype)], dim=1)
    z_attn = pooled[:, 1]
    saved = (beta, last_index, n_response, n_prompt, response, prompt, z_attn)
    if valid is not None:
        saved = saved + (valid,)
    return views, saved


def multiview_pool_bwd(grad_views, hidden, attn_weight, attn_bias, cu_seqlens, saved):
    """VJP of DESIGN.md §3: returns `(d_hidden, d_attn_weight, d_attn_bias or None)`."""
    beta, last_index, n_response, n_prompt, response, prompt, z_attn = saved[:7]
    packed_hidden = hidden
    if cu_seqlens is not None:
        valid = saved[7]
        hidden = hidden.new_zeros((*valid.shape, hidden.shape[-1]))
        hidden[valid] = packed_hidden
    batch, length, dim = hidden.shape
    compute_dtype = beta.dtype
    grad = grad_views.to(compute_dtype)
    dz_last, dz_mean, dz_attn, dz_prompt = grad.unbind(1)
    w = attn_weight.to(compute_dtype)

    g = torch.empty_like(beta)
    d_weight = torch.zeros(dim, dtype=compute_dtype, device=hidden.device)
    z_dot = (z_attn * dz_attn).sum(-1)  # <z_A, dz_A>, [B]
    for rows in _row_slabs(hidden):
        h = hidden[rows].to(compute_dtype)
        # <hidden_t, dz_A>, read 1: one matrix-vector product per row (bmm with N = 1 is far slower on CPU)
        q = torch.stack([torch.mv(h_row, dz_row) for h_row, dz_row in zip(h, dz_attn[rows])])
        g[rows] = beta[rows] * (q - z_dot[rows, None])
        d_weight += torch.bmm(g[rows, None, :], h).sum((0, 1))  # read 2

    positions = torch.arange(length, device=hidden.device)
    token_weights = torch.stack(
        [
            (positions == last_index[:, None]).to(compute_dtype),
            response / n_response.clamp(min=1)[:, None],
            beta,
            g,
            prompt / n_prompt.clamp(min=1)[:, None],
        ],
        dim=2,
    )  # [B, T, 5]
    row_grads = torch.stack([dz_last, dz_mean, dz_attn, w.expand(batch, dim), dz_prompt], dim=1)  # [B, 5, D]
    if hidden.dtype == compute_dtype:
        d_hidden = torch.bmm(token_weights, row_grads)  # write 1
    else:
        d_hidden = torch.empty_like(hidden)
        for rows in _row_slabs(hidden):
            d_hidden[rows] = torch.bmm(token_weights[rows], row_grads[rows])
    if cu_seqlens is not None:
        d_hidden = d_hidden[saved[7]]
    d_bias = None if attn_bias is None else g.sum().to(attn_bias.dtype).reshape(attn_bias.shape)
    return d_hidden, d_weight.to(attn_weight.dtype), d_bias
