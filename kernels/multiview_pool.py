"""Multi-view pooling (DESIGN.md §3) in Triton: a split-token forward with an online softmax, a combine,
and a one-pass backward.

Forward, per (token split s, row b) program — flash-decoding style:

    for each block of BLOCK_T tokens:                       hidden read once from DRAM
        a_t  = <h_t, w_a> + b_a            sweep 1 over D  (scores kept for the backward: [B, T] fp32)
        m, l = running max / sum of exp(a_t − m) over response tokens
        acc_A ← acc_A·exp(m_old − m) + Σ_t exp(a_t − m)·h_t
        acc_M += Σ_{t∈R} h_t,  acc_P += Σ_{t∈P} h_t            sweep 2 over D  (tile re-read from L1/L2)

The per-split accumulators live in a zero-initialised fp32 partial buffer [B, S, 3, D]; a combine kernel
merges the S splits (rescaling by exp(m_s − M)), divides by the counts, gathers the last token and writes
[B, 4, D] in hidden's dtype plus what the backward needs: z_A in fp32, lse = M + log L, counts, τ.

Traffic: the forward reads hidden once (+ 4 B/token of scores); the backward reads hidden once and writes
dH once; the partials are O(B·S·D).
"""
import torch
import triton
import triton.language as tl

from adajudge.kernels.launch import NUM_STAGES, POOL_WARPS, token_splits, token_tile

@triton.jit
def _row_pointers(hidden, kinds, scores, cu_seqlens, i_b, T, stride_hb, stride_ht, IS_VARLEN: tl.constexpr):
    """Base pointers and length of row `i_b` in the padded [B, T, D] or packed [total_T, D] layout."""
    if IS_VARLEN:
        bos = tl.load(cu_seqlens + i_b).to(tl.int64)
        seq_len = (tl.load(cu_seqlens + i_b + 1) - tl.load(cu_seqlens + i_b)).to(tl.int32)
        return hidden + bos * stride_ht, kinds + bos, scores + bos, seq_len
    row = i_b.to(tl.int64)
    return hidden + row * stride_hb, kinds + row * T, scores + row * T, T


