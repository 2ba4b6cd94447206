"""Which tokens are the response when a reward model is called without a `response_mask`."""
from __future__ import annotations

import torch


def scored_span_mask(
    input_ids: torch.Tensor | None, attention_mask: torch.Tensor, pad_token_id: int | None
) -> torch.Tensor:
    """`[B, T]` int64 mask of the real tokens up to and including the token a transformers
    `*ForSequenceClassification` scores.

    transformers 5 (`GenericForSequenceClassification.forward`) scores the rightmost position whose id is
    not `pad_token_id`, `argmax(arange(T) * (input_ids != pad))`, whatever the attention mask and padding
    side, and the last position when there is no pad token. So with pad = EOS and a trailing EOS, the token
    *before* the EOS is scored. Without `input_ids` or without a pad token, every real token is in the span.

    Args:
        input_ids: `[B, T]` or None. attention_mask: `[B, T]` 0/1. pad_token_id: the config's pad id or None.
    """
    real = attention_mask.long()
    if input_ids is None or pad_token_id is None:
        return real
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
    scored = (positions * (input_ids != pad_token_id).long()).argmax(-1)  # [B], transformers' rule
    return real * (positions[None, :] <= scored[:, None]).long()


def chat_response_header(tokenizer) -> list[int]:
    """Token ids of `tokenizer`'s chat-template generation prompt (e.g. `<|im_start|>assistant\\n`): what
    opens the judged response in the sequences `adajudge.data` encodes, where the prompt part ends with it.

    Raises:
        ValueError: the tokenizer has no chat template, its generation prompt is empty, or the generation
            prompt does not tokenise to the same ids alone, at the end of a rendered prompt and inside a
            rendered conversation (then the response could not be found from the ids).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("tokenizer: expected a tokenizer with a chat template, got one without")
    messages = [{"role": "user", "content": "Hi"}]
    with_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    without = tokenizer.apply_chat_template(messages, tokenize=False)
    if not with_prompt.startswith(without) or with_prompt == without:
        raise ValueError("tokenizer.chat_template: expected a generation prompt appended to the rendered messages")
    conversation = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "Hello"}], tokenize=False)
    header = list(tokenizer(with_prompt[len(without):], add_special_tokens=False)["input_ids"])
    prompt_ids = list(tokenizer(with_prompt, add_special_tokens=False)["input_ids"])
    conversation_ids = list(tokenizer(conversation, add_special_tokens=False)["input_ids"])
    start = len(prompt_ids) - len(header)
    if prompt_ids[start:] != header or conversation_ids[start:len(prompt_ids)] != header:
        raise ValueError("tokenizer.chat_template: its generation prompt tokenises differently in context")
    return header


def chat_response_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, header_ids: list[int]) -> torch.Tensor:
    """`[B, T]` int64 mask of the real tokens after the last occurrence of `header_ids` in each row (every real
    token in a row without it): the response of a chat-rendered sequence, as `adajudge.data` marks it.

    Args:
        input_ids: `[B, T]`. attention_mask: `[B, T]` 0/1, either padding side. header_ids: `L ≥ 1` ids
            (`chat_response_header`), matched only on real tokens.
    """
    real = attention_mask.long()
    length = len(header_ids)
    if input_ids.shape[-1] < length:
        return real
    header = torch.tensor(header_ids, dtype=input_ids.dtype, device=input_ids.device)
    found = (input_ids.unfold(-1, length, 1) == header).all(-1) & real.unfold(-1, length, 1).bool().all(-1)  # [B, T-L+1]
    starts = torch.arange(found.shape[-1], device=input_ids.device)
    last = torch.where(found, starts, -1).amax(-1)  # [B], -1 where absent
    first_response = torch.where(last >= 0, last + length, 0)
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
    return real * (positions[None, :] >= first_response[:, None]).long()
