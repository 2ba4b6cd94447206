"""Multi-view pooling in a few large PyTorch calls, with the analytic backward of DESIGN.md §3.

Passes over `hidden` (the `[B, T, D]` tensor that dominates the traffic):

    forward:  a = hidden @ w_a                 read 1   scores [B, T]
              [z_M; z_A; z_P] = W @ hidden     read 2   W = [1_R/|R|; β; 1_P/|P|], [B, 3, T]
    backward: q = hidden @ dz_A                read 1   [B, T], one mv per row
              dw_a = g @ hidden                read 2   g_t = β_t (q_t − <z_A, dz_A>)
              dH = Wᵀ @ [dz_M; dz_A; w_a; dz_P]   write 1 (the only [B, T, D] allocation)

The last-token view is a gather and its gradient a scatter-add into one row of dH. fp32 and fp64
inputs are read in place; fp16/bf16 inputs are upcast one row-slab at a time (`_SLAB_BYTES`), so the
fp32 temporary stays bounded whatever the batch.
"""
import torch

from adajudge.fused.memory import empty_huge_paged

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


def _masked_softmax(scores, mask):
    """Softmax of `scores [B, T]` over `mask`; all-masked rows give zeros.

    Written out rather than `torch.softmax`, whose multi-threaded CPU kernel cost milliseconds on a [8, 1024]
    tensor on the 2-core development machine while its other core was busy (16 ms vs 0.02 ms with one thread;
    idle, both take 10 µs: `python -m timeit -s "import torch; x = torch.randn(8, 1024)" "torch.softmax(x, 1)"`,
    with and without `torch.set_num_threads(1)` in the setup, under load).
    """
    scores = scores.masked_fill(~mask, float("-inf"))
    peak = scores.amax(dim=1, keepdim=True).clamp(min=torch.finfo(scores.dtype).min)  # finite for empty rows
    weights = (scores - peak).exp()
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=torch.finfo(scores.dtype).tiny)


def multiview_pool_fwd(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
    """Returns `(views [B, 4, D] in hidden.dtype, saved)`; `saved` feeds `multiview_pool_bwd`."""
    valid = None
    if cu_seqlens is not None:
        hidden, attention_mask, response_mask, valid = _pad_packed(hidden, attention_mask, response_mask, cu_seqlens)
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
    pooled, beta = (pooled[0], betas[0]) if len(pooled) == 1 else (torch.cat(pooled), torch.cat(betas))

    gather_index = last_index.clamp(min=0)[:, None, None].expand(batch, 1, dim)
    z_last = hidden.gather(1, gather_index) * (last_index >= 0)[:, None, None]  # [B, 1, D]
    views = torch.cat([z_last, pooled.to(hidden.dtype)], dim=1)
    saved = (beta, last_index, mean_weights, prompt_weights, pooled[:, 1])
    return views, saved if valid is None else saved + (valid,)


def multiview_pool_bwd(grad_views, hidden, attn_weight, attn_bias, cu_seqlens, saved):
    """VJP of DESIGN.md §3: returns `(d_hidden, d_attn_weight, d_attn_bias or None)`."""
    beta, last_index, mean_weights, prompt_weights, z_attn = saved[:5]
    if cu_seqlens is not None:
        valid = saved[5]
        packed_hidden, hidden = hidden, hidden.new_zeros((*valid.shape, hidden.shape[-1]))
        hidden[valid] = packed_hidden
    batch, length, dim = hidden.shape
    compute_dtype = beta.dtype
    grad = grad_views.to(compute_dtype)
    dz_attn = grad[:, 2]
    z_dot = (z_attn * dz_attn).sum(-1, keepdim=True)  # <z_A, dz_A>, [B, 1]

    gs, d_weight = [], 0
    for rows in _row_slabs(hidden):
        h = hidden[rows].to(compute_dtype)
        # <hidden_t, dz_A>, read 1: one matrix-vector product per row (bmm with N = 1 is slower on CPU)
        q = torch.stack([torch.mv(h_row, dz_row) for h_row, dz_row in zip(h, dz_attn[rows])])
        g = beta[rows] * (q - z_dot[rows])  # [b, T]
        d_weight = d_weight + torch.bmm(g[:, None, :], h).sum((0, 1))  # read 2
        gs.append(g)
    g = gs[0] if len(gs) == 1 else torch.cat(gs)

    # dH_t = [t=τ]·dz_L + 1_R/|R|·dz_M + β_t·dz_A + g_t·w_a + 1_P/|P|·dz_P: one batched product, then τ's row.
    token_weights = torch.stack([mean_weights, beta, g, prompt_weights], dim=2)  # [B, T, 4]
    row_grads = torch.stack([grad[:, 1], dz_attn, attn_weight.to(compute_dtype).expand(batch, dim), grad[:, 3]], dim=1)
    d_hidden = empty_huge_paged(hidden.shape, hidden.dtype, hidden.device)  # the only [B, T, D] allocation
    if hidden.dtype == compute_dtype:
        torch.bmm(token_weights, row_grads, out=d_hidden)  # write 1
    else:
        for rows in _row_slabs(hidden):
            d_hidden[rows] = torch.bmm(token_weights[rows], row_grads[rows])
    has_last = last_index >= 0
    scatter_index = last_index.clamp(min=0)[:, None, None].expand(batch, 1, dim)
    d_last = (grad[:, :1] * has_last[:, None, None]).to(d_hidden.dtype)
    d_hidden.scatter_add_(1, scatter_index, d_last)
    if cu_seqlens is not None:
        d_hidden = d_hidden[valid]
    d_bias = None if attn_bias is None else g.sum().to(attn_bias.dtype).reshape(attn_bias.shape)
    return d_hidden, d_weight.to(attn_weight.dtype), d_bias
