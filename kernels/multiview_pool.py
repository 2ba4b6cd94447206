"""Multi-view pooling (docs/design.md §3) in Triton: kernels, launchers, registered autograd, entry point.
The designs, their bytes and registers, and what the static GPU model predicts for them: docs/kernels.md.

Forward, two designs behind the private switch `ADAJUDGE_POOL_FORWARD` (`adajudge.kernels.pool_forward`):

`fused` (the default) — one program per (row, token split) holds the whole hidden size: its [BLOCK_T,
BLOCK_D] blocks have the warps side by side along D, each thread C = BLOCK_D/(32·num_warps) columns (64 bytes)
of every token (BLOCK_D = D rounded up to a power of two, at most RESIDENT_MAX_D; beyond, `two_phase`):

    per iteration: issue the loads of the next step's blocks (and of the kinds of the step after), then
    for each of the step's blocks (two while they fit in TILE_BYTES per SM: PAIRED):
        a_t = <h_t, w_a> + b_a                 one cross-warp reduction per block; scores [T] fp32 kept
        m, l = running max and Σ exp(a_t − m) over the response tokens (online softmax)
        acc_A ← acc_A·exp(m_old − m) + Σ_t exp(a_t − m)·h_t,  acc_M += Σ_{t∈R} h_t,  acc_P += Σ_{t∈P} h_t
    acc_{M,A,P}: [BLOCK_D] fp32 each, in registers; stored once per split (no zero-fill, nothing re-read)

`two_phase` — any D: phase 1 scores every token (one program per (row, split), D swept in chunks) and keeps
each split's max and sum; phase 2 tiles D across programs with p_t = exp(a_t − the row's max) and the three
accumulators in registers. Reads `hidden` twice.

Both end in a combine kernel, one program per (row, D tile): it merges every split's statistics and partial
accumulators in one [BLOCK_S, BLOCK_D] step (per-lane running maxima, no reduction inside its loop), divides
by the counts, gathers the last response token, and writes [B, 4, D] in hidden's dtype plus what the
backward needs: z_A fp32, lse = m + log l, counts, τ.

DRAM bytes per row (e: element size of hidden; T tokens, D hidden size, S splits, at least MIN_SPLIT_TOKENS
tokens each, so the partials are at most 24/(MIN_SPLIT_TOKENS·e) of hidden's bytes):

    fused       T·D·e (hidden, once; padding tokens not read) + (k + 4)·T (kinds, k bytes each; scores)
                + 2·S·(3·D + 5)·4 (partials, written once, read once) + 4·D·e + 4·D + 16 (views, z_A, statistics)
    two_phase   2·T·D·e + (2k + 8)·T (kinds read by each phase; scores written, then read) + 2·S·(3·D + 5)·4
                + the same outputs

Registers of `fused` per thread: 3·C accumulators and C of w_a (fp32), the block being computed in fp32
(BLOCK_T·C) and the next step's raw tiles in flight (`FusedPlan`): about 250 of the 255 a thread may have
at D = 4096 bf16 (C = 32, 4 warps, two programs per SM) — the compile check reports every build's figures
and that none spills. No kernel sets a register cap (`launch` takes num_warps and num_stages only, the
options `torch.compile` keeps), so compiled graphs run these very builds.

Backward (docs/design.md §3; the VJP is derived above `multiview_pool_bwd_kernel`): reads hidden once (its
response tokens) and writes dH once. D ≤ RESIDENT_MAX_D: each program holds dz_A, w_a, dz_M/|R|, dz_P/|P|
and its dw_a accumulator for the whole of D in registers, the next block's tile in flight. A larger D first
scores q_t = <h_t, dz_A> (phase 1 above, a second read of hidden) and tiles D across programs. A last kernel
sums the programs' dw_a rows and db_a (deterministic, no atomics) and casts dw_a to w_a's dtype: two
launches, no PyTorch op in between.

Offsets into hidden, dH and the partials are int64; lengths, strides and split sizes are runtime arguments.
Loops with runtime bounds are `while` loops (kernels/README.md). No launcher reads a tensor's values on the
host: the packed layout takes its longest row as `max_seqlen`.
"""
import dataclasses

import torch
import triton
import triton.language as tl
from torch.library import triton_op

from adajudge.views import NUM_VIEWS, TokenKind, View

from .launch import SMALL_WARPS, TRITON_VERSION, forced, launch, multiprocessors, on_device
from .pool_forward import forward_variant

# The fused kernels hold the whole hidden size in registers up to this many columns (fp16: fewer, its
# conversion to fp32 takes more registers on sm_80, where 8192 columns spilled).
RESIDENT_MAX_D = 8192
RESIDENT_MAX_D_FP16 = 4096
# Hidden bytes an SM streams per iteration of the fused kernels (and has in flight while it computes the last).
TILE_BYTES = 32 << 10
# Bytes of each token a thread of a fused program holds (its columns): 32 of bf16, 16 of fp32; fp16 a quarter
# of that in the forward, half in the backward (more spilled on sm_80, where its conversion takes more).
ROW_BYTES_PER_THREAD = 64
# dtype of the token-kind map the kernels read (ours): one byte per token under Triton 3.9; four before 3.9,
# whose ptxas 12.8 keeps 8-bit kinds on the stack (the fused backward's loop at bf16 D ≥ 3584 on sm_90, an
# STL.S16 and an LDL.S16 per token), where 32-bit kinds halve its spilling builds (37 → 17, none in a
# backward). Triton 3.9 spills with 32-bit kinds instead (its bf16 forward). docs/kernels.md has the trade;
# Triton 3.7 and 3.8 are built by no CI stage.
KINDS_DTYPE = torch.int32 if TRITON_VERSION < (3, 9) else torch.int8
# Tokens of one fused split at least: each split writes (and the combine reads) 3·D fp32 partials, at most
# 24/(MIN_SPLIT_TOKENS·e) of the bytes of hidden it reads.
MIN_SPLIT_TOKENS = 64
# Tile of the D-tiled kernels (two_phase, and the backward beyond RESIDENT_MAX_D): [TILED_BLOCK_T, TILED_BLOCK_D].
TILED_BLOCK_T = 32
TILED_BLOCK_D = 128
# Elements of the combine's [BLOCK_S, BLOCK_D] tiles over its COMBINE_WARPS warps, and its narrowest D tile
# (16 fp32: two 32-byte sectors).
COMBINE_TILE = 4096
COMBINE_WARPS = 4
COMBINE_MIN_BLOCK_D = 16
# Largest number of token splits per row (the combine loops over them in tiles).
MAX_SPLITS = 1024
# Tile of the dw_a reduction: [DW_BLOCK_R partial rows, DW_BLOCK_D].
DW_BLOCK_R = 64
DW_BLOCK_D = 32

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
    d0 = 0
    while d0 < D:
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        # [BLOCK_T, BLOCK_D]
        h = tl.load(hidden + token_offsets + offs_d[None, :], mask=mask_t[:, None] & mask_d[None, :], other=0.0).to(tl.float32)
        v = tl.load(vector + offs_d * stride_v, mask=mask_d, other=0.0).to(tl.float32)  # [BLOCK_D]
        dots += tl.sum(h * v[None, :], axis=1)
        d0 += BLOCK_D
    return dots


