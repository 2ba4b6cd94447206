"""Reference multi-view pooling (docs/design.md §3), written for reading, not for speed."""
import torch


def unpack_sequences(packed: torch.Tensor, cu_seqlens: torch.Tensor, fill=0) -> torch.Tensor:
    """Turn a packed `[total_T, ...]` tensor into a right-padded `[N, max_len, ...]` one."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    rows = list(torch.split(packed, lengths))
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=fill)


def multiview_pool(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor | None = None,
    *,
    attn_weight: torch.Tensor,
    attn_bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    max_seqlen: int | None = None,
) -> torch.Tensor:
    """Pool `hidden` into four views: last response token, response mean, response attention, prompt mean.

    Args:
        hidden: `[B, T, D]`, or packed `[total_T, D]` with `cu_seqlens`.
        attention_mask: `[B, T]` (packed: `[total_T]`), 1 for real tokens, either padding side.
        response_mask: like `attention_mask`, 1 for response tokens; `None` = every real token.
        attn_weight: `[D]`, attention-pooling score weight `w_a`. attn_bias: scalar `b_a` or `None`.
        cu_seqlens: `[N+1]` int32 sequence boundaries of the packed form, or `None`.
        max_seqlen: accepted for the public signature; the reference reads the lengths from `cu_seqlens`.

    Returns:
        `[B, 4, D]` in `hidden.dtype`, views in the order (last, mean, attn, prompt), computed in fp32
        (fp64 for fp64 input). A row with no response (or no prompt) token gets zero vectors for the views
        that read it. A token outside a view never influences it, whatever it holds (NaN and Inf included).
    """
    if cu_seqlens is not None:
        hidden = unpack_sequences(hidden, cu_seqlens)
        attention_mask = unpack_sequences(attention_mask, cu_seqlens)
        if response_mask is not None:
            response_mask = unpack_sequences(response_mask, cu_seqlens)
    compute_dtype = torch.promote_types(hidden.dtype, torch.float32)
    real = attention_mask.bool()
    response = real if response_mask is None else real & response_mask.bool()
    prompt = real & ~response
    batch, length = response.shape
    # Each view reads only its own tokens: the others are replaced by zeros, never multiplied by 0, so a
    # token outside a view (padding, or the prompt for the response views) holding NaN or Inf leaves it alone.
    h = hidden.to(compute_dtype)  # [B, T, D]
    h_response = torch.where(response[..., None], h, 0.0)
    h_prompt = torch.where(prompt[..., None], h, 0.0)

    positions = torch.arange(length, device=hidden.device).expand(batch, length)
    # τ_b, -1 when R_b is empty (packed rows that are all empty leave no token at all: T = 0)
    last_index = torch.where(response, positions, -1).amax(dim=1) if length else positions.new_full((batch,), -1)
    z_last = torch.where((positions == last_index[:, None])[..., None], h_response, 0.0).sum(1)  # zeros when R_b is empty

    def masked_mean(h_view, mask):
        return h_view.sum(1) / mask.sum(1).clamp(min=1)[:, None].to(compute_dtype)

    scores = h_response @ attn_weight.to(compute_dtype)  # a_t = <hidden_t, w_a> + b_a, [B, T]
    if attn_bias is not None:
        scores = scores + attn_bias.to(compute_dtype)
    # Softmax over R_b only; an empty R_b gives β = 0 (filling with the dtype's min, not -inf, keeps the
    # softmax of an all-masked row finite, and its gradient too).
    scores = scores.masked_fill(~response, torch.finfo(compute_dtype).min)
    beta = torch.softmax(scores, dim=1) * response
    z_attn = (beta[..., None] * h_response).sum(1)

    views = torch.stack([z_last, masked_mean(h_response, response), z_attn, masked_mean(h_prompt, prompt)], dim=1)
    return views.to(hidden.dtype)