@triton.jit
def _token_dots(token_ptr, mask_t, vector, stride_v, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """`<h_t, v>` for a block of tokens (`token_ptr` [BLOCK_T, 1] row pointers), D swept in BLOCK_D chunks."""
    dots = tl.zeros([BLOCK_T], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        h = tl.load(token_ptr + offs_d[None, :], mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)  # [BLOCK_T, BLOCK_D]
        v = tl.load(vector + offs_d * stride_v, mask=mask_d, other=0.0).to(tl.float32)  # [BLOCK_D]
        dots += tl.sum(h * v[None, :], axis=1)
    return dots


@triton.jit
def multiview_pool_fwd_kernel(
    hidden, kinds, attn_weight, attn_bias, cu_seqlens,
    scores, partial_acc, partial_stats,
    T, D, chunk_len, num_splits, stride_hb, stride_ht,
    HAS_BIAS: tl.constexpr, IS_VARLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    i_s, i_b = tl.program_id(0), tl.program_id(1)
    h_row, k_row, s_row, seq_len = _row_pointers(hidden, kinds, scores, cu_seqlens, i_b, T, stride_hb, stride_ht, IS_VARLEN)
    start = i_s * chunk_len
    end = tl.minimum(start + chunk_len, seq_len)
    acc = partial_acc + (i_b * num_splits + i_s).to(tl.int64) * 3 * D  # [3, D] fp32, zero-initialised
    bias = tl.load(attn_bias).to(tl.float32) if HAS_BIAS else 0.0

    m = float("-inf")
    l = 0.0
    n_response = 0
    n_prompt = 0
    last = -1
    for t0 in range(start, end, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(k_row + offs_t, mask=mask_t, other=0)  # [BLOCK_T]
        is_response = kind == 2
        is_prompt = kind == 1
        token_ptr = h_row + offs_t.to(tl.int64)[:, None] * stride_ht
        a = _token_dots(token_ptr, mask_t, attn_weight, 1, D, BLOCK_T, BLOCK_D) + bias  # sweep 1: scores
        tl.store(s_row + offs_t, a, mask=mask_t)

        a_response = tl.where(is_response, a, float("-inf"))
        m_new = tl.maximum(m, tl.max(a_response, axis=0))
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # no response token yet: keep exps finite
        alpha = tl.exp(m - m_ref)
        p = tl.exp(a_response - m_ref)  # [BLOCK_T], 0 outside the response
        l = l * alpha + tl.sum(p, axis=0)
        m = m_new
        mean_w = is_response.to(tl.float32)
        prompt_w = is_prompt.to(tl.float32)
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            mask_d = offs_d < D
            h = tl.load(token_ptr + offs_d[None, :], mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)  # [BLOCK_T, BLOCK_D]
            acc_mean = tl.load(acc + offs_d, mask=mask_d)
            acc_attn = tl.load(acc + D + offs_d, mask=mask_d)
            acc_prompt = tl.load(acc + 2 * D + offs_d, mask=mask_d)
            tl.store(acc + offs_d, acc_mean + tl.sum(h * mean_w[:, None], axis=0), mask=mask_d)
            tl.store(acc + D + offs_d, acc_attn * alpha + tl.sum(h * p[:, None], axis=0), mask=mask_d)
            tl.store(acc + 2 * D + offs_d, acc_prompt + tl.sum(h * prompt_w[:, None], axis=0), mask=mask_d)
        n_response += tl.sum(is_response.to(tl.int32), axis=0)
        n_prompt += tl.sum(is_prompt.to(tl.int32), axis=0)
        last = tl.maximum(last, tl.max(tl.where(is_response, offs_t, -1), axis=0))

    stats = partial_stats + (i_b * num_splits + i_s).to(tl.int64) * 5
    tl.store(stats, m)
    tl.store(stats + 1, l)
    tl.store(stats + 2, n_response.to(tl.float32))
    tl.store(stats + 3, n_prompt.to(tl.float32))
    tl.store(stats + 4, last.to(tl.float32))


@triton.jit
def multiview_pool_combine_kernel(
    hidden, cu_seqlens, partial_acc, partial_stats,
    views, z_attn, lse, counts, last_index,
    D, num_splits, stride_hb, stride_ht,
    IS_VARLEN: tl.constexpr, BLOCK_D: tl.constexpr,
):
    i_d, i_b = tl.program_id(0), tl.program_id(1)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    stats = partial_stats + i_b.to(tl.int64) * num_splits * 5

    m_max = float("-inf")
    for s in range(0, num_splits):
        m_max = tl.maximum(m_max, tl.load(stats + s * 5))
    m_ref = tl.where(m_max == float("-inf"), 0.0, m_max)
    l_sum = 0.0
    n_response = 0.0
    n_prompt = 0.0
    last = -1.0
    acc_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_D], dtype=tl.float32)
    for s in range(0, num_splits):
        scale = tl.exp(tl.load(stats + s * 5) - m_ref)
        l_sum += tl.load(stats + s * 5 + 1) * scale
        n_response += tl.load(stats + s * 5 + 2)
        n_prompt += tl.load(stats + s * 5 + 3)
        last = tl.maximum(last, tl.load(stats + s * 5 + 4))
        acc = partial_acc + (i_b * num_splits + s).to(tl.int64) * 3 * D
        acc_mean += tl.load(acc + offs_d, mask=mask_d, other=0.0)
        acc_attn += tl.load(acc + D + offs_d, mask=mask_d, other=0.0) * scale
        acc_prompt += tl.load(acc + 2 * D + offs_d, mask=mask_d, other=0.0)

    z_mean = acc_mean / tl.maximum(n_response, 1.0)
    z_prompt = acc_prompt / tl.maximum(n_prompt, 1.0)
    z_att = tl.where(l_sum > 0, acc_attn / tl.where(l_sum > 0, l_sum, 1.0), 0.0)
    tau = last.to(tl.int64)
    if IS_VARLEN:
        last_ptr = hidden + (tl.load(cu_seqlens + i_b).to(tl.int64) + tau) * stride_ht
    else:
        last_ptr = hidden + i_b.to(tl.int64) * stride_hb + tau * stride_ht
    has_last = (tl.zeros([BLOCK_D], dtype=tl.int64) + tau) >= 0  # a vector mask: empty R_b loads nothing
    z_last = tl.load(last_ptr + offs_d, mask=mask_d & has_last, other=0.0).to(tl.float32)

    out = views + i_b.to(tl.int64) * 4 * D
    tl.store(out + offs_d, z_last.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + D + offs_d, z_mean.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + 2 * D + offs_d, z_att.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + 3 * D + offs_d, z_prompt.to(views.dtype.element_ty), mask=mask_d)
    tl.store(z_attn + i_b.to(tl.int64) * D + offs_d, z_att, mask=mask_d)
    if i_d == 0:
        tl.store(lse + i_b, tl.where(l_sum > 0, m_ref + tl.log(tl.where(l_sum > 0, l_sum, 1.0)), float("-inf")))
        tl.store(counts + i_b * 2, n_response)
        tl.store(counts + i_b * 2 + 1, n_prompt)
        tl.store(last_index + i_b, tau.to(tl.int32))


# Backward (DESIGN.md §3). With β_t = exp(a_t − lse)·[t∈R] and upstream dz = (dz_L, dz_M, dz_A, dz_P):
#   z_A = Σ β_t h_t  ⇒  ∂z_A/∂h_t = β_t I + (∂β_t/∂a_t-terms) and ∂a_t/∂h_t = w_a, ∂β_t/∂a_s = β_t([t=s] − β_s)
#   so  <dz_A, ∂z_A/∂a_t> = β_t (<h_t, dz_A> − <z_A, dz_A>) =: g_t
#   dH_t = [t=τ]·dz_L + [t∈R]/|R|·dz_M + β_t·dz_A + g_t·w_a + [t∈P]/|P|·dz_P
#   dw_a = Σ_{b,t} g_t h_t,   db_a = Σ_{b,t} g_t
# Per token block: sweep 1 over D gives q_t = <h_t, dz_A>; sweep 2 re-reads the tile (L1/L2), writes dH and
# adds g_t·h_t into this program's fp32 dw_a partial row (summed on the host: deterministic, no atomics).
@triton.jit
def multiview_pool_bwd_kernel(
    hidden, kinds, scores, cu_seqlens, attn_weight,
    grad_views, z_attn, lse, counts, last_index,
    d_hidden, partial_dw, partial_db,
    T, D, chunk_len, num_splits, stride_hb, stride_ht, stride_gb, stride_gv, stride_gd,
    IS_VARLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    i_s, i_b = tl.program_id(0), tl.program_id(1)
    h_row, k_row, s_row, seq_len = _row_pointers(hidden, kinds, scores, cu_seqlens, i_b, T, stride_hb, stride_ht, IS_VARLEN)
    if IS_VARLEN:
        dh_row = d_hidden + tl.load(cu_seqlens + i_b).to(tl.int64) * D
    else:
        dh_row = d_hidden + i_b.to(tl.int64) * T * D
    start = i_s * chunk_len
    end = tl.minimum(start + chunk_len, seq_len)
    grad = grad_views + i_b.to(tl.int64) * stride_gb
    dw = partial_dw + (i_b * num_splits + i_s).to(tl.int64) * D  # zero-initialised fp32

    z_dot = 0.0  # <z_A, dz_A>
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        dz_a = tl.load(grad + 2 * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
        z_dot += tl.sum(tl.load(z_attn + i_b.to(tl.int64) * D + offs_d, mask=mask_d, other=0.0) * dz_a, axis=0)
    row_lse = tl.load(lse + i_b)
    inv_response = 1.0 / tl.maximum(tl.load(counts + i_b * 2), 1.0)
    inv_prompt = 1.0 / tl.maximum(tl.load(counts + i_b * 2 + 1), 1.0)
    tau = tl.load(last_index + i_b)

    db = 0.0
    for t0 in range(start, end, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(k_row + offs_t, mask=mask_t, other=0)
        is_response = kind == 2
        token_ptr = h_row + offs_t.to(tl.int64)[:, None] * stride_ht
        q = _token_dots(token_ptr, mask_t, grad + 2 * stride_gv, stride_gd, D, BLOCK_T, BLOCK_D)  # sweep 1: <h_t, dz_A>
        a = tl.load(s_row + offs_t, mask=mask_t, other=0.0)
        beta = tl.where(is_response, tl.exp(a - row_lse), 0.0)
        g = beta * (q - z_dot)  # [BLOCK_T]
        db += tl.sum(g, axis=0)
        c_last = (offs_t == tau).to(tl.float32)
        c_mean = tl.where(is_response, inv_response, 0.0)
        c_prompt = tl.where(kind == 1, inv_prompt, 0.0)
        out_ptr = dh_row + offs_t.to(tl.int64)[:, None] * D
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            mask_d = offs_d < D
            mask = mask_t[:, None] & mask_d[None, :]
            h = tl.load(token_ptr + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)  # [BLOCK_T, BLOCK_D]
            dz_l = tl.load(grad + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
            dz_m = tl.load(grad + stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
            dz_a = tl.load(grad + 2 * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
            dz_p = tl.load(grad + 3 * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
            w = tl.load(attn_weight + offs_d, mask=mask_d, other=0.0).to(tl.float32)
            dh = (c_last[:, None] * dz_l[None, :] + c_mean[:, None] * dz_m[None, :] + beta[:, None] * dz_a[None, :]
                  + g[:, None] * w[None, :] + c_prompt[:, None] * dz_p[None, :])
            tl.store(out_ptr + offs_d[None, :], dh.to(d_hidden.dtype.element_ty), mask=mask)
            tl.store(dw + offs_d, tl.load(dw + offs_d, mask=mask_d) + tl.sum(g[:, None] * h, axis=0), mask=mask_d)
    tl.store(partial_db + i_b * num_splits + i_s, db)


def _token_kinds(attention_mask, response_mask):
    """int8 map of token classes: 0 padding, 1 prompt, 2 response (one byte per token for the kernels)."""
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    return (real.to(torch.int8) + response.to(torch.int8)).contiguous()


def _layout(hidden, cu_seqlens):
    """`(rows, length, stride_hb, stride_ht)`; packed rows use the longest sequence as `length` (one sync)."""
    if cu_seqlens is None:
        return hidden.shape[0], hidden.shape[1], hidden.stride(0), hidden.stride(1)
    length = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
    return cu_seqlens.numel() - 1, length, 0, hidden.stride(0)


def multiview_pool_fwd(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
    """Launch forward + combine. Returns `(views [B, 4, D] in hidden.dtype, saved)` for the backward."""
    if hidden.stride(-1) != 1:
        hidden = hidden.contiguous()
    dim = hidden.shape[-1]
    rows, length, stride_hb, stride_ht = _layout(hidden, cu_seqlens)
    kinds = _token_kinds(attention_mask, response_mask)
    block_t, block_d = token_tile(dim, hidden.element_size())
    num_splits, chunk_len = token_splits(length, rows, block_t, hidden.device)
    device = hidden.device
    scores = torch.empty(kinds.shape, dtype=torch.float32, device=device)
    partial_acc = torch.zeros(rows, num_splits, 3, dim, dtype=torch.float32, device=device)
    partial_stats = torch.empty(rows, num_splits, 5, dtype=torch.float32, device=device)
    bias = attn_bias if attn_bias is not None else attn_weight  # placeholder pointer, unread
    multiview_pool_fwd_kernel[(num_splits, rows)](
        hidden=hidden, kinds=kinds, attn_weight=attn_weight, attn_bias=bias, cu_seqlens=cu_seqlens,
        scores=scores, partial_acc=partial_acc, partial_stats=partial_stats,
        T=length, D=dim, chunk_len=chunk_len, num_splits=num_splits, stride_hb=stride_hb, stride_ht=stride_ht,
        HAS_BIAS=attn_bias is not None, IS_VARLEN=cu_seqlens is not None, BLOCK_T=block_t, BLOCK_D=block_d,
        num_warps=POOL_WARPS, num_stages=NUM_STAGES,
    )
    views = torch.empty(rows, 4, dim, dtype=hidden.dtype, device=device)
    z_attn = torch.empty(rows, dim, dtype=torch.float32, device=device)
    lse = torch.empty(rows, dtype=torch.float32, device=device)
    counts = torch.empty(rows, 2, dtype=torch.float32, device=device)
    last_index = torch.empty(rows, dtype=torch.int32, device=device)
    combine_block_d = min(triton.next_power_of_2(dim), 1024)
    multiview_pool_combine_kernel[(triton.cdiv(dim, combine_block_d), rows)](
        hidden=hidden, cu_seqlens=cu_seqlens, partial_acc=partial_acc, partial_stats=partial_stats,
        views=views, z_attn=z_attn, lse=lse, counts=counts, last_index=last_index,
        D=dim, num_splits=num_splits, stride_hb=stride_hb, stride_ht=stride_ht,
        IS_VARLEN=cu_seqlens is not None, BLOCK_D=combine_block_d, num_warps=POOL_WARPS, num_stages=NUM_STAGES,
    )
    return views, (kinds, scores, z_attn, lse, counts, last_index)


def multiview_pool_bwd(grad_views, hidden, attn_weight, attn_bias, cu_seqlens, saved):
    """Launch the one-pass backward. Returns `(d_hidden, d_attn_weight, d_attn_bias or None)`."""
    kinds, scores, z_attn, lse, counts, last_index = saved
    if hidden.stride(-1) != 1:
        hidden = hidden.contiguous()
    dim = hidden.shape[-1]
    rows, length, stride_hb, stride_ht = _layout(hidden, cu_seqlens)
    block_t, block_d = token_tile(dim, hidden.element_size())
    num_splits, chunk_len = token_splits(length, rows, block_t, hidden.device)
    d_hidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device)
    partial_dw = torch.zeros(rows * num_splits, dim, dtype=torch.float32, device=hidden.device)
    partial_db = torch.empty(rows * num_splits, dtype=torch.float32, device=hidden.device)
    multiview_pool_bwd_kernel[(num_splits, rows)](
        hidden=hidden, kinds=kinds, scores=scores, cu_seqlens=cu_seqlens, attn_weight=attn_weight,
        grad_views=grad_views, z_attn=z_attn, lse=lse, counts=counts, last_index=last_index,
        d_hidden=d_hidden, partial_dw=partial_dw, partial_db=partial_db,
        T=length, D=dim, chunk_len=chunk_len, num_splits=num_splits, stride_hb=stride_hb, stride_ht=stride_ht,
        stride_gb=grad_views.stride(0), stride_gv=grad_views.stride(1), stride_gd=grad_views.stride(2),
        IS_VARLEN=cu_seqlens is not None, BLOCK_T=block_t, BLOCK_D=block_d, num_warps=POOL_WARPS, num_stages=NUM_STAGES,
    )
    d_weight = partial_dw.sum(0).to(attn_weight.dtype)
    d_bias = None if attn_bias is None else partial_db.sum().to(attn_bias.dtype).reshape(attn_bias.shape)
    return d_hidden, d_weight, d_bias