@triton.jit
def _store_stats(partial_stats, split, m, l_sum, n_response, n_prompt, last):
    stats = partial_stats + split * STATS
    tl.store(stats + STAT_MAX, m)
    tl.store(stats + STAT_SUM, l_sum)
    tl.store(stats + STAT_RESPONSE, n_response.to(tl.float32))
    tl.store(stats + STAT_PROMPT, n_prompt.to(tl.float32))
    tl.store(stats + STAT_LAST, last.to(tl.float32))


@triton.jit
def _kinds(kinds_row, offs_t, end):
    """Token kinds of `offs_t` as a [BLOCK_T, 1] column (PADDING past `end`): loaded straight into the layout the
    [BLOCK_T, BLOCK_D] tiles use, so no layout conversion waits on the load."""
    return tl.load(kinds_row + offs_t[:, None], mask=offs_t[:, None] < end, other=PADDING_TOKEN)


@triton.jit
def _tile(hidden, hidden0, offs_t, stride_ht, offs_d, rows, mask_d):
    """The [BLOCK_T, BLOCK_D] tile of tokens `offs_t`, in hidden's dtype, of the tokens in `rows` [BLOCK_T, 1]
    only: the others are not read (their values are undefined and never used: every use selects by kind)."""
    pointers = hidden + hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht + offs_d[None, :]
    return tl.load(pointers, mask=rows & mask_d[None, :])  # one line: SASS and TTIR name it alike


@triton.jit
def _column(values_row, offs_t, end):
    """fp32 values of tokens `offs_t` (0 past `end`) as a [BLOCK_T, 1] column, like `_kinds`."""
    return tl.load(values_row + offs_t[:, None], mask=offs_t[:, None] < end, other=0.0)


@triton.jit
def _add_selected_tokens(acc, h, selected, BY_TOKEN: tl.constexpr):
    """`acc` plus the rows of `h` [BLOCK_T, BLOCK_D] (fp32) whose `selected` [BLOCK_T, 1] is set; the others never
    touch it, whatever they hold. `BY_TOKEN`, blocks of one or two tokens (the fused plans'): the rows are added
    one by one, each add kept or dropped by its token's flag, which ptxas issues as one predicated add per token
    and column (`@P FADD`) where a select and an add per element went before."""
    if BY_TOKEN and h.shape[0] == 1:
        total = tl.where(tl.max(selected.to(tl.int32)) > 0, acc + tl.sum(h, axis=0), acc)
    elif BY_TOKEN and h.shape[0] == 2:
        h0, h1 = tl.split(tl.permute(h, (1, 0)))
        s0, s1 = tl.split(tl.permute(selected.to(tl.int32), (1, 0)))
        total = tl.where(tl.max(s0) > 0, acc + h0, acc)
        total = tl.where(tl.max(s1) > 0, total + h1, total)
    else:
        total = acc + tl.sum(tl.where(selected, h, 0.0), axis=0)
    return total


