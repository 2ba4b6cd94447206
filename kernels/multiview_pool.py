"""Multi-view pooling (docs/design.md §3) in Triton: kernels, launchers, registered autograd, entry point.

Forward, two variants (the private switch `ADAJUDGE_POOL_FORWARD`, read at every launch):

`fused` (default) — one program per (row, token split), all of D, flash-decoding style:

    for each block of BLOCK_T tokens:                       hidden read once from DRAM
        a_t  = <h_t, w_a> + b_a            sweep 1 over D  (scores kept for the backward: [B, T] fp32)
        m, l_sum = running max / sum of exp(a_t − m) over response tokens
        acc_A ← acc_A·exp(m_old − m) + Σ_t exp(a_t − m)·h_t
        acc_M += Σ_{t∈R} h_t,  acc_P += Σ_{t∈P} h_t            sweep 2 over D  (tile re-read from L1/L2)

  The accumulators are fp32 rows of a partial buffer [B, S, 3, D], read and written once per token block.

`two_phase` — scores first, then D tiled across programs with the accumulators in registers:

    phase 1, one program per (row, split):      a_t, per-split max m_s and sum l_s   (reads hidden once)
    phase 2, one program per (row, split, D tile): p_t = exp(a_t − max_s m_s);
             acc_{M,A,P}[BLOCK_D] += Σ_t {1_R, p_t, 1_P}·h_t[BLOCK_D]               (reads hidden again)

Both end in a combine kernel that merges the S splits (vector loads of the splits' statistics), divides by
the counts, gathers the last token, and writes [B, 4, D] in hidden's dtype plus what the backward needs:
z_A in fp32, lse = M + log L, counts, τ.

Bytes model per row (e = element size of hidden, S splits, T tokens, D hidden size):

    variant     DRAM                                           cache traffic beyond the tiles
    fused       T·D·e + 5·T + 2·S·3·D·4                        2·3·D·4 per BLOCK_T tokens = 24/(BLOCK_T·e)
                                                               × the hidden bytes (0.75× at bf16 and fp32
                                                               with the tile plan of `launch.token_tile`)
    two_phase   2·T·D·e + 9·T + 2·S·3·D·4                      none (accumulators in registers)

Registers: `fused` holds one [BLOCK_T, BLOCK_D] = 2048-element tile over 256 threads (8 fp32 each) plus the
row's scalars; `two_phase` holds a [32, 128] tile over 128 threads and 3 [128] accumulators. Both are far
below the 255-register limit (the compile check reports the exact figures and 0 spills).
The model favours `fused`: it reads hidden from DRAM once, and its extra traffic goes to L2, whose bandwidth
is a few times that of HBM; `two_phase` reads hidden twice unless it fits in L2, and wins only where the
fused grid is too small to fill the GPU (few, short rows: D tiles add parallelism). One GPU run of
`python -m bench.gpu_check` measures both.

Backward (one program per group of (row, split) work items, a fixed number of programs): reads hidden
once, writes dH once; dw_a in one fp32 partial row per program, summed on the host (deterministic).

No launcher reads a tensor's values on the host: the packed layout takes its longest row as `max_seqlen`.
"""
import torch
import triton
import triton.language as tl
from torch.library import triton_op

from adajudge.views import NUM_VIEWS, TokenKind, View

from .launch import (
    MAX_SPLITS,
    POOL_MAX_REGISTERS,
    POOL_WARPS,
    SMALL_WARPS,
    forced_tile,
    launch,
    on_device,
    plan_token_sweep,
    target_programs,
    token_splits,
)
from .pool_forward import forward_variant

# Tile of the two-phase accumulation: [TWO_PHASE_BLOCK_T tokens, TWO_PHASE_BLOCK_D] over 4 warps.
TWO_PHASE_BLOCK_T = 32
TWO_PHASE_BLOCK_D = 128
# The combine's D tile.
COMBINE_BLOCK_D = 1024

