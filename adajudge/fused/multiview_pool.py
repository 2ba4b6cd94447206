"""Multi-view pooling in a few large PyTorch calls, with the analytic backward of docs/design.md §3:
launchers, autograd Function, entry point.

The work is laid out as *pieces* `[V, W, D]`: each piece holds up to W consecutive tokens of one row, and
`owner [V]` names that row. Padded input is its own piece layout (one piece per row, W = T). Packed input of
N rows and total_T tokens is scattered into pieces of W = ⌈total_T / N⌉ tokens (the mean row length), with
index tensors of static size and no host sync: a longer row takes several pieces, and N + ⌊total_T / W⌋
pieces always suffice, so the piece buffer holds at most about 2·total_T tokens whatever the lengths, and
does not depend on `max_seqlen` (a wrong one cannot drop a token here). Per-row quantities (counts, the
softmax's max and sum, the pooled sums) are reduced over a row's pieces with `index_add` /
`scatter_reduce` on `owner`.

Passes over `hidden` (the `[B, T, D]` tensor that dominates the traffic):

    forward:  a = h_R @ w_a                    read 1   scores [V, W]
              [z_M; z_A] = [1_R/|R|; β] @ h_R, z_P = 1_P/|P| @ h_P      read 2
    backward: q = h_R @ dz_A                   read 1   [V, W]
              dw_a = g @ h_R                   read 2   g_t = β_t (q_t − Σ_s β_s q_s)
              dH = Wᵀ @ [dz_M; dz_A; w_a; dz_P]   write 1 (the only [B, T, D] allocation when padded)

`h_R` and `h_P` are `hidden` with every token outside the response (prompt) replaced by zero — selected
with `torch.where`, never multiplied by a 0/1 mask — so a token outside a view (padding, or the prompt for
the response views) holding NaN or Inf never reaches it. The last-token view is a gather and its gradient
an index-add into one row of dH. Every piece slab is upcast (and masked) one slab at a time
(`_SLAB_BYTES`), so the fp32 temporaries stay bounded whatever the batch.

Two CPU-only choices, both behind a device check: the `<hidden_t, dz_A>` products run as one
matrix-vector product per piece (`torch.mv`; a batched product with N = 1 was slower on CPU, see
bench/RESULTS.md), and the one `[B, T, D]` allocation gets huge-page advice (`adajudge.fused.memory`).
"""
import dataclasses

import torch

from adajudge.fused.memory import empty_huge_paged
from adajudge.views import View

_SLAB_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class Pieces:
    """Where every row's tokens sit in the `[V, W]` piece layout.

    `owner [V]`: the row of each piece; `first [N]`: each row's first piece (its pieces are consecutive);
    `width`: W; for packed input also `piece`, `slot` `[total_T]`: each token's piece and position in it.
    """

    owner: torch.Tensor
    first: torch.Tensor
    width: int
    piece: torch.Tensor | None = None
    slot: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return self.first.numel()

    def scatter(self, tokens: torch.Tensor) -> torch.Tensor:
        """Packed `[total_T, ...]` → pieces `[V, W, ...]`, zeros where no token sits."""
        out = tokens.new_zeros((self.owner.numel(), self.width, *tokens.shape[1:]))
        out[self.piece, self.slot] = tokens
        return out

    def gather(self, pieces: torch.Tensor) -> torch.Tensor:
        """Pieces `[V, W, ...]` → packed `[total_T, ...]`."""
        return pieces[self.piece, self.slot]


def padded_pieces(batch: int, length: int, device) -> Pieces:
    """A padded `[B, T]` batch: one piece per row."""
    rows = torch.arange(batch, device=device)
    return Pieces(owner=rows, first=rows, width=length)