@triton.jit
def _fwd_block(h, kind, offs_t, end, w, bias, scores_row, acc_mean, acc_attn, acc_prompt, m, l_sum, n_response, n_prompt,
               last):
    """One block of the fused forward: scores, the online softmax and the three accumulators."""
    is_response = kind == RESPONSE_TOKEN  # [BLOCK_T, 1]
    h32 = h.to(tl.float32)
    h_response = tl.where(is_response, h32, 0.0)  # selected, never multiplied by 0: NaN stays out
    acc_mean += tl.sum(h_response, axis=0)
    # token by token in 16-bit dtypes, whose blocks are issue-bound (twice the elements per byte of fp32); fp32
    # has issue to spare, and at D = 8192 no registers (its builds spilled)
    acc_prompt = _add_selected_tokens(acc_prompt, h32, kind == PROMPT_TOKEN, BY_TOKEN=h.dtype.primitive_bitwidth == 16)
    a = tl.sum(h_response * w[None, :], axis=1) + bias  # [BLOCK_T]
    tl.store(scores_row + offs_t[:, None], a[:, None], mask=offs_t[:, None] < end)  # as a column: no layout change
    responds = tl.max(is_response.to(tl.int32), axis=1) > 0  # [BLOCK_T] (a reduction over one column: free)
    a_response = tl.where(responds, a, float("-inf"))
    m_new = tl.maximum(m, tl.max(a_response, axis=0))
    m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # no response token yet: keep exps finite
    alpha = tl.exp(m - m_ref)
    p = tl.exp(a_response - m_ref)  # [BLOCK_T], 0 outside the response
    l_sum = l_sum * alpha + tl.sum(p, axis=0)
    acc_attn = acc_attn * alpha + tl.sum(h_response * p[:, None], axis=0)
    n_response += tl.sum(responds.to(tl.int32), axis=0)
    n_prompt += tl.sum((kind == PROMPT_TOKEN).to(tl.int32))
    last = tl.maximum(last, tl.max(tl.where(responds, offs_t, -1), axis=0))
    return acc_mean, acc_attn, acc_prompt, m_new, l_sum, n_response, n_prompt, last


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits"])
def multiview_pool_fwd_kernel(
    hidden, kinds, attn_weight, attn_bias, cu_seqlens,
    scores, partial_acc, partial_stats,
    max_len, D, chunk_len, num_splits, stride_hb, stride_ht, stride_w,
    HAS_BIAS: tl.constexpr, IS_VARLEN: tl.constexpr, PAIRED: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """`fused`: one (row, split) per program, the whole of D (BLOCK_D ≥ D): scores, the split's statistics and
    its three accumulators. Each iteration computes one block of BLOCK_T tokens (two with PAIRED) while the
    next step's are in flight (their loads issued first, into registers: a double buffer), and loads the
    kinds of the step after those, so no load waits on another."""
    pid = tl.program_id(0)
    i_b, i_s = pid // num_splits, pid % num_splits
    token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                        tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                        i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
    start = i_s * chunk_len
    end = _split_end(start, chunk_len, length, i_s, num_splits)
    offs_d = tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    w = tl.load(attn_weight + offs_d * stride_w, mask=mask_d, other=0.0).to(tl.float32)  # [BLOCK_D]
    bias = tl.load(attn_bias).to(tl.float32) if HAS_BIAS else 0.0
    kinds_row, scores_row = kinds + token0, scores + token0
    offs = start + tl.arange(0, BLOCK_T)

    acc_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_D], dtype=tl.float32)
    m = float("-inf")
    l_sum = 0.0
    n_response = 0
    n_prompt = 0
    last = -1
    step = 2 * BLOCK_T if PAIRED else BLOCK_T
    kind_a = _kinds(kinds_row, offs, end)
    h_a = _tile(hidden, hidden0, offs, stride_ht, offs_d, kind_a != PADDING_TOKEN, mask_d)
    kind_c = _kinds(kinds_row, offs + step, end)
    if PAIRED:
        kind_b = _kinds(kinds_row, offs + BLOCK_T, end)
        h_b = _tile(hidden, hidden0, offs + BLOCK_T, stride_ht, offs_d, kind_b != PADDING_TOKEN, mask_d)
        kind_d = _kinds(kinds_row, offs + step + BLOCK_T, end)
    t0 = start
    while t0 < end:
        offs = t0 + tl.arange(0, BLOCK_T)
        # the next step's tiles (their kinds arrived last iteration), and the kinds of the step after
        h_c = _tile(hidden, hidden0, offs + step, stride_ht, offs_d, kind_c != PADDING_TOKEN, mask_d)
        kind_e = _kinds(kinds_row, offs + 2 * step, end)
        if PAIRED:
            h_d = _tile(hidden, hidden0, offs + step + BLOCK_T, stride_ht, offs_d, kind_d != PADDING_TOKEN, mask_d)
            kind_f = _kinds(kinds_row, offs + 2 * step + BLOCK_T, end)
        acc_mean, acc_attn, acc_prompt, m, l_sum, n_response, n_prompt, last = _fwd_block(
            h_a, kind_a, offs, end, w, bias, scores_row, acc_mean, acc_attn, acc_prompt, m, l_sum, n_response, n_prompt, last)
        if PAIRED:
            acc_mean, acc_attn, acc_prompt, m, l_sum, n_response, n_prompt, last = _fwd_block(
                h_b, kind_b, offs + BLOCK_T, end, w, bias, scores_row, acc_mean, acc_attn, acc_prompt, m, l_sum, n_response,
                n_prompt, last)
            h_b, kind_b, kind_d = h_d, kind_d, kind_f
        h_a, kind_a, kind_c = h_c, kind_c, kind_e
        t0 += step

    split = i_b.to(tl.int64) * num_splits + i_s
    acc = partial_acc + split * ACCUMULATORS * D
    tl.store(acc + ACC_MEAN * D + offs_d, acc_mean, mask=mask_d)
    tl.store(acc + ACC_ATTN * D + offs_d, acc_attn, mask=mask_d)
    tl.store(acc + ACC_PROMPT * D + offs_d, acc_prompt, mask=mask_d)
    _store_stats(partial_stats, split, m, l_sum, n_response, n_prompt, last)


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits"])
def multiview_pool_scores_kernel(
    hidden, kinds, vector, bias_ptr, cu_seqlens, scores, partial_stats,
    max_len, D, chunk_len, num_splits, stride_hb, stride_ht, stride_vb, stride_v,
    HAS_BIAS: tl.constexpr, HAS_STATS: tl.constexpr, IS_VARLEN: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One (row, split) per program, D swept in chunks: `<h_t, v_b> (+ b)` for the response tokens (0
    elsewhere), v_b = `vector + b·stride_vb` (w_a for every row: the scores of two_phase's phase 1, with
    HAS_STATS the split's statistics too; dz_A of row b: q_t for the D-tiled backward)."""
    pid = tl.program_id(0)
    i_b, i_s = pid // num_splits, pid % num_splits
    token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                        tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                        i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
    start = i_s * chunk_len
    end = _split_end(start, chunk_len, length, i_s, num_splits)
    row_vector = vector + i_b.to(tl.int64) * stride_vb
    bias = tl.load(bias_ptr).to(tl.float32) if HAS_BIAS else 0.0

    m = float("-inf")
    l_sum = 0.0
    n_response = 0
    n_prompt = 0
    last = -1
    t0 = start
    while t0 < end:
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(kinds + token0 + offs_t, mask=mask_t, other=PADDING_TOKEN)  # [BLOCK_T]
        is_response = kind == RESPONSE_TOKEN
        token_offsets = hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht  # [BLOCK_T, 1]
        a = _token_dots(hidden, token_offsets, is_response, row_vector, stride_v, D, BLOCK_T, BLOCK_D) + bias
        tl.store(scores + token0 + offs_t, a, mask=mask_t)
        if HAS_STATS:
            a_response = tl.where(is_response, a, float("-inf"))
            m_new = tl.maximum(m, tl.max(a_response, axis=0))
            m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)
            l_sum = l_sum * tl.exp(m - m_ref) + tl.sum(tl.exp(a_response - m_ref), axis=0)
            m = m_new
            n_response += tl.sum(is_response.to(tl.int32), axis=0)
            n_prompt += tl.sum((kind == PROMPT_TOKEN).to(tl.int32), axis=0)
            last = tl.maximum(last, tl.max(tl.where(is_response, offs_t, -1), axis=0))
        t0 += BLOCK_T
    if HAS_STATS:
        _store_stats(partial_stats, i_b.to(tl.int64) * num_splits + i_s, m, l_sum, n_response, n_prompt, last)


@triton.jit
def _row_score_max(partial_stats, i_b, num_splits, BLOCK_S: tl.constexpr):
    """The row's largest response score over its splits' statistics (−inf: no response token)."""
    stats_row = partial_stats + i_b.to(tl.int64) * num_splits * STATS
    m = float("-inf")
    s0 = 0
    while s0 < num_splits:
        offs_s = s0 + tl.arange(0, BLOCK_S)
        m = tl.maximum(m, tl.max(tl.load(stats_row + offs_s * STATS + STAT_MAX, mask=offs_s < num_splits,
                                         other=float("-inf")), axis=0))
        s0 += BLOCK_S
    return m


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits"])
def multiview_pool_accumulate_kernel(
    hidden, kinds, scores, cu_seqlens, partial_stats, partial_acc,
    max_len, D, chunk_len, num_splits, stride_hb, stride_ht,
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
    m_row = _row_score_max(partial_stats, i_b, num_splits, BLOCK_S)
    m_ref = tl.where(m_row == float("-inf"), 0.0, m_row)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D

    acc_mean = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_D], dtype=tl.float32)
    t0 = start
    while t0 < end:
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask_t = offs_t < end
        kind = tl.load(kinds + token0 + offs_t, mask=mask_t, other=PADDING_TOKEN)  # [BLOCK_T]
        is_response = kind == RESPONSE_TOKEN
        a = tl.load(scores + token0 + offs_t, mask=mask_t, other=0.0)
        p = tl.exp(tl.where(is_response, a - m_ref, float("-inf")))  # other tokens' scores may exceed the max
        token_offsets = hidden0 + offs_t.to(tl.int64)[:, None] * stride_ht
        # [BLOCK_T, BLOCK_D]
        h = tl.load(hidden + token_offsets + offs_d[None, :], mask=(kind != PADDING_TOKEN)[:, None] & mask_d[None, :],
                    other=0.0).to(tl.float32)
        h_response = tl.where(is_response[:, None], h, 0.0)  # selected, never multiplied by 0: NaN stays out
        acc_mean += tl.sum(h_response, axis=0)
        acc_attn += tl.sum(h_response * p[:, None], axis=0)
        acc_prompt += tl.sum(tl.where((kind == PROMPT_TOKEN)[:, None], h, 0.0), axis=0)
        t0 += BLOCK_T

    acc = partial_acc + (i_b.to(tl.int64) * num_splits + i_s) * ACCUMULATORS * D
    tl.store(acc + ACC_MEAN * D + offs_d, acc_mean, mask=mask_d)
    tl.store(acc + ACC_ATTN * D + offs_d, acc_attn, mask=mask_d)
    tl.store(acc + ACC_PROMPT * D + offs_d, acc_prompt, mask=mask_d)