# Token classes of the one-byte `kinds` map.
PADDING_TOKEN = tl.constexpr(int(TokenKind.PADDING))
PROMPT_TOKEN = tl.constexpr(int(TokenKind.PROMPT))
RESPONSE_TOKEN = tl.constexpr(int(TokenKind.RESPONSE))
# Output views.
VIEW_LAST = tl.constexpr(int(View.LAST))
VIEW_MEAN = tl.constexpr(int(View.MEAN))
VIEW_ATTN = tl.constexpr(int(View.ATTN))
VIEW_PROMPT = tl.constexpr(int(View.PROMPT))
VIEWS = tl.constexpr(NUM_VIEWS)
# Rows of a split's fp32 accumulators in `partial_acc` [rows, S, ACCUMULATORS, D].
ACC_MEAN = tl.constexpr(0)
ACC_ATTN = tl.constexpr(1)
ACC_PROMPT = tl.constexpr(2)
ACCUMULATORS = tl.constexpr(3)
# Slots of a split's statistics in `partial_stats` [rows, S, STATS] (fp32).
STAT_MAX = tl.constexpr(0)  # max response score of the split (−inf: none)
STAT_SUM = tl.constexpr(1)  # Σ exp(a − max) over the split's response tokens
STAT_RESPONSE = tl.constexpr(2)  # response tokens
STAT_PROMPT = tl.constexpr(3)  # prompt tokens
STAT_LAST = tl.constexpr(4)  # last response position (−1: none)
STATS = tl.constexpr(5)


@triton.jit
def _row_span(bos, eos, i_b, max_len, stride_hb, stride_ht, IS_VARLEN: tl.constexpr):
    """`(token0, hidden0, length)` of row `i_b`: the offset of its first token in the token-indexed buffers
    (kinds, scores; times D in dH), the offset of its first element in `hidden`, its length. Packed rows
    pass their boundaries `bos = cu_seqlens[i_b]`, `eos = cu_seqlens[i_b + 1]` as values the kernel loaded
    itself: a helper given the `cu_seqlens` pointer would make Inductor's mutation analysis believe every
    store addressed through its results writes `cu_seqlens`."""
    if IS_VARLEN:
        return bos.to(tl.int64), bos.to(tl.int64) * stride_ht, (eos - bos).to(tl.int32)
    else:
        row = i_b.to(tl.int64)
        return row * max_len, row * stride_hb, max_len


@triton.jit
def _split_end(start, chunk_len, length, i_s, num_splits):
    """End of split `i_s` of a row of `length` tokens: `start + chunk_len`, but the last split runs to the row's
    end, so a plan made from a `max_seqlen` below the row's length costs balance, never tokens."""
    return tl.where(i_s == num_splits - 1, length, tl.minimum(start + chunk_len, length))


