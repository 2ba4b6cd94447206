"""Turn a reward model and its tokenizer into the `reward_fn(prompts, responses)` the scorers call.

Works with `adajudge.AdaJudgeForRewardModeling` (which also takes the response mask) and with any
transformers `*ForSequenceClassification` with `num_labels=1`. Texts are tokenised with the same
`encode_prompt_response` the training collator uses, so a model is scored on the input layout it was
trained on.
"""
import inspect
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from adajudge.data.collator import pad_encodings
from adajudge.data.encoding import ResponseTooLongError, encode_prompt_response, tokenize_prompt_response
from adajudge.validation import check_bool, check_int


@dataclass
class ScoringCounts:
    """What a model's reward function has scored so far: `responses` pairs, of which `truncated` had a
    response longer than `max_length` on its own (scored on its last `max_length` tokens)."""

    responses: int = 0
    truncated: int = 0


def reward_fn_from_model(model: torch.nn.Module, tokenizer, *, batch_size: int = 8, max_length: int = 2048,
                         device: str | torch.device | None = None, progress: bool = True, warn: bool = True):
    """A `reward_fn(prompts: list[str], responses: list[str]) -> list[float]` backed by `model`.

    Each call tokenises every (prompt, response) pair with
    `adajudge.data.encoding.encode_prompt_response(tokenizer, prompt, response, max_length=max_length)`
    (the tokenizer's chat template when it has one; the prompt is cut from the left when too long; a
    response alone longer than `max_length` keeps its last `max_length` tokens, as the official RewardBench
    and RM-Bench scripts' left truncation does, with a warning, since every pair must be scored), sorts
    the pairs by token count (longest first, so an out-of-memory error shows at once and padding is small),
    runs `model` on batches of `batch_size` under `torch.no_grad()` in eval mode (the model's training flag
    is restored afterwards), and returns the rewards (`logits[:, 0]` as fp32 Python floats) in the order of
    the input pairs.

    Args:
        model: an `AdaJudgeForRewardModeling` or a transformers sequence classifier with one label; its
            `forward(input_ids [B, T], attention_mask [B, T][, response_mask [B, T]])` returns an output
            with `logits [B, 1]`. The response mask is passed only when `forward` takes one.
        tokenizer: the model's tokenizer. Padding uses `model.config.pad_token_id`, else the tokenizer's.
        batch_size: sequences per forward pass.
        max_length: most tokens per sequence.
        device: where to run; default: the device of the model's first parameter. The model is not moved.
        progress: show a tqdm progress bar per call.
        warn: warn (`UserWarning`) on each call that truncated a response; False leaves the reporting to the
            caller, which reads the totals in `reward_fn.counts` (`ScoringCounts`), as `adajudge eval` does.

    Example:
        >>> reward_fn = reward_fn_from_model(model, tokenizer, batch_size=16)
        >>> score_rm_bench(load_rm_bench("rm-bench-chat.json"), reward_fn)["avg"]
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module (a reward model), got {type(model).__name__}")
    num_labels = getattr(getattr(model, "config", None), "num_labels", 1)
    if num_labels != 1:
        raise ValueError(f"model: expected one score per sequence (config.num_labels=1), got num_labels={num_labels}")
    batch_size = check_int("batch_size", batch_size, at_least=1)
    max_length = check_int("max_length", max_length, at_least=1)
    check_bool("progress", progress)
    check_bool("warn", warn)
    counts = ScoringCounts()
    takes_response_mask = "response_mask" in inspect.signature(model.forward).parameters
    pad_token_id = _pad_token_id(model, tokenizer, finds_last_token_by_pad_id=not takes_response_mask)
    if device is None:
        device = next(model.parameters()).device

    def reward_fn(prompts: list[str], responses: list[str]) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts, responses: expected the same length, got {len(prompts)} and "
                             f"{len(responses)}")
        encoded = [encode_for_scoring(tokenizer, prompt, response, max_length) for prompt, response in zip(prompts, responses)]
        encodings = [encoding for encoding, _ in encoded]
        cut = sum(was_cut for _, was_cut in encoded)
        counts.responses += len(encodings)
        counts.truncated += cut
        if cut and warn:
            warnings.warn(f"{cut} of {len(encodings)} responses are longer than max_length={max_length} tokens "
                          "on their own; each was scored on its last max_length tokens", stacklevel=2)
        order = sorted(range(len(encodings)), key=lambda index: -len(encodings[index]["input_ids"]))
        rewards = [0.0] * len(encodings)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), tqdm(total=len(order), desc="rewards", unit="seq", disable=not progress) as bar:
                for start in range(0, len(order), batch_size):
                    indices = order[start:start + batch_size]
                    batch = pad_encodings([encodings[index] for index in indices], pad_token_id)
                    inputs = {"input_ids": batch["input_ids"].to(device),
                              "attention_mask": batch["attention_mask"].to(device)}
                    if takes_response_mask:
                        inputs["response_mask"] = batch["response_mask"].to(device)
                    logits = model(**inputs).logits
                    for index, reward in zip(indices, logits.float()[:, 0].cpu().tolist()):
                        rewards[index] = reward
                    bar.update(len(indices))
        finally:
            model.train(was_training)
        return rewards

    reward_fn.counts = counts
    return reward_fn


def encode_for_scoring(tokenizer, prompt: str, response: str, max_length: int) -> tuple[dict, bool]:
    """`(encode_prompt_response(...), False)`, or, when the response alone exceeds `max_length`, its last
    `max_length` tokens without the prompt and True."""
    try:
        return encode_prompt_response(tokenizer, prompt, response, max_length=max_length), False
    except ResponseTooLongError:
        _, response_ids = tokenize_prompt_response(tokenizer, prompt, response)
        kept = response_ids[-max_length:]
        return {"input_ids": kept, "response_mask": [1] * len(kept)}, True


def _pad_token_id(model: torch.nn.Module, tokenizer, *, finds_last_token_by_pad_id: bool) -> int:
    """The id to pad with. A transformers sequence classifier finds each row's last token by looking for
    `config.pad_token_id`, so for one the model's own pad id is required."""
    pad_token_id = getattr(getattr(model, "config", None), "pad_token_id", None)
    if pad_token_id is None and finds_last_token_by_pad_id:
        raise ValueError("model.config.pad_token_id: expected a token id (a sequence classifier needs it to "
                         "find each sequence's last token in a padded batch; set model.config.pad_token_id = "
                         "tokenizer.pad_token_id), got None")
    if pad_token_id is None:
        pad_token_id = getattr(tokenizer, "pad_token_id", None)
    if pad_token_id is None:
        raise ValueError("model.config.pad_token_id, tokenizer.pad_token_id: expected a pad token id in either, "
                         "got None in both")
    return pad_token_id