@triton.jit(do_not_specialize=["max_len", "num_splits"])
def multiview_pool_combine_kernel(
    hidden, cu_seqlens, partial_acc, partial_stats,
    views, z_attn, lse, counts, last_index,
    max_len, D, num_splits, stride_hb, stride_ht,
    IS_VARLEN: tl.constexpr, ATTN_AT_ROW_MAX: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """One (row: grid axis 0, D tile: axis 1) per program: merge the row's splits in one pass, [BLOCK_S,
    BLOCK_D] partials and [BLOCK_S] statistics per step. Each of the BLOCK_S lanes keeps its own running max and
    rescales its attention partial as it grows (flash-decoding's merge, lane by lane), so nothing is reduced
    inside the loop and the steps' loads are independent; the lanes are merged once at the end.
    `ATTN_AT_ROW_MAX`: the attention partials are already relative to the row's max (two_phase), so only the
    splits' sums are rescaled to it."""
    i_b, i_d = tl.program_id(0), tl.program_id(1)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    _, hidden0, _ = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0, tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                              i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
    stats_row = partial_stats + i_b.to(tl.int64) * num_splits * STATS

    m_lane = tl.full([BLOCK_S], float("-inf"), dtype=tl.float32)
    l_sum = tl.zeros([BLOCK_S], dtype=tl.float32)
    n_response = tl.zeros([BLOCK_S], dtype=tl.float32)
    n_prompt = tl.zeros([BLOCK_S], dtype=tl.float32)
    last = tl.full([BLOCK_S], -1.0, dtype=tl.float32)
    acc_mean = tl.zeros([BLOCK_S, BLOCK_D], dtype=tl.float32)
    acc_attn = tl.zeros([BLOCK_S, BLOCK_D], dtype=tl.float32)
    acc_prompt = tl.zeros([BLOCK_S, BLOCK_D], dtype=tl.float32)
    s0 = 0
    while s0 < num_splits:
        offs_s = s0 + tl.arange(0, BLOCK_S)
        mask_s = offs_s < num_splits
        splits = (i_b.to(tl.int64) * num_splits + offs_s) * ACCUMULATORS * D
        acc = partial_acc + splits[:, None] + offs_d[None, :]  # [BLOCK_S, BLOCK_D]
        mask = mask_s[:, None] & mask_d[None, :]
        mean = tl.load(acc + ACC_MEAN * D, mask=mask, other=0.0)
        attn = tl.load(acc + ACC_ATTN * D, mask=mask, other=0.0)
        prompt = tl.load(acc + ACC_PROMPT * D, mask=mask, other=0.0)
        stats = stats_row + offs_s * STATS  # [BLOCK_S]
        m_s = tl.load(stats + STAT_MAX, mask=mask_s, other=float("-inf"))
        l_s = tl.load(stats + STAT_SUM, mask=mask_s, other=0.0)
        responses = tl.load(stats + STAT_RESPONSE, mask=mask_s, other=0.0)
        prompts = tl.load(stats + STAT_PROMPT, mask=mask_s, other=0.0)
        lasts = tl.load(stats + STAT_LAST, mask=mask_s, other=-1.0)
        acc_mean += mean
        acc_prompt += prompt
        n_response += responses
        n_prompt += prompts
        last = tl.maximum(last, lasts)
        m_new = tl.maximum(m_lane, m_s)
        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # no response token in the lane yet: keep exps finite
        alpha, scale = tl.exp(m_lane - m_ref), tl.exp(m_s - m_ref)  # [BLOCK_S]
        l_sum = l_sum * alpha + l_s * scale
        if ATTN_AT_ROW_MAX:
            acc_attn += attn
        else:
            acc_attn = acc_attn * alpha[:, None] + attn * scale[:, None]
        m_lane = m_new
        s0 += BLOCK_S

    # The last response token's row, in hidden's dtype: its load issued before the merge's arithmetic, which
    # hides its latency (loaded after it, as the views' stores began, it spilled in Triton 3.6's packed fp32
    # builds at D = 576 and 896).
    tau = tl.max(last, axis=0).to(tl.int32)
    has_last = (tl.zeros([BLOCK_D], dtype=tl.int32) + tau) >= 0  # a vector mask: empty R_b loads nothing
    z_last = tl.load(hidden + hidden0 + tl.maximum(tau, 0).to(tl.int64) * stride_ht + offs_d, mask=mask_d & has_last,
                     other=0.0)  # τ clamped for the address only (the mask drops τ = −1)
    m = tl.max(m_lane, axis=0)
    m_row = tl.where(m == float("-inf"), 0.0, m)
    to_row = tl.exp(m_lane - m_row)  # [BLOCK_S]: each lane's running max to the row's
    l_sum = l_sum * to_row
    if not ATTN_AT_ROW_MAX:
        acc_attn = acc_attn * to_row[:, None]
    l_total = tl.sum(l_sum, axis=0)
    n_r, n_p = tl.sum(n_response, axis=0), tl.sum(n_prompt, axis=0)
    z_mean = tl.sum(acc_mean, axis=0) / tl.maximum(n_r, 1.0)
    z_prompt = tl.sum(acc_prompt, axis=0) / tl.maximum(n_p, 1.0)
    empty = l_total == 0  # no response token; a NaN sum (a NaN score) is not empty: it reaches z_A and lse
    z_att = tl.where(empty, 0.0, tl.sum(acc_attn, axis=0) / tl.where(empty, 1.0, l_total))
    out = views + i_b.to(tl.int64) * VIEWS * D
    tl.store(out + VIEW_MEAN * D + offs_d, z_mean.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + VIEW_ATTN * D + offs_d, z_att.to(views.dtype.element_ty), mask=mask_d)
    tl.store(out + VIEW_PROMPT * D + offs_d, z_prompt.to(views.dtype.element_ty), mask=mask_d)
    tl.store(z_attn + i_b.to(tl.int64) * D + offs_d, z_att, mask=mask_d)
    tl.store(out + VIEW_LAST * D + offs_d, z_last, mask=mask_d)
    if i_d == 0:
        tl.store(lse + i_b, tl.where(empty, float("-inf"), m_row + tl.log(tl.where(empty, 1.0, l_total))))
        tl.store(counts + i_b * 2, n_r)
        tl.store(counts + i_b * 2 + 1, n_p)
        tl.store(last_index + i_b, tau)


@triton.jit
def _row_dot(x, y, stride_y, D, BLOCK_D: tl.constexpr):
    """<x, y> over D (x contiguous fp32, y at stride `stride_y`), in BLOCK_D chunks."""
    total = 0.0
    d0 = 0
    while d0 < D:
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = offs_d < D
        total += tl.sum(tl.load(x + offs_d, mask=mask_d, other=0.0)
                        * tl.load(y + offs_d * stride_y, mask=mask_d, other=0.0).to(tl.float32), axis=0)
        d0 += BLOCK_D
    return total


# Backward (docs/design.md §3). With β_t = exp(a_t − lse)·[t∈R] and upstream dz = (dz_L, dz_M, dz_A, dz_P):
#   z_A = Σ β_t h_t,  ∂a_t/∂h_t = w_a,  ∂β_t/∂a_s = β_t([t=s] − β_s)
#   so  <dz_A, ∂z_A/∂a_t> = β_t (<h_t, dz_A> − <z_A, dz_A>) =: g_t
#   dH_t = [t=τ]·dz_L + [t∈R]/|R|·dz_M + β_t·dz_A + g_t·w_a + [t∈P]/|P|·dz_P
#   dw_a = Σ_{b,t} g_t h_t,   db_a = Σ_{b,t} g_t
# Only response tokens are read (β = g = 0 elsewhere, so no other token's value reaches dw_a); dH is written
# for every token of the split. Per block of tokens: q_t = <h_t, dz_A> (one cross-warp reduction when the
# program holds all of D; from the scores kernel when D is tiled), then dH and g_t·h_t from the same tile in
# registers, while the next block's tile and scores are in flight. τ's row gets dz_L after the loop: the
# block that holds τ keeps β_τ and g_τ, and τ's row is written again whole. A fixed number of programs each
# take every num_programs-th (row, split) work item for one D tile, so the dw_a partial rows are
# [programs, D] whatever the batch; `multiview_pool_dw_kernel` sums them in a fixed order.
@triton.jit
def _bwd_block(h, kind, a_column, q_column, offs_t, end, d_hidden, token0, D, offs_d, mask_d, dz_a, dz_m, dz_p, w, row_lse,
               z_dot, tau, dw, g_sum, beta_tau, g_tau, HAS_Q: tl.constexpr, WRITE_D_HIDDEN: tl.constexpr):
    """One block of the backward: g_t, Σ g_t h_t into dw, Σ g_t into g_sum, and (WRITE_D_HIDDEN) the block's dH
    rows."""
    is_response = kind == RESPONSE_TOKEN  # [BLOCK_T, 1]
    responds = tl.max(is_response.to(tl.int32), axis=1) > 0  # [BLOCK_T]
    h_response = tl.where(is_response, h.to(tl.float32), 0.0)
    if HAS_Q:
        q = tl.max(q_column, axis=1)  # a reduction over one column: free
    else:
        q = tl.sum(h_response * dz_a[None, :], axis=1)
    beta = tl.exp(tl.where(responds, tl.max(a_column, axis=1) - row_lse, float("-inf")))  # others' scores may pass lse
    g = tl.where(responds, beta * (q - z_dot), 0.0)  # [BLOCK_T]
    g_sum += tl.sum(g, axis=0)
    dw += tl.sum(g[:, None] * h_response, axis=0)
    if WRITE_D_HIDDEN:
        at_tau = offs_t == tau
        beta_tau += tl.sum(tl.where(at_tau, beta, 0.0), axis=0)
        g_tau += tl.sum(tl.where(at_tau, g, 0.0), axis=0)
        base = tl.where(is_response, dz_m[None, :], tl.where(kind == PROMPT_TOKEN, dz_p[None, :], 0.0))
        dh = base + beta[:, None] * dz_a[None, :] + g[:, None] * w[None, :]
        out = (token0 + offs_t.to(tl.int64))[:, None] * D + offs_d[None, :]
        tl.store(d_hidden + out, dh.to(d_hidden.dtype.element_ty), mask=(offs_t < end)[:, None] & mask_d[None, :])
    return dw, g_sum, beta_tau, g_tau


@triton.jit(do_not_specialize=["max_len", "chunk_len", "num_splits", "num_work"])
def multiview_pool_bwd_kernel(
    hidden, kinds, scores, q_scores, cu_seqlens, attn_weight,
    grad_views, z_attn, lse, counts, last_index,
    d_hidden, partial_dw, item_g,
    max_len, D, chunk_len, num_splits, num_work, stride_hb, stride_ht, stride_w, stride_gb, stride_gv, stride_gd,
    IS_VARLEN: tl.constexpr, WRITE_D_HIDDEN: tl.constexpr, HAS_Q: tl.constexpr, PREFETCH: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Programs (axis 0) × D tiles (axis 1). HAS_Q: q_t comes from `q_scores` (D tiled); otherwise one D tile
    holds all of D and q_t is reduced here. WRITE_D_HIDDEN False (a frozen backbone) computes dw_a, db_a only."""
    pid, i_d = tl.program_id(0), tl.program_id(1)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    w = tl.load(attn_weight + offs_d * stride_w, mask=mask_d, other=0.0).to(tl.float32)  # [BLOCK_D]
    dw = tl.zeros([BLOCK_D], dtype=tl.float32)
    work = pid
    while work < num_work:
        i_b, i_s = work // num_splits, work % num_splits
        token0, hidden0, length = _row_span(tl.load(cu_seqlens + i_b) if IS_VARLEN else 0,
                                            tl.load(cu_seqlens + i_b + 1) if IS_VARLEN else 0,
                                            i_b, max_len, stride_hb, stride_ht, IS_VARLEN)
        start = i_s * chunk_len
        end = _split_end(start, chunk_len, length, i_s, num_splits)
        grad = grad_views + i_b.to(tl.int64) * stride_gb
        row_lse = tl.load(lse + i_b)
        tau = tl.load(last_index + i_b)
        dz_a = tl.load(grad + VIEW_ATTN * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_Q:  # <z_A, dz_A> over all of D, beyond this program's tile
            z_dot = _row_dot(z_attn + i_b.to(tl.int64) * D, grad + VIEW_ATTN * stride_gv, stride_gd, D, BLOCK_D)
        else:
            z_dot = tl.sum(tl.load(z_attn + i_b.to(tl.int64) * D + offs_d, mask=mask_d, other=0.0) * dz_a, axis=0)
        dz_m = tl.load(grad + VIEW_MEAN * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
        dz_p = tl.load(grad + VIEW_PROMPT * stride_gv + offs_d * stride_gd, mask=mask_d, other=0.0).to(tl.float32)
        dz_m = dz_m / tl.maximum(tl.load(counts + i_b * 2), 1.0)  # dz_M/|R|
        dz_p = dz_p / tl.maximum(tl.load(counts + i_b * 2 + 1), 1.0)  # dz_P/|P|
        kinds_row, scores_row, q_row = kinds + token0, scores + token0, (q_scores + token0) if HAS_Q else scores + token0
        beta_tau = 0.0
        g_tau = 0.0
        g_sum = 0.0  # Σ g_t over the work item
        offs = start + tl.arange(0, BLOCK_T)
        kind = _kinds(kinds_row, offs, end)
        if PREFETCH:
            h = _tile(hidden, hidden0, offs, stride_ht, offs_d, kind == RESPONSE_TOKEN, mask_d)
            a_column, q_column = _column(scores_row, offs, end), _column(q_row, offs, end)
        kind_next = _kinds(kinds_row, offs + BLOCK_T, end)
        t0 = start
        while t0 < end:
            offs = t0 + tl.arange(0, BLOCK_T)
            # the next block's tile and scores (PREFETCH; else this block's: blocks of TILE_BYTES need no
            # double buffer), whose kinds arrived last iteration, and the kinds of the block after
            if PREFETCH:
                h_next = _tile(hidden, hidden0, offs + BLOCK_T, stride_ht, offs_d, kind_next == RESPONSE_TOKEN, mask_d)
                a_next, q_next = _column(scores_row, offs + BLOCK_T, end), _column(q_row, offs + BLOCK_T, end)
            else:
                h = _tile(hidden, hidden0, offs, stride_ht, offs_d, kind == RESPONSE_TOKEN, mask_d)
                a_column, q_column = _column(scores_row, offs, end), _column(q_row, offs, end)
            kind_ahead = _kinds(kinds_row, offs + 2 * BLOCK_T, end)
            dw, g_sum, beta_tau, g_tau = _bwd_block(
                h, kind, a_column, q_column, offs, end, d_hidden, token0, D, offs_d, mask_d, dz_a, dz_m, dz_p, w, row_lse,
                z_dot, tau, dw, g_sum, beta_tau, g_tau, HAS_Q, WRITE_D_HIDDEN)
            if PREFETCH:
                h, a_column, q_column = h_next, a_next, q_next
            kind, kind_next = kind_next, kind_ahead
            t0 += BLOCK_T
        if i_d == 0:  # Σ_t g_t of the item: db_a, and the centring of dw_a (multiview_pool_dw_kernel)
            tl.store(item_g + work, g_sum)
        if WRITE_D_HIDDEN:  # τ's row again, now with dz_L (τ is a response token: its base is dz_M/|R|)
            taus = tl.zeros([BLOCK_D], dtype=tl.int32) + tau  # a vector mask: only the split holding τ writes
            at_tau = mask_d & (taus >= start) & (taus < end)
            dz_l = tl.load(grad + VIEW_LAST * stride_gv + offs_d * stride_gd, mask=at_tau, other=0.0).to(tl.float32)
            dh_tau = dz_m + beta_tau * dz_a + g_tau * w + dz_l
            tl.debug_barrier()  # after every thread's store of the block that held τ
            tl.store(d_hidden + (token0 + tau) * D + offs_d, dh_tau.to(d_hidden.dtype.element_ty), mask=at_tau)
        work += tl.num_programs(0)
    tl.store(partial_dw + pid.to(tl.int64) * D + offs_d, dw, mask=mask_d)


@triton.jit(do_not_specialize=["num_rows", "num_work", "num_splits"])
def multiview_pool_dw_kernel(
    partial_dw, item_g, z_attn, d_weight, d_bias, num_rows, num_work, num_splits, D,
    BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One D tile per program: dw_a = Σ over the backward's programs of their partial rows Σ g_t h_t, minus
    Σ over its work items of (Σ g_t)·z_A of the item's row, in w_a's dtype; the first program also sums
    db_a = Σ g_t. Σ_t g_t = 0 in exact arithmetic, so this is Σ_t g_t (h_t − z_A): the rounding of g_t where
    β_t ≈ 1 (a saturated softmax) meets h_t ≈ z_A and cancels, instead of reaching dw_a times |h_t|.
    Deterministic: a fixed order for a given launch plan."""
    i_d = tl.program_id(0)
    offs_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    total = tl.zeros([BLOCK_D], dtype=tl.float32)
    db = 0.0
    r0 = 0
    while r0 < num_rows:
        offs_r = r0 + tl.arange(0, BLOCK_R)
        mask_r = offs_r < num_rows
        total += tl.sum(tl.load(partial_dw + offs_r.to(tl.int64)[:, None] * D + offs_d[None, :],
                                mask=mask_r[:, None] & mask_d[None, :], other=0.0), axis=0)
        r0 += BLOCK_R
    w0 = 0
    while w0 < num_work:
        offs_w = w0 + tl.arange(0, BLOCK_R)
        mask_w = offs_w < num_work
        g = tl.load(item_g + offs_w, mask=mask_w, other=0.0)
        rows = (offs_w // num_splits).to(tl.int64)
        z = tl.load(z_attn + rows[:, None] * D + offs_d[None, :], mask=mask_w[:, None] & mask_d[None, :], other=0.0)
        total -= tl.sum(g[:, None] * z, axis=0)
        db += tl.sum(g, axis=0)
        w0 += BLOCK_R
    tl.store(d_weight + offs_d, total.to(d_weight.dtype.element_ty), mask=mask_d)
    if i_d == 0:
        tl.store(d_bias, db)


@dataclasses.dataclass(frozen=True)
class FusedPlan:
    """A fused program's [block_t, block_d] block over num_warps warps; `paired`: two blocks per iteration (the
    forward); `prefetch`: the next block's loads issued before this one's arithmetic (the backward, unless a
    block is TILE_BYTES per SM already)."""

    block_t: int
    block_d: int
    num_warps: int
    paired: bool
    prefetch: bool

    @property
    def programs_per_sm(self) -> int:
        """Programs an SM holds at once: 4-warp programs take up to 255 registers per thread, two fit an SM."""
        return 2 if self.num_warps == 4 else 1


def _fused_plan(dim: int, dtype: torch.dtype, *, backward: bool) -> FusedPlan | None:
    """The plan of a program holding the whole hidden size, or None when it does not fit (D > RESIDENT_MAX_D,
    or a forced narrower tile). Warps along D: 8 warps from D = 4096 on (one program per SM), 4 below (two).
    Each thread holds C = BLOCK_D/(32·num_warps) columns of every token of a block, and at most 32 fp32
    values of a block: BLOCK_T ≤ 32/C. A block is TILE_BYTES/2 per SM; the forward streams two per
    iteration (PAIRED) where they fit in TILE_BYTES, the backward, which needs half the read rate per byte
    of its floor, one (with the next in flight, unless it is TILE_BYTES already)."""
    block_d, element_size, fp16 = triton.next_power_of_2(dim), dtype.itemsize, dtype == torch.float16
    if block_d > (RESIDENT_MAX_D_FP16 if fp16 else RESIDENT_MAX_D) or forced("block_d", block_d) < block_d:
        return None
    row_bytes = ROW_BYTES_PER_THREAD if not fp16 else ROW_BYTES_PER_THREAD // (2 if backward else 4)
    num_warps = max(4, min(16 if backward else 8, block_d * element_size // (32 * row_bytes)))
    columns = max(1, block_d // (32 * num_warps))
    programs = 2 if num_warps == 4 else 1
    per_block = (TILE_BYTES // 2) // programs  # bytes of hidden per block and program
    # fp32 values of a block per thread: in bf16 32 beside the backward's five row vectors (5·C registers; at
    # C = 32 one token, at C = 16 two: one would leave D = 2048 bf16 at 8 KB in flight per SM); otherwise
    # counted over at least 16 columns, 32 (16 in fp16 and in the fp32 backward, whose two-token blocks
    # spilled on sm_80 at D = 576) (ours)
    if backward and dtype == torch.bfloat16:
        tokens = 32 // columns
    else:
        tokens = (16 if backward or fp16 else 32) // max(columns, 16)
    block_t = max(1, min(tokens, per_block // (block_d * element_size)))
    block_t = forced("block_t", 1 << (block_t.bit_length() - 1))
    block_bytes = block_t * block_d * element_size * programs  # per SM
    paired = not backward and not fp16 and 2 * block_bytes <= TILE_BYTES  # (fp16 pairs spilled on sm_80)
    return FusedPlan(block_t, block_d, num_warps, paired, prefetch=block_bytes < TILE_BYTES)


def _split_plan(length: int, rows: int, slots: int, min_tokens: int, step: int) -> tuple[int, int]:
    """`(num_splits, chunk_len)` of rows of `length` tokens: one wave of programs (rows × splits ≤ `slots`
    when rows allow), each split at least `min_tokens` tokens and a whole number of `step`s; at most
    MAX_SPLITS splits. `force_tile_plan(num_splits=...)` overrides the count."""
    wanted = min(max(1, slots // max(1, rows)), max(1, length // max(min_tokens, step)))
    splits = max(1, min(forced("num_splits", wanted), MAX_SPLITS, triton.cdiv(length, step)))
    chunk = max(1, triton.cdiv(triton.cdiv(length, splits), step)) * step
    return max(1, triton.cdiv(length, chunk)), chunk


def _layout(hidden: torch.Tensor, cu_seqlens: torch.Tensor | None, max_seqlen: int) -> tuple[int, int, int, int]:
    """`(rows, max_len, stride_hb, stride_ht)` of the padded [B, T, D] or packed [total_T, D] layout."""
    if cu_seqlens is None:
        return hidden.shape[0], hidden.shape[1], hidden.stride(0), hidden.stride(1)
    return cu_seqlens.numel() - 1, max_seqlen, 0, hidden.stride(0)


def _tiled_plan(dim: int, max_len: int, rows: int, sms: int) -> tuple[int, int, int, int]:
    """`(block_t, block_d, num_splits, chunk_len)` of the D-tiled kernels (SMALL_WARPS warps): splits sized for
    the token-sweeping kernels (four programs per SM); the D tiles of the second phase multiply them."""
    block_t, block_d = forced("block_t", TILED_BLOCK_T), forced("block_d", min(TILED_BLOCK_D, triton.next_power_of_2(dim)))
    splits, chunk = _split_plan(max_len, rows, 4 * sms, block_t, block_t)
    return block_t, block_d, splits, chunk


def _scores(hidden, kinds, vector, bias, cu_seqlens, scores, partial_stats, *, max_len, rows, splits, chunk, block_t,
            block_d, stride_hb, stride_ht, stride_vb, stride_v):
    """Launch `multiview_pool_scores_kernel` (statistics when `partial_stats` is given)."""
    launch(
        multiview_pool_scores_kernel, (rows * splits,),
        hidden=hidden, kinds=kinds, vector=vector, bias_ptr=bias, cu_seqlens=cu_seqlens, scores=scores,
        partial_stats=partial_stats, max_len=max_len, D=hidden.shape[-1], chunk_len=chunk, num_splits=splits,
        stride_hb=stride_hb, stride_ht=stride_ht, stride_vb=stride_vb, stride_v=stride_v,
        HAS_BIAS=bias is not None, HAS_STATS=partial_stats is not None, IS_VARLEN=cu_seqlens is not None,
        BLOCK_T=block_t, BLOCK_D=block_d, num_warps=SMALL_WARPS,
    )


@triton_op("adajudge::multiview_pool_fwd", mutates_args=())
def multiview_pool_fwd(
    hidden: torch.Tensor,
    kinds: torch.Tensor,
    attn_weight: torch.Tensor,
    attn_bias: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
    max_seqlen: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the forward. `kinds`: `TokenKind` per token in KINDS_DTYPE, laid out like `hidden`'s tokens;
    `max_seqlen`: the longest packed row (unused when padded; a smaller one only unbalances the splits).

    Returns `(views [rows, 4, D] in hidden.dtype, scores, z_attn, lse, counts, last_index)`; the last five
    (fp32, int32 last) feed `multiview_pool_bwd`.
    """
    hidden = hidden if hidden.stride(-1) == 1 else hidden.contiguous()
    dim, device = hidden.shape[-1], hidden.device
    rows, max_len, stride_hb, stride_ht = _layout(hidden, cu_seqlens, max_seqlen)
    sms = multiprocessors(device)
    plan = _fused_plan(dim, hidden.dtype, backward=False) if forward_variant() == "fused" else None
    common = dict(hidden=hidden, cu_seqlens=cu_seqlens, max_len=max_len, D=dim, stride_hb=stride_hb, stride_ht=stride_ht,
                  IS_VARLEN=cu_seqlens is not None)

    def new(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=device)

    scores = new(*kinds.shape)
    views, z_attn, lse = new(rows, NUM_VIEWS, dim, dtype=hidden.dtype), new(rows, dim), new(rows)
    counts, last_index = new(rows, 2), new(rows, dtype=torch.int32)
    with on_device(hidden):
        if plan is not None:
            step = plan.block_t * (2 if plan.paired else 1)
            stat_splits, chunk = _split_plan(max_len, rows, sms * plan.programs_per_sm, MIN_SPLIT_TOKENS, step)
            partial_acc, partial_stats = new(rows, stat_splits, ACCUMULATORS.value, dim), new(rows, stat_splits, STATS.value)
            launch(
                multiview_pool_fwd_kernel, (rows * stat_splits,), **common,
                kinds=kinds, attn_weight=attn_weight, attn_bias=attn_bias, scores=scores, partial_acc=partial_acc,
                partial_stats=partial_stats, chunk_len=chunk, num_splits=stat_splits, stride_w=attn_weight.stride(0),
                HAS_BIAS=attn_bias is not None, PAIRED=plan.paired, BLOCK_T=plan.block_t, BLOCK_D=plan.block_d,
                num_warps=plan.num_warps,
            )
        else:
            block_t, block_d, stat_splits, chunk = _tiled_plan(dim, max_len, rows, sms)
            partial_stats = new(rows, stat_splits, STATS.value)
            _scores(hidden, kinds, attn_weight, attn_bias, cu_seqlens, scores, partial_stats, max_len=max_len, rows=rows,
                    splits=stat_splits, chunk=chunk, block_t=block_t, block_d=block_d, stride_hb=stride_hb,
                    stride_ht=stride_ht, stride_vb=0, stride_v=attn_weight.stride(0))
            d_tiles = triton.cdiv(dim, block_d)
            partial_acc = new(rows, stat_splits, ACCUMULATORS.value, dim)
            launch(
                multiview_pool_accumulate_kernel, (rows * stat_splits * d_tiles,), **common,
                kinds=kinds, scores=scores, partial_stats=partial_stats, partial_acc=partial_acc, chunk_len=chunk,
                num_splits=stat_splits, BLOCK_T=block_t, BLOCK_D=block_d, BLOCK_S=COMBINE_TILE // block_d,
                num_warps=SMALL_WARPS,
            )
        # Every split in one [BLOCK_S, BLOCK_D] step: the more splits, the narrower the D tile (and the more
        # programs; at least two per SM); a loop over steps only beyond COMBINE_TILE / COMBINE_MIN_BLOCK_D splits.
        combine_block_s = min(triton.next_power_of_2(stat_splits), COMBINE_TILE // COMBINE_MIN_BLOCK_D)
        spread = 1 << max(0, (rows * dim // (2 * sms)).bit_length() - 1)  # two programs per SM at least
        combine_block_d = min(triton.next_power_of_2(dim), max(COMBINE_MIN_BLOCK_D, min(COMBINE_TILE // combine_block_s, spread)))
        launch(
            multiview_pool_combine_kernel, (rows, triton.cdiv(dim, combine_block_d)), **common,
            partial_acc=partial_acc, partial_stats=partial_stats, views=views, z_attn=z_attn, lse=lse,
            counts=counts, last_index=last_index, num_splits=stat_splits, ATTN_AT_ROW_MAX=plan is None,
            BLOCK_D=combine_block_d, BLOCK_S=combine_block_s, num_warps=COMBINE_WARPS,
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
    """Launch the backward. Returns `(d_hidden like hidden, or empty when not `write_d_hidden`,
    d_attn_weight [D] in attn_weight's dtype, d_attn_bias [] fp32)`."""
    hidden = hidden if hidden.stride(-1) == 1 else hidden.contiguous()
    dim, device = hidden.shape[-1], hidden.device
    rows, max_len, stride_hb, stride_ht = _layout(hidden, cu_seqlens, max_seqlen)
    sms = multiprocessors(device)
    plan = _fused_plan(dim, hidden.dtype, backward=True)
    q_scores = None
    with on_device(hidden):
        if plan is not None:
            block_t, block_d, num_warps, prefetch = plan.block_t, plan.block_d, plan.num_warps, plan.prefetch
            d_tiles, slots = 1, sms * plan.programs_per_sm
        else:  # q_t = <h_t, dz_A> first, then D tiles
            block_t, block_d, splits, chunk = _tiled_plan(dim, max_len, rows, sms)
            q_scores = torch.empty(kinds.shape, dtype=torch.float32, device=device)
            _scores(hidden, kinds, grad_views[:, VIEW_ATTN.value], None, cu_seqlens, q_scores, None, max_len=max_len,
                    rows=rows, splits=splits, chunk=chunk, block_t=block_t, block_d=block_d, stride_hb=stride_hb,
                    stride_ht=stride_ht, stride_vb=grad_views.stride(0), stride_v=grad_views.stride(2))
            num_warps, prefetch = SMALL_WARPS, False
            d_tiles = triton.cdiv(dim, block_d)
            slots = max(1, 4 * sms // d_tiles)
        splits, chunk = _split_plan(max_len, rows, slots, block_t, block_t)
        num_work = rows * splits
        programs = min(num_work, slots)
        d_hidden = torch.empty(hidden.shape if write_d_hidden else (0,), dtype=hidden.dtype, device=device)
        partial_dw = torch.empty(programs, dim, dtype=torch.float32, device=device)
        item_g = torch.empty(num_work, dtype=torch.float32, device=device)
        launch(
            multiview_pool_bwd_kernel, (programs, d_tiles),
            hidden=hidden, kinds=kinds, scores=scores, q_scores=q_scores, cu_seqlens=cu_seqlens, attn_weight=attn_weight,
            grad_views=grad_views, z_attn=z_attn, lse=lse, counts=counts, last_index=last_index,
            d_hidden=d_hidden, partial_dw=partial_dw, item_g=item_g,
            max_len=max_len, D=dim, chunk_len=chunk, num_splits=splits, num_work=num_work,
            stride_hb=stride_hb, stride_ht=stride_ht, stride_w=attn_weight.stride(0),
            stride_gb=grad_views.stride(0), stride_gv=grad_views.stride(1), stride_gd=grad_views.stride(2),
            IS_VARLEN=cu_seqlens is not None, WRITE_D_HIDDEN=write_d_hidden, HAS_Q=q_scores is not None,
            PREFETCH=prefetch, BLOCK_T=block_t, BLOCK_D=block_d, num_warps=num_warps,
        )
        d_weight = torch.empty(dim, dtype=attn_weight.dtype, device=device)
        d_bias = torch.empty((), dtype=torch.float32, device=device)
        launch(
            multiview_pool_dw_kernel, (triton.cdiv(dim, DW_BLOCK_D),),
            partial_dw=partial_dw, item_g=item_g, z_attn=z_attn, d_weight=d_weight, d_bias=d_bias, num_rows=programs,
            num_work=num_work, num_splits=splits, D=dim,
            BLOCK_R=DW_BLOCK_R, BLOCK_D=DW_BLOCK_D, num_warps=SMALL_WARPS,
        )
    return d_hidden, d_weight, d_bias


def token_kinds(attention_mask: torch.Tensor, response_mask: torch.Tensor | None) -> torch.Tensor:
    """`TokenKind` map in KINDS_DTYPE: 0 padding, 1 prompt, 2 response."""
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    return (real.to(KINDS_DTYPE) + response.to(KINDS_DTYPE)).contiguous()


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