def packed_pieces(cu_seqlens: torch.Tensor, total: int) -> Pieces:
    """The pieces of packed rows: W = ⌈total/N⌉ tokens each, every row at least one piece. A row of L tokens
    takes max(1, ⌈L/W⌉) ≤ 1 + ⌊L/W⌋ pieces, so N + ⌊total/W⌋ pieces always suffice: a static size, computed
    with no host sync."""
    starts = cu_seqlens.to(torch.int64).contiguous()  # searchsorted warns on (and copies) strided boundaries
    rows = starts.numel() - 1
    width = max(1, -(-total // rows))
    tokens = torch.arange(total, device=cu_seqlens.device)
    row = torch.searchsorted(starts[1:], tokens, right=True)
    column = tokens - starts[row]
    pieces_per_row = torch.div(starts[1:] - starts[:-1] + width - 1, width, rounding_mode="floor").clamp(min=1)
    first = torch.cumsum(pieces_per_row, 0) - pieces_per_row
    capacity = rows + total // width
    owner = (torch.searchsorted(first, torch.arange(capacity, device=cu_seqlens.device), right=True) - 1).clamp(min=0)
    return Pieces(owner=owner, first=first, width=width, piece=first[row] + column // width, slot=column % width)


def _slabs(pieces: int, width: int, dim: int):
    """Slices of the piece dim such that each slab upcast to fp32 stays under `_SLAB_BYTES`."""
    step = max(1, _SLAB_BYTES // max(width * dim * 4, 1))
    return [slice(start, start + step) for start in range(0, max(pieces, 1), step)]


def _views_of(h, response, prompt):
    """`(h_R, h_P)`: the slab `h` with tokens outside the response (prompt) replaced by zeros."""
    zero = h.new_zeros(())
    return torch.where(response[..., None], h, zero), torch.where(prompt[..., None], h, zero)


def _piece_dots(h, vectors):
    """`<h[v, t], vectors[v]>` for `h [v, W, D]`, `vectors [v, D]` → `[v, W]`."""
    if h.device.type == "cpu" and h.shape[0] > 0:
        return torch.stack([torch.mv(h_piece, v_piece) for h_piece, v_piece in zip(h, vectors)])
    return torch.bmm(h, vectors[:, :, None]).squeeze(2)


def _row_sum(per_piece, layout: Pieces):
    """Σ over each row's pieces: `[V, ...]` → `[N, ...]`."""
    return per_piece.new_zeros((layout.rows, *per_piece.shape[1:])).index_add_(0, layout.owner, per_piece)


def _last_response_token(response, layout: Pieces):
    """`(piece, slot, has_last)` `[N]` of each row's last response token (piece and slot 0 where none)."""
    pieces, width = response.shape
    in_row = (torch.arange(pieces, device=response.device) - layout.first[layout.owner]) * width  # [V]
    position = torch.where(response, in_row[:, None] + torch.arange(width, device=response.device), -1).amax(1)
    last = torch.full((layout.rows,), -1, dtype=position.dtype, device=position.device)
    last = last.scatter_reduce(0, layout.owner, position, "amax")  # position within the row, -1: none
    has_last = last >= 0
    last = last.clamp(min=0)
    return layout.first + torch.div(last, width, rounding_mode="floor"), last % width, has_last


def multiview_pool_fwd(hidden, response, prompt, attn_weight, attn_bias, layout: Pieces):
    """Pieces `hidden [V, W, D]`, masks `[V, W]` → `(views [N, 4, D] in hidden.dtype, saved)`; `saved` feeds
    `multiview_pool_bwd`: `(beta, mean_weights, prompt_weights, last_piece, last_slot, has_last)`."""
    pieces, width, dim = hidden.shape
    compute_dtype = torch.promote_types(hidden.dtype, torch.float32)
    w = attn_weight.to(compute_dtype)
    owner = layout.owner

    counts = _row_sum(torch.stack([response.sum(1), prompt.sum(1)], 1).to(compute_dtype), layout).clamp(min=1)  # [N, 2]
    mean_weights = response / counts[owner, 0:1]  # 1_R/|R|, [V, W]
    prompt_weights = prompt / counts[owner, 1:2]  # 1_P/|P|

    slabs = _slabs(pieces, width, dim)
    scores = []
    for rows in slabs:
        h_response, _ = _views_of(hidden[rows].to(compute_dtype), response[rows], prompt[rows])
        scores.append(torch.matmul(h_response, w))  # read 1
    scores = torch.cat(scores) if len(scores) > 1 else scores[0]
    if attn_bias is not None:
        scores = scores + attn_bias.to(compute_dtype)
    # β = softmax over each row's response tokens, across its pieces; a row without any gives β = 0.
    lowest = torch.finfo(compute_dtype).min
    piece_max = scores.masked_fill(~response, lowest).amax(1)
    row_max = piece_max.new_full((layout.rows,), lowest).scatter_reduce(0, owner, piece_max, "amax")
    p = torch.where(response, torch.exp(scores - row_max[owner, None]), 0.0)
    row_sum = _row_sum(p.sum(1), layout)
    beta = p / torch.where(row_sum > 0, row_sum, 1.0)[owner, None]

    pooled = hidden.new_zeros((layout.rows, 3, dim), dtype=compute_dtype)
    for rows in slabs:
        h_response, h_prompt = _views_of(hidden[rows].to(compute_dtype), response[rows], prompt[rows])
        sums = torch.cat([torch.bmm(torch.stack([mean_weights[rows], beta[rows]], 1), h_response),  # read 2
                          torch.bmm(prompt_weights[rows, None], h_prompt)], dim=1)  # [v, 3, D]
        pooled.index_add_(0, owner[rows], sums)
        del h_response, h_prompt  # one upcast slab alive at a time

    last_piece, last_slot, has_last = _last_response_token(response, layout)
    z_last = torch.where(has_last[:, None], hidden[last_piece, last_slot], 0.0)[:, None]  # [N, 1, D]
    views = torch.cat([z_last, pooled.to(hidden.dtype)], dim=1)  # View order: last, mean, attn, prompt
    return views, (beta, mean_weights, prompt_weights, last_piece, last_slot, has_last)


def multiview_pool_bwd(grad_views, hidden, response, prompt, attn_weight, attn_bias, layout: Pieces, saved,
                       needs_d_hidden=True):
    """VJP of docs/design.md §3 on pieces: `(d_hidden [V, W, D] or None, d_attn_weight, d_attn_bias or None)`.
    `needs_d_hidden=False` (a frozen backbone's states) skips the one `[V, W, D]` write."""
    beta, mean_weights, prompt_weights, last_piece, last_slot, has_last = saved
    pieces, width, dim = hidden.shape
    compute_dtype = beta.dtype
    owner = layout.owner
    grad = grad_views.to(compute_dtype)
    dz_attn = grad[:, View.ATTN]
    slabs = _slabs(pieces, width, dim)

    def response_slab(rows):
        return _views_of(hidden[rows].to(compute_dtype), response[rows], prompt[rows])[0]

    q = torch.cat([_piece_dots(response_slab(rows), dz_attn[owner[rows]]) for rows in slabs])  # [V, W], read 1
    # <z_A, dz_A> written as Σ_s β_s q_s: equal in exact arithmetic, and the same rounded q_t on both sides of
    # g_t's difference, so a one-token response gives g = 0 exactly, as autograd's softmax backward does.
    g = beta * (q - _row_sum((beta * q).sum(1), layout)[owner, None])  # [V, W]
    d_weight = torch.zeros(dim, dtype=compute_dtype, device=hidden.device)
    for rows in slabs:
        d_weight = d_weight + torch.bmm(g[rows, None, :], response_slab(rows)).sum((0, 1))  # read 2

    d_bias = None if attn_bias is None else g.sum().to(attn_bias.dtype).reshape(attn_bias.shape)
    if not needs_d_hidden:
        return None, d_weight.to(attn_weight.dtype), d_bias
    # dH_t = [t=τ]·dz_L + 1_R/|R|·dz_M + β_t·dz_A + g_t·w_a + 1_P/|P|·dz_P: one batched product, then τ's row.
    token_weights = torch.stack([mean_weights, beta, g, prompt_weights], dim=2)  # [V, W, 4]
    row_grads = torch.stack(
        [grad[:, View.MEAN], dz_attn, attn_weight.to(compute_dtype).expand(layout.rows, dim), grad[:, View.PROMPT]], dim=1
    )  # [N, 4, D]
    d_hidden = empty_huge_paged(hidden.shape, hidden.dtype, hidden.device)  # the only [V, W, D] allocation
    if hidden.dtype == compute_dtype:
        torch.bmm(token_weights, row_grads[owner], out=d_hidden)  # write 1
    else:
        for rows in slabs:
            d_hidden[rows] = torch.bmm(token_weights[rows], row_grads[owner[rows]])
    d_last = (grad[:, View.LAST] * has_last[:, None]).to(d_hidden.dtype)
    d_hidden.index_put_((last_piece, last_slot), d_last, accumulate=True)
    return d_hidden, d_weight.to(attn_weight.dtype), d_bias


def _token_classes(attention_mask, response_mask):
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    return response, real & ~response


class MultiViewPoolFused(torch.autograd.Function):
    """`multiview_pool` on the fused PyTorch path; packed input is scattered into pieces here and its
    gradient gathered back. The passes choose their own compute dtype, so an enclosing autocast (mixed
    precision training, e.g. TRL's default bf16) is switched off inside them: it would run the matmuls in
    bf16 and hand bf16 partial sums to fp32 accumulators."""

    @staticmethod
    @torch.autocast("cpu", enabled=False)
    @torch.autocast("cuda", enabled=False)
    def forward(ctx, hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
        response, prompt = _token_classes(attention_mask, response_mask)
        if cu_seqlens is None:
            layout = padded_pieces(*hidden.shape[:2], hidden.device)
            pieces = hidden
        else:
            layout = packed_pieces(cu_seqlens, hidden.shape[0])
            pieces, response, prompt = (layout.scatter(x) for x in (hidden, response, prompt))
        views, saved = multiview_pool_fwd(pieces, response, prompt, attn_weight, attn_bias, layout)
        ctx.save_for_backward(hidden, response, prompt, attn_weight, attn_bias, layout.owner, layout.first, layout.piece,
                              layout.slot, *saved)
        ctx.width = layout.width
        return views

    @staticmethod
    @torch.autocast("cpu", enabled=False)
    @torch.autocast("cuda", enabled=False)
    def backward(ctx, grad_views):
        hidden, response, prompt, attn_weight, attn_bias, owner, first, piece, slot, *saved = ctx.saved_tensors
        layout = Pieces(owner=owner, first=first, width=ctx.width, piece=piece, slot=slot)
        packed = piece is not None
        pieces = layout.scatter(hidden) if packed else hidden
        needs_d_hidden = ctx.needs_input_grad[0]
        d_hidden, d_weight, d_bias = multiview_pool_bwd(
            grad_views, pieces, response, prompt, attn_weight, attn_bias, layout, tuple(saved), needs_d_hidden
        )
        if packed and needs_d_hidden:
            d_hidden = layout.gather(d_hidden)
        return d_hidden, None, None, d_weight, d_bias, None


def multiview_pool_fused(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
    """`adajudge.ops.multiview_pool` on the fused PyTorch path, for validated input (any float dtype; fp64 is
    computed in fp64), padded or packed (the packed layout needs no `max_seqlen` here)."""
    return MultiViewPoolFused.apply(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens)
