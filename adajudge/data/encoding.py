"""Tokenise (prompt, response) pairs into `input_ids` + `response_mask`, with an explicit truncation policy.

Layout. With a chat template, the prompt is rendered with `add_generation_prompt=True` and the response is
the rest of the rendered conversation (the assistant turn's text, its end-of-turn token and whatever the
template writes after it); both parts are tokenised separately with `add_special_tokens=False` and
concatenated, so the prompt/response boundary is exact. Without a chat template, prompt and response must
be strings: the ids are `tokens(prompt) + tokens(response) + [eos]` (no BOS).

Truncation policy: the response is always kept whole; when prompt + response exceed `max_length`, the
prompt is cut from the left (its oldest tokens go first). A response longer than `max_length` cannot fit:
`encode_prompt_response` raises `ResponseTooLongError`, and the pair-level helpers drop the pair and count
it in `TruncationStats`; nothing is dropped silently.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Message = Mapping[str, str]


class ResponseTooLongError(ValueError):
    """A response alone is longer than `max_length`, so the sequence cannot be built without cutting it."""


@dataclass
class TruncationStats:
    """Counters of what the truncation policy did, pair by pair.

    Attributes:
        pairs: pairs seen.
        truncated: kept pairs whose prompt was cut (in the chosen row, the rejected row, or both).
        dropped: pairs dropped because a response alone exceeded `max_length`.
    """

    pairs: int = 0
    truncated: int = 0
    dropped: int = 0

    @property
    def kept(self) -> int:
        return self.pairs - self.dropped

    def __str__(self) -> str:
        return f"{self.pairs} pairs: {self.kept} kept ({self.truncated} with the prompt cut), {self.dropped} dropped"


def _check_messages(name: str, messages: Sequence) -> list[dict[str, str]]:
    out = []
    for index, message in enumerate(messages):
        if (
            not isinstance(message, Mapping)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise TypeError(
                f"{name}[{index}]: expected a chat message {{'role': str, 'content': str}}, got {message!r}"
            )
        out.append({"role": message["role"], "content": message["content"]})
    return out


def _as_messages(name: str, value, role: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, Sequence):
        return _check_messages(name, value)
    raise TypeError(f"{name}: expected a str or a list of chat messages, got {type(value).__name__}")


def tokenize_prompt_response(tokenizer, prompt, response) -> tuple[list[int], list[int]]:
    """Token ids of the prompt part and of the response part, untruncated (see the module docstring).

    Args:
        tokenizer: a transformers tokenizer.
        prompt: str, or a list of chat messages `{"role", "content"}`.
        response: str (one assistant message), or a list of chat messages that follow the prompt.

    Returns:
        `(prompt_ids, response_ids)`, lists of int.
    """
    if getattr(tokenizer, "chat_template", None):
        prompt_messages = _as_messages("prompt", prompt, "user")
        response_messages = _as_messages("response", response, "assistant")
        prompt_text = tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(prompt_messages + response_messages, tokenize=False)
        if not full_text.startswith(prompt_text):
            # Some templates write the generation prompt differently from a finished turn's header.
            prompt_text = tokenizer.apply_chat_template(prompt_messages, tokenize=False)
            if not full_text.startswith(prompt_text):
                raise ValueError(
                    "tokenizer.chat_template: the rendered prompt is not a prefix of the rendered conversation, "
                    "so the response tokens cannot be located"
                )
        response_text = full_text[len(prompt_text):]
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"]
        return list(prompt_ids), list(response_ids)
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise TypeError(
            "prompt/response: the tokenizer has no chat template, so both must be str, got "
            f"{type(prompt).__name__} and {type(response).__name__}"
        )
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        response_ids.append(tokenizer.eos_token_id)
    return prompt_ids, response_ids


def _check_max_length(max_length) -> None:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length: expected an int >= 1, got {max_length!r}")


def fit_to_length(prompt_ids: Sequence[int], response_ids: Sequence[int], max_length: int) -> tuple[dict, bool]:
    """Join prompt and response ids under `max_length`, cutting the prompt from the left.

    Returns:
        `({"input_ids": [...], "response_mask": [...]}, prompt_was_cut)`.

    Raises:
        ResponseTooLongError: `len(response_ids) > max_length`.
    """
    _check_max_length(max_length)
    if len(response_ids) > max_length:
        raise ResponseTooLongError(
            f"response has {len(response_ids)} tokens, more than max_length={max_length}; the policy keeps "
            "responses whole, so this sequence cannot fit"
        )
    room = max_length - len(response_ids)
    kept_prompt = list(prompt_ids[len(prompt_ids) - room:]) if len(prompt_ids) > room else list(prompt_ids)
    encoding = {
        "input_ids": kept_prompt + list(response_ids),
        "response_mask": [0] * len(kept_prompt) + [1] * len(response_ids),
    }
    return encoding, len(kept_prompt) < len(prompt_ids)


def encode_prompt_response(tokenizer, prompt, response, *, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + response and a mask of the response tokens, at most `max_length` long.

    Args:
        tokenizer: a transformers tokenizer; its chat template is used when it has one.
        prompt: str or list of chat messages `{"role": str, "content": str}`.
        response: str (one assistant turn) or list of chat messages following the prompt.
        max_length: the longest sequence allowed; the prompt is cut from the left to fit.

    Returns:
        `{"input_ids": list[int], "response_mask": list[int]}` of equal length, `response_mask[t] = 1` for the
        response's tokens (the assistant turn, its end-of-turn token and any template suffix).

    Raises:
        ResponseTooLongError: the response alone has more than `max_length` tokens.

    Example:
        >>> enc = encode_prompt_response(tok, "2+2?", "4", max_length=512)  # doctest: +SKIP
        >>> enc["response_mask"][-1]  # doctest: +SKIP
        1
    """
    _check_max_length(max_length)
    prompt_ids, response_ids = tokenize_prompt_response(tokenizer, prompt, response)
    encoding, _ = fit_to_length(prompt_ids, response_ids, max_length)
    return encoding