@triton.jit
def _token_dots(hidden, token_offsets, mask_t, vector, stride_v, D, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """`<h_t, v>` for a block of tokens (`token_offsets` [BLOCK_T, 1] into `hidden`), D swept in BLOCK_D
    chunks; tokens outside `mask_t` are not read (0). [BLOCK_T] fp32."""
    dots = tl.zeros([BLOCK_T], dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        # [BLOCK_T, BLOCK_D]
        h = tl.load(hidden + token_offsets + offs_d[None, :], mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        v = tl.load(vector + offs_d * stride_v, mask=mask_d, other=0.0).to(tl.float32)  # [BLOCK_D]
        dots += tl.sum(h * v[None, :], axis=1)
    return dots


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits"])
def multiview_pool_fwd_kernel(
    hidden, kinds, attn_weight, attn_bias, cu_seqlens,
    scores, partial_acc, partial_stats,
    max_len, D, chunk_len, num_splits, stride_hb, stride_ht, stride_w,
    HAS_BIAS: tl.constexpr, IS_VARLEN: tl.constexpr, ACCUMULATE: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One (row, split) per program. Always: scores and the split's statistics. With ACCUMULATE (the fused
    variant): the split's three accumulators too; without (phase 1 of two_phase): nothing else."""
    pid = tl.program_id(0)
    i_b, i_s = pid // num_splits, pid % num_splits
    token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                        tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                        i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
    start = i_s * chunk_len
    end = _split_end(start, chunk_len, length, i_s, num_splits)
    split = i_b.to(tl.int64) * num_splits + i_s
    acc = partial_acc + split * ACCUMULATORS * D  # [ACCUMULATORS, D] fp32, zero-initialised
    bias = tl.load(attn_bias).to(tl.float32) if HAS_BIAS else 0.0

    m = float("-inf")
    l_sum = 0.0
    n_response = 0
    n_prompt = 0
    last = -1
    for t0 in range(start, end, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(kinds + token0 + offs_t, mask=mask_t, other=PADDING_TOKEN)  # [BLOCK_T]
        is_response = kind == RESPONSE_TOKEN
        is_prompt = kind == PROMPT_TOKEN
        token_offsets = hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht  # [BLOCK_T, 1]
        a = _token_dots(hidden, token_offsets, is_response, attn_weight, stride_w, D, BLOCK_T, BLOCK_D) + bias  # sweep 1
        tl.store(scores + token0 + offs_t, a, mask=mask_t)

        a_response = tl.where(is_response, a, float("-inf"))
        m_new = tl.maximum(m, tl.max(a_response, axis=0))
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # no response token yet: keep exps finite
        alpha = tl.exp(m - m_ref)
        p = tl.exp(a_response - m_ref)  # [BLOCK_T], 0 outside the response
        l_sum = l_sum * alpha + tl.sum(p, axis=0)
        m = m_new
        if ACCUMULATE:
            for d0 in range(0, D, BLOCK_D):  # sweep 2: the tile again, from L1/L2
                offs_d = d0 + tl.arange(0, BLOCK_D)
                mask_d = offs_d < D
                # [BLOCK_T, BLOCK_D]
                h = tl.load(hidden + token_offsets + offs_d[None, :], mask=(kind != PADDING_TOKEN)[:, None] & mask_d[None, :],
                            other=0.0).to(tl.float32)
                h_response = tl.where(is_response[:, None], h, 0.0)  # selected, never multiplied by 0: NaN stays out
                h_prompt = tl.where(is_prompt[:, None], h, 0.0)
                acc_mean = tl.load(acc + ACC_MEAN * D + offs_d, mask=mask_d)
                acc_attn = tl.load(acc + ACC_ATTN * D + offs_d, mask=mask_d)
                acc_prompt = tl.load(acc + ACC_PROMPT * D + offs_d, mask=mask_d)
                tl.store(acc + ACC_MEAN * D + offs_d, acc_mean + tl.sum(h_response, axis=0), mask=mask_d)
                tl.store(acc + ACC_ATTN * D + offs_d, acc_attn * alpha + tl.sum(h_response * p[:, None], axis=0), mask=mask_d)
                tl.store(acc + ACC_PROMPT * D + offs_d, acc_prompt + tl.sum(h_prompt, axis=0), mask=mask_d)
            # The next block reloads these rows, and another thread of this program may have stored them:
            # order the stores before those loads explicitly.
            tl.debug_barrier()
        n_response += tl.sum(is_response.to(tl.int32), axis=0)
        n_prompt += tl.sum(is_prompt.to(tl.int32), axis=0)
        last = tl.maximum(last, tl.max(tl.where(is_response, offs_t, -1), axis=0))

    stats = partial_stats + split * STATS
    tl.store(stats + STAT_MAX, m)
    tl.store(stats + STAT_SUM, l_sum)
    tl.store(stats + STAT_RESPONSE, n_response.to(tl.float32))
    tl.store(stats + STAT_PROMPT, n_prompt.to(tl.float32))
    tl.store(stats + STAT_LAST, last.to(tl.float32))


@triton.jit
def _row_score_max(partial_stats, i_b, num_stat_splits, BLOCK_S: tl.constexpr):
    """The row's largest response score over its splits' statistics (−inf: no response token)."""
    offs_s = tl.arange(0, BLOCK_S)
    stats = partial_stats + (i_b.to(tl.int64) * num_stat_splits + offs_s) * STATS  # [BLOCK_S]
    return tl.max(tl.load(stats + STAT_MAX, mask=offs_s < num_stat_splits, other=float("-inf")), axis=0)


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits", "num_stat_splits"])
def multiview_pool_accumulate_kernel(
    hidden, kinds, scores, cu_seqlens, partial_stats, partial_acc,
    max_len, D, chunk_len, num_splits, num_stat_splits, stride_hb, stride_ht,
    IS_VARLEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Phase 2 of two_phase: one (row, split, D tile) per program, accumulators in registers, attention
    weights exp(a_t − row max) from phase 1's scores and statistics."""
    pid = tl.program_id(0)
    d_tiles = tl.cdiv(D, BLOCK_D)
    work, i_d = pid // d_tiles, pid % d_tiles
    i_b, i_s = work // num_splits, work % num_splits
    token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                        tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                        i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
    start = i_s * chunk_len
    end = _split_end(start, chunk_len, length, i_s, num_splits)
    m_row = _row_score_max(partial_stats, i_b, num_stat_splits, BLOCK_S)
    m_ref = tl.where(m_row == float("-inf"), 0.0, m_row)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D

    acc_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_D], dtype=tl.float32)
    for t0 in range(start, end, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(kinds + token0 + offs_t, mask=mask_t, other=PADDING_TOKEN)  # [BLOCK_T]
        is_response = kind == RESPONSE_TOKEN
        a = tl.load(scores + token0 + offs_t, mask=mask_t, other=0.0)
        p = tl.where(is_response, tl.exp(a - m_ref), 0.0)
        token_offsets = hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht
        # [BLOCK_T, BLOCK_D]
        h = tl.load(hidden + token_offsets + offs_d[None, :], mask=(kind != PADDING_TOKEN)[:, None] & mask_d[None, :],
                    other=0.0).to(tl.float32)
        h_response = tl.where(is_response[:, None], h, 0.0)  # selected, never multiplied by 0: NaN stays out
        acc_mean += tl.sum(h_response, axis=0)
        acc_attn += tl.sum(h_response * p[:, None], axis=0)
        acc_prompt += tl.sum(tl.where((kind == PROMPT_TOKEN)[:, None], h, 0.0), axis=0)

    acc = partial_acc + (i_b.to(tl.int64) * num_splits + i_s) * ACCUMULATORS * D
    tl.store(acc + ACC_MEAN * D + offs_d, acc_mean, mask=mask_d)
    tl.store(acc + ACC_ATTN * D + offs_d, acc_attn, mask=mask_d)
    tl.store(acc + ACC_PROMPT * D + offs_d, acc_prompt, mask=mask_d)


@triton.jit(do_not_specialize=["max_len", "num_splits", "num_stat_splits"])
def multiview_pool_combine_kernel(
    hidden, cu_seqlens, partial_acc, partial_stats,
    views, z_attn, lse, counts, last_index,
    max_len, D, num_splits, num_stat_splits, stride_hb, stride_ht,
    IS_VARLEN: tl.constexpr, ATTN_AT_ROW_MAX: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """One (row, D tile) per program: merge the row's splits. `ATTN_AT_ROW_MAX`: the attention partials are
    already relative to the row's max score (two_phase), not to their own split's (fused)."""
    pid = tl.program_id(0)
    d_tiles = tl.cdiv(D, BLOCK_D)
    i_b, i_d = pid // d_tiles, pid % d_tiles
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    _, hidden0, _ = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0, tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                        i_b, max_len, stride_hb, stride_ht, IS_VARLEN)

    offs_s = tl.arange(0, BLOCK_S)
    mask_s = offs_s < num_stat_splits
    stats_row = partial_stats + i_b.to(tl.int64) * num_stat_splits * STATS
    stats = stats_row + offs_s * STATS  # [BLOCK_S]: every split's statistics in one vector load per slot
    m_s = tl.load(stats + STAT_MAX, mask=mask_s, other=float("-inf"))
    m_max = tl.max(m_s, axis=0)
    m_ref = tl.where(m_max == float("-inf"), 0.0, m_max)
    l_sum = tl.sum(tl.load(stats + STAT_SUM, mask=mask_s, other=0.0) * tl.exp(m_s - m_ref), axis=0)
    n_response = tl.sum(tl.load(stats + STAT_RESPONSE, mask=mask_s, other=0.0), axis=0)
    n_prompt = tl.sum(tl.load(stats + STAT_PROMPT, mask=mask_s, other=0.0), axis=0)
    last = tl.max(tl.load(stats + STAT_LAST, mask=mask_s, other=-1.0), axis=0)

    acc_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_D], dtype=tl.float32)
    for s in range(0, num_splits):  # independent loads: the scales are known before the loop
        acc = partial_acc + (i_b.to(tl.int64) * num_splits + s) * ACCUMULATORS * D
        if ATTN_AT_ROW_MAX:
            scale = 1.0
        else:
            scale = tl.exp(tl.load(stats_row + s * STATS + STAT_MAX) - m_ref)
        acc_mean += tl.load(acc + ACC_MEAN * D + offs_d, mask=mask_d, other=0.0)
        acc_attn += tl.load(acc + ACC_ATTN * D + offs_d, mask=mask_d, other=0.0) * scale
        acc_prompt += tl.load(acc + ACC_PROMPT * D + offs_d, mask=mask_d, other=0.0)

    z_mean = acc_mean / tl.maximum(n_response, 1.0)
    z_prompt = acc_prompt / tl.maximum(n_prompt, 1.0)
    z_att = tl.where(l_sum > 0, acc_attn / tl.where(l_sum > 0, l_sum, 1.0), 0.0)
    tau = last.to(tl.int64)
    has_last = (tl.zeros([BLOCK_D], dtype=tl.int64) + tau) >= 0  # a vector mask: empty R_b loads nothing
    z_last = tl.load(hidden + hidden0 + tau * stride_ht + offs_d, mask=mask_d & has_last, other=0.0).to(tl.float32)

    out = views + i_b.to(tl.int64) * VIEWS * D
    tl.store(out + VIEW_LAST * D + offs_d, z_last.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + VIEW_MEAN * D + offs_d, z_mean.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + VIEW_ATTN * D + offs_d, z_att.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + VIEW_PROMPT * D + offs_d, z_prompt.to(views.dtype.element_ty), mask=mask_d)
    tl.store(z_attn + i_b.to(tl.int64) * D + offs_d, z_att, mask=mask_d)
    if i_d == 0:
        tl.store(lse + i_b, tl.where(l_sum > 0, m_ref + tl.log(tl.where(l_sum > 0, l_sum, 1.0)), float("-inf")))
        tl.store(counts + i_b * 2, n_response)
        tl.store(counts + i_b * 2 + 1, n_prompt)
        tl.store(last_index + i_b, tau.to(tl.int32))


# Backward (docs/design.md §3). With β_t = exp(a_t − lse)·[t∈R] and upstream dz = (dz_L, dz_M, dz_A, dz_P):
#   z_A = Σ β_t h_t,  ∂a_t/∂h_t = w_a,  ∂β_t/∂a_s = β_t([t=s] − β_s)
#   so  <dz_A, ∂z_A/∂a_t> = β_t (<h_t, dz_A> − <z_A, dz_A>) =: g_t
#   dH_t = [t=τ]·dz_L + [t∈R]/|R|·dz_M + β_t·dz_A + g_t·w_a + [t∈P]/|P|·dz_P
#   dw_a = Σ_{b,t} g_t h_t,   db_a = Σ_{b,t} g_t
# Per token block: sweep 1 over D gives q_t = <h_t, dz_A>; sweep 2 re-reads the tile (L1/L2), writes dH and
# adds g_t·h_t into this program's fp32 dw_a partial row. A fixed number of programs each take every
# num_programs-th (row, split) work item, so the partial rows stay [programs, D] whatever the batch, and
# their host-side sum is deterministic.
@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits", "num_work"])
def multiview_pool_bwd_kernel(
    hidden, kinds, scores, cu_seqlens, attn_weight,
    grad_views, z_attn, lse, counts, last_index,
    d_hidden, partial_dw, partial_db,
    max_len, D, chunk_len, num_splits, num_work, stride_hb, stride_ht, stride_w, stride_gb, stride_gv, stride_gd,
    IS_VARLEN: tl.constexpr, WRITE_D_HIDDEN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """WRITE_D_HIDDEN False (hidden needs no gradient: a frozen backbone) computes dw_a and db_a only."""
    pid = tl.program_id(0)
    dw = partial_dw + pid.to(tl.int64) * D  # this program's fp32 partial row, zero-initialised
    db = 0.0
    for work in range(pid, num_work, tl.num_programs(0)):
        i_b, i_s = work // num_splits, work % num_splits
        token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                            tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                            i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
        start = i_s * chunk_len
        end = _split_end(start, chunk_len, length, i_s, num_splits)
        grad = grad_views + i_b.to(tl.int64) * stride_gb
        z_dot = 0.0  # <z_A, dz_A>
        for d0 in range(0, D, BLOCK_D):
            offs_d = d0 + tl.arange(0, BLOCK_D)
            mask_d = offs_d < D
            dz_a = tl.load(grad + VIEW_ATTN * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
            z_dot += tl.sum(tl.load(z_attn + i_b.to(tl.int64) * D + offs_d, mask=mask_d, other=0.0) * dz_a, axis=0)
        row_lse = tl.load(lse + i_b)
        inv_response = 1.0 / tl.maximum(tl.load(counts + i_b * 2), 1.0)
        inv_prompt = 1.0 / tl.maximum(tl.load(counts + i_b * 2 + 1), 1.0)
        tau = tl.load(last_index + i_b)

        for t0 in range(start, end, BLOCK_T):
            offs_t = t0 + tl.arange(0, BLOCK_T)
            mask_t = offs_t < end
            kind = tl.load(kinds + token0 + offs_t, mask=mask_t, other=PADDING_TOKEN)
            is_response = kind == RESPONSE_TOKEN
            token_offsets = hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht
            # sweep 1
            q = _token_dots(hidden, token_offsets, is_response, grad + VIEW_ATTN * stride_gv, stride_gd, D, BLOCK_T, BLOCK_D)
            a = tl.load(scores + token0 + offs_t, mask=mask_t, other=0.0)
            beta = tl.where(is_response, tl.exp(a - row_lse), 0.0)
            g = beta * (q - z_dot)  # [BLOCK_T]
            db += tl.sum(g, axis=0)
            c_last = (offs_t == tau).to(tl.float32)
            c_mean = tl.where(is_response, inv_response, 0.0)
            c_prompt = tl.where(kind == PROMPT_TOKEN, inv_prompt, 0.0)
            out_offsets = (token0 + offs_t.to(tl.int64))[:, None] * D
            for d0 in range(0, D, BLOCK_D):  # sweep 2
                offs_d = d0 + tl.arange(0, BLOCK_D)
                mask_d = offs_d < D
                mask = mask_t[:, None] & mask_d[None, :]
                # [BLOCK_T, BLOCK_D]: only response tokens (g = 0 elsewhere), so no other token's value reaches dw_a
                h = tl.load(hidden + token_offsets + offs_d[None, :], mask=is_response[:, None] & mask_d[None, :],
                            other=0.0).to(tl.float32)
                dz_l = tl.load(grad + VIEW_LAST * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
                dz_m = tl.load(grad + VIEW_MEAN * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
                dz_a = tl.load(grad + VIEW_ATTN * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
                dz_p = tl.load(grad + VIEW_PROMPT * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
                w = tl.load(attn_weight + offs_d * stride_w, mask=mask_d, other=0.0).to(tl.float32)
                dh = (c_last[:, None] * dz_l[None, :] + c_mean[:, None] * dz_m[None, :] + beta[:, None] * dz_a[None, :]
                      + g[:, None] * w[None, :] + c_prompt[:, None] * dz_p[None, :])
                if WRITE_D_HIDDEN:
                    tl.store(d_hidden + out_offsets + offs_d[None, :], dh.to(d_hidden.dtype.element_ty), mask=mask)
                tl.store(dw + offs_d, tl.load(dw + offs_d, mask=mask_d) + tl.sum(g[:, None] * h, axis=0), mask=mask_d)
            tl.debug_barrier()  # the next block reloads the dw row: order this block's stores before it
    tl.store(partial_db + pid, db)


def _layout(hidden: torch.Tensor, cu_seqlens: torch.Tensor | None, max_seqlen: int) -> tuple[int, int, int, int]:
    """`(rows, max_len, stride_hb, stride_ht)` of the padded [B, T, D] or packed [total_T, D] layout."""
    if cu_seqlens is None:
        return hidden.shape[0], hidden.shape[1], hidden.stride(0), hidden.stride(1)
    return cu_seqlens.numel() - 1, max_seqlen, 0, hidden.stride(0)


@triton_op("adajudge::multiview_pool_fwd", mutates_args=())
def multiview_pool_fwd(
    hidden: torch.Tensor,
    kinds: torch.Tensor,
    attn_weight: torch.Tensor,
    attn_bias: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    max_seqlen: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the forward. `kinds`: int8 `TokenKind` per token, laid out like `hidden`'s tokens;
    `max_seqlen`: the longest packed row (unused when padded).

    Returns `(views [rows, 4, D] in hidden.dtype, scores, z_attn, lse, counts, last_index)`; the last five
    (fp32, int32 last) feed `multiview_pool_bwd`.
    """
    hidden = hidden if hidden.stride(-1) == 1 else hidden.contiguous()
    dim, device = hidden.shape[-1], hidden.device
    rows, max_len, stride_hb, stride_ht = _layout(hidden, cu_seqlens, max_seqlen)
    plan = plan_token_sweep(dim, hidden.element_size(), max_len, rows, device)
    two_phase = forward_variant() == "two_phase"
    stat_splits, stat_chunk = plan.num_splits, plan.chunk_len
    acc_splits, acc_chunk, d_tiles = stat_splits, stat_chunk, 1
    acc_block_t, acc_block_d = forced_tile(TWO_PHASE_BLOCK_T, TWO_PHASE_BLOCK_D)
    if two_phase:
        d_tiles = triton.cdiv(dim, acc_block_d)
        acc_splits, acc_chunk = token_splits(max_len, rows, acc_block_t, device, programs_per_row=d_tiles)

    def new(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=device)

    scores = new(*kinds.shape)
    partial_acc = torch.zeros(rows, acc_splits, ACCUMULATORS.value, dim, dtype=torch.float32, device=device)
    partial_stats = new(rows, stat_splits, STATS.value)
    views, z_attn, lse = new(rows, NUM_VIEWS, dim, dtype=hidden.dtype), new(rows, dim), new(rows)
    counts, last_index = new(rows, 2), new(rows, dtype=torch.int32)
    common = dict(hidden=hidden, cu_seqlens=cu_seqlens, max_len=max_len, D=dim, stride_hb=stride_hb, stride_ht=stride_ht,
                  IS_VARLEN=cu_seqlens is not None)
    with on_device(hidden):
        launch(
            multiview_pool_fwd_kernel, (rows * stat_splits,), **common,
            kinds=kinds, attn_weight=attn_weight, attn_bias=attn_bias, scores=scores, partial_acc=partial_acc,
            partial_stats=partial_stats, chunk_len=stat_chunk, num_splits=stat_splits, stride_w=attn_weight.stride(0),
            HAS_BIAS=attn_bias is not None, ACCUMULATE=not two_phase, BLOCK_T=plan.block_t, BLOCK_D=plan.block_d,
            num_warps=POOL_WARPS, maxnreg=POOL_MAX_REGISTERS,
        )
        if two_phase:
            launch(
                multiview_pool_accumulate_kernel, (rows * acc_splits * d_tiles,), **common,
                kinds=kinds, scores=scores, partial_stats=partial_stats, partial_acc=partial_acc,
                chunk_len=acc_chunk, num_splits=acc_splits, num_stat_splits=stat_splits,
                BLOCK_T=acc_block_t, BLOCK_D=acc_block_d, BLOCK_S=MAX_SPLITS, num_warps=SMALL_WARPS,
            )
        combine_block_d = min(triton.next_power_of_2(dim), COMBINE_BLOCK_D)
        launch(
            multiview_pool_combine_kernel, (rows * triton.cdiv(dim, combine_block_d),), **common,
            partial_acc=partial_acc, partial_stats=partial_stats, views=views, z_attn=z_attn, lse=lse,
            counts=counts, last_index=last_index, num_splits=acc_splits, num_stat_splits=stat_splits,
            ATTN_AT_ROW_MAX=two_phase, BLOCK_D=combine_block_d, BLOCK_S=MAX_SPLITS,
            num_warps=POOL_WARPS, maxnreg=POOL_MAX_REGISTERS,
        )
    return views, scores, z_attn, lse, counts, last_index


@triton_op("adajudge::multiview_pool_bwd", mutates_args=())
def multiview_pool_bwd(
    grad_views: torch.Tensor,
    hidden: torch.Tensor,
    kinds: torch.Tensor,
    scores: torch.Tensor,
    cu_seqlens: torch.Tensor | None,
    attn_weight: torch.Tensor,
    z_attn: torch.Tensor,
    lse: torch.Tensor,
    counts: torch.Tensor,
    last_index: torch.Tensor,
    max_seqlen: int,
    write_d_hidden: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the one-pass backward. Returns `(d_hidden like hidden, or empty when not `write_d_hidden`,
    d_attn_weight [D] in attn_weight's dtype, d_attn_bias [] fp32)`."""
    hidden = hidden if hidden.stride(-1) == 1 else hidden.contiguous()
    dim, device = hidden.shape[-1], hidden.device
    rows, max_len, stride_hb, stride_ht = _layout(hidden, cu_seqlens, max_seqlen)
    plan = plan_token_sweep(dim, hidden.element_size(), max_len, rows, device)
    num_work = rows * plan.num_splits
    programs = max(1, min(num_work, target_programs(device)))
    d_hidden = torch.empty(hidden.shape if write_d_hidden else (0,), dtype=hidden.dtype, device=device)
    partial_dw = torch.zeros(programs, dim, dtype=torch.float32, device=device)
    partial_db = torch.zeros(programs, dtype=torch.float32, device=device)
    with on_device(hidden):
        launch(
            multiview_pool_bwd_kernel, (programs if num_work else 0,),
            hidden=hidden, kinds=kinds, scores=scores, cu_seqlens=cu_seqlens, attn_weight=attn_weight,
            grad_views=grad_views, z_attn=z_attn, lse=lse, counts=counts, last_index=last_index,
            d_hidden=d_hidden, partial_dw=partial_dw, partial_db=partial_db,
            max_len=max_len, D=dim, chunk_len=plan.chunk_len, num_splits=plan.num_splits, num_work=num_work,
            stride_hb=stride_hb, stride_ht=stride_ht, stride_w=attn_weight.stride(0),
            stride_gb=grad_views.stride(0), stride_gv=grad_views.stride(1), stride_gd=grad_views.stride(2),
            IS_VARLEN=cu_seqlens is not None, WRITE_D_HIDDEN=write_d_hidden, BLOCK_T=plan.block_t, BLOCK_D=plan.block_d,
            num_warps=POOL_WARPS, maxnreg=POOL_MAX_REGISTERS,
        )
    return d_hidden, partial_dw.sum(0).to(attn_weight.dtype), partial_db.sum()


def token_kinds(attention_mask: torch.Tensor, response_mask: torch.Tensor | None) -> torch.Tensor:
    """int8 `TokenKind` map: 0 padding, 1 prompt, 2 response (one byte per token for the kernels)."""
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    return (real.to(torch.int8) + response.to(torch.int8)).contiguous()


def _save_for_multiview_pool_bwd(ctx, inputs, output):
    """`setup_context` of `multiview_pool_fwd`'s autograd: keep what `multiview_pool_bwd` reads. Only `views`
    is differentiable; the other outputs are the backward's saved state."""
    hidden, kinds, attn_weight, attn_bias, cu_seqlens, max_seqlen = inputs
    _, *saved = output
    ctx.mark_non_differentiable(*saved)
    ctx.save_for_backward(hidden, kinds, cu_seqlens, attn_weight, *saved)
    ctx.max_seqlen = max_seqlen
    ctx.bias_layout = None if attn_bias is None else (attn_bias.dtype, attn_bias.shape)


def _multiview_pool_backward(ctx, grad_views, *_):
    """Gradients of `multiview_pool_fwd`'s inputs `(hidden, kinds, attn_weight, attn_bias, cu_seqlens,
    max_seqlen)` from `views`' upstream gradient, in the inputs' dtypes (first order only)."""
    hidden, kinds, cu_seqlens, attn_weight, scores, z_attn, lse, counts, last_index = ctx.saved_tensors
    needs_d_hidden = ctx.needs_input_grad[0]
    d_hidden, d_weight, d_bias = torch.ops.adajudge.multiview_pool_bwd(
        grad_views, hidden, kinds, scores, cu_seqlens, attn_weight, z_attn, lse, counts, last_index, ctx.max_seqlen,
        needs_d_hidden,
    )
    d_hidden = d_hidden if needs_d_hidden else None
    if ctx.bias_layout is None:
        d_bias = None
    else:
        dtype, shape = ctx.bias_layout
        d_bias = d_bias.to(dtype).reshape(shape)
    return d_hidden, None, d_weight, d_bias, None, None


multiview_pool_fwd.register_autograd(_multiview_pool_backward, setup_context=_save_for_multiview_pool_bwd)


def multiview_pool_triton(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen):
    """`adajudge.ops.multiview_pool` on the Triton kernels, for validated input: fp32/bf16/fp16 `hidden`,
    packed input with its longest row `max_seqlen` as an int. Gradients come back in their inputs' dtypes."""
    kinds = token_kinds(attention_mask, response_mask)
    if cu_seqlens is not None:
        cu_seqlens = cu_seqlens.contiguous()  # the kernels read the boundaries at stride 1
    return torch.ops.adajudge.multiview_pool_fwd(hidden, kinds, attn_weight, attn_bias, cu_seqlens, max_seqlen)[0]