def _check_example(example, name: str) -> None:
    if not isinstance(example, Mapping):
        raise TypeError(f"{name}: expected a mapping with prompt/chosen/rejected, got {type(example).__name__}")
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in example]
    if missing:
        raise ValueError(f"{name}: missing keys {missing}; got keys {sorted(example)}")


def encode_pair(tokenizer, example: Mapping, *, max_length: int, stats: TruncationStats | None = None) -> dict | None:
    """Encode one preference example; `None` (counted in `stats.dropped`) when a response cannot fit.

    Args:
        example: `{"prompt", "chosen", "rejected"}` (str or chat messages), optional `margin`, `weight`.
        stats: counters updated in place.

    Returns:
        `{"chosen_input_ids", "chosen_response_mask", "rejected_input_ids", "rejected_response_mask"}`
        (lists of int) plus `margin`/`weight` when the example has them, or `None` for a dropped pair.
    """
    _check_example(example, "example")
    stats = stats if stats is not None else TruncationStats()
    stats.pairs += 1
    out, cut = {}, False
    for side in ("chosen", "rejected"):
        prompt_ids, response_ids = tokenize_prompt_response(tokenizer, example["prompt"], example[side])
        try:
            encoding, side_cut = fit_to_length(prompt_ids, response_ids, max_length)
        except ResponseTooLongError:
            stats.dropped += 1
            return None
        cut = cut or side_cut
        out[f"{side}_input_ids"] = encoding["input_ids"]
        out[f"{side}_response_mask"] = encoding["response_mask"]
    stats.truncated += int(cut)
    for key in ("margin", "weight"):
        if example.get(key) is not None:
            out[key] = float(example[key])
    return out


def encode_pairs(tokenizer, examples: Iterable[Mapping], *, max_length: int) -> tuple[list[dict], TruncationStats]:
    """Encode many preference examples with `encode_pair`, warning once when any pair was dropped.

    Returns:
        `(encoded, stats)`: the kept pairs in input order, and the counts of seen, cut and dropped pairs.
    """
    _check_max_length(max_length)
    stats = TruncationStats()
    encoded = []
    for index, example in enumerate(examples):
        _check_example(example, f"examples[{index}]")
        item = encode_pair(tokenizer, example, max_length=max_length, stats=stats)
        if item is not None:
            encoded.append(item)
    if stats.dropped:
        warnings.warn(f"truncation (max_length={max_length}): {stats}", stacklevel=2)
    return encoded, stats
