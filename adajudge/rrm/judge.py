"""``PairwiseJudge``: a causal LM that reasons about two answers and names the better one (RRM,
arXiv 2505.14674; DESIGN.md §7), generating with transformers.

Per comparison, and again per vote under voting@k, a coin from the judge's seeded generator decides
whether the answers are shown swapped; a verdict read from a swapped prompt is mapped back, so every
verdict the judge returns is in the caller's order (1: ``answer_1`` is better). Voting@k *(ours, for
the tie rule)*: the verdict with more votes wins; votes without a verdict abstain; a tie, all-None
included, is None.

Reproducibility: one ``random.Random(seed)`` draws the swap coins and one torch seed per ``generate``
call (set inside ``torch.random.fork_rng``, so the global RNG state is left alone). The same judge
settings fed the same calls in the same order give the same results; batching changes padding and
so, for sampled generation, the exact texts.
"""
import numbers
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from transformers import GenerationConfig

from .prompt import encode_comparison
from .verdict import Verdict, parse_verdict, split_reasoning


class Generation(NamedTuple):
    """One generated reply: its text (special tokens dropped), the tokens generated before the stop
    token, and whether ``max_new_tokens`` ran out before a stop token came. ``error``: why an engine got
    no reply (a server request that failed after its retries); such a generation gives no verdict."""

    text: str
    num_tokens: int
    truncated: bool
    error: str | None = None


@dataclass(frozen=True)
class Vote:
    """One sampled judgement. ``verdict`` is in the caller's order, ``shown_verdict`` as the model saw
    the answers (they differ when ``swapped``). ``num_tokens``: generated tokens before the stop token,
    the reasoning length counted against ``max_new_tokens``; ``truncated``: the budget ran out first;
    ``error``: why the engine got no reply (then there is no verdict)."""

    verdict: Verdict
    shown_verdict: Verdict
    swapped: bool
    text: str
    num_tokens: int
    truncated: bool
    error: str | None = None

    @property
    def reasoning(self) -> str:
        """The text before ``</think>``, ``""`` when the model wrote no think tags."""
        return split_reasoning(self.text)[0]


@dataclass(frozen=True)
class Judgement:
    """The outcome of one comparison: the majority ``verdict`` over ``votes`` (caller's order)."""

    verdict: Verdict
    votes: tuple[Vote, ...]


def majority(verdicts: Sequence[Verdict]) -> Verdict:
    """1 or 2 when it has strictly more votes than the other; None votes abstain; ties give None."""
    ones, twos = sum(v == 1 for v in verdicts), sum(v == 2 for v in verdicts)
    return 1 if ones > twos else 2 if twos > ones else None


def _positive_int(name, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _stop_token_ids(model, tokenizer) -> list[int]:
    ids = []
    for source in (getattr(getattr(model, "generation_config", None), "eos_token_id", None), tokenizer.eos_token_id):
        ids += [source] if isinstance(source, int) else list(source or [])
    return list(dict.fromkeys(ids))


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask`` [B, T] int64, padded on the left (the side generation needs)."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, width - len(row):] = torch.tensor(row, dtype=torch.long)
        attention_mask[b, width - len(row):] = 1
    return input_ids.to(device), attention_mask.to(device)


class PairwiseJudge:
    """Generative pairwise judge over a transformers causal LM.

    Args:
        model: a causal LM with ``generate`` (``AutoModelForCausalLM``), used as given (eval mode, device);
            None only in a subclass whose own ``generate`` needs no model (``ServerJudge``).
        tokenizer: its tokenizer; the prompt goes through its chat template (``adajudge.rrm.prompt``).
        max_new_tokens: the thinking budget per vote; a reply cut off by it usually has no verdict.
        temperature: 0 decodes greedily; above 0 samples with ``top_p``.
        top_p: nucleus mass when sampling (defaults follow DeepSeek-R1's, which RRM is trained from).
        num_votes: k of voting@k (k sampled judgements per comparison, majority verdict).
        seed: seeds the swap coins and the sampling (module docstring).
        batch_size: prompts per ``generate`` call (prompts are sorted by length to save padding).
        randomize_order: swap the answers at random per vote (True) or always show them as given.

    ``judge(question, answer_1, answer_2) -> 1 | 2 | None`` (the object is callable the same way) plugs
    into ``adajudge.eval.score_judgebench(judge_fn=...)``; ``judge_batch(items)`` returns ``Judgement``s
    with every vote's text and token count.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_new_tokens: int = 1024,
        temperature: float = 0.6,
        top_p: float = 0.95,
        num_votes: int = 1,
        seed: int = 0,
        batch_size: int = 8,
        randomize_order: bool = True,
    ):
        in_process = type(self).generate is PairwiseJudge.generate
        if (model is not None or in_process) and not callable(getattr(model, "generate", None)):
            raise TypeError(f"model must have a generate method (a causal LM), got {type(model).__name__}")
        if not isinstance(temperature, numbers.Real) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
        if not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
            raise ValueError(f"top_p must be a number in (0, 1], got {top_p!r}")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = _positive_int("max_new_tokens", max_new_tokens)
        self.num_votes = _positive_int("num_votes", num_votes)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.randomize_order = bool(randomize_order)
        self.stop_token_ids = _stop_token_ids(model, tokenizer)
        pad_id = tokenizer.pad_token_id
        if pad_id is None and not self.stop_token_ids:
            raise ValueError("tokenizer must have a pad_token_id or an eos_token_id, got neither")
        self.pad_token_id = pad_id if pad_id is not None else self.stop_token_ids[0]
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}
        self.generation_config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.stop_token_ids or None,
            **(sampling if self.temperature > 0 else {"do_sample": False}),
        )
        self._rng = random.Random(seed)

    def judge(self, question: str, answer_1: str, answer_2: str) -> Verdict:
        """1 if ``answer_1`` is the better answer to ``question``, 2 if ``answer_2`` is, None if no verdict."""
        return self.judge_batch([(question, answer_1, answer_2)])[0].verdict

    __call__ = judge

    def judge_batch(self, items: Sequence[tuple[str, str, str]]) -> list[Judgement]:
        """One ``Judgement`` per ``(question, answer_1, answer_2)``; all votes of all items are generated
        together, ``batch_size`` prompts per ``generate`` call."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"items must be a sequence of (question, answer_1, answer_2), got {type(items).__name__}")
        prompts, swaps = [], []
        for index, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 3:
                raise ValueError(f"items[{index}] must be a (question, answer_1, answer_2) triple, got {item!r:.80}")
            question, answer_1, answer_2 = item
            for _ in range(self.num_votes):
                swapped = self.randomize_order and self._rng.random() < 0.5
                shown = (answer_2, answer_1) if swapped else (answer_1, answer_2)
                prompts.append(self.encode_prompt(question, *shown))
                swaps.append(swapped)
        outputs = self.generate(prompts)
        votes = [self._vote(output, swapped) for output, swapped in zip(outputs, swaps)]
        k = self.num_votes
        return [
            Judgement(majority([v.verdict for v in votes[i:i + k]]), tuple(votes[i:i + k]))
            for i in range(0, len(votes), k)
        ]

    @staticmethod
    def _vote(output: Generation, swapped: bool) -> Vote:
        shown = None if output.error is not None else parse_verdict(output.text)
        verdict = {1: 2, 2: 1}.get(shown) if swapped else shown
        return Vote(verdict, shown, swapped, output.text, output.num_tokens, output.truncated, output.error)

    def encode_prompt(self, question: str, answer_1: str, answer_2: str):
        """The prompt ``generate`` receives for one vote: here the token ids of the rendered comparison. An
        engine that takes text or chat messages (``adajudge.rrm.ServerJudge``) overrides it with ``generate``."""
        return encode_comparison(self.tokenizer, question, answer_1, answer_2)

    def generate(self, prompts: list[list[int]]) -> list[Generation]:
        """One ``Generation`` per prompt (token ids), in the given order: the only step that touches the
        engine. transformers ``generate`` here, ``batch_size`` left-padded prompts per call, sorted by
        length; a subclass may override it to generate elsewhere (README: serving with vLLM)."""
        device = self.model.device
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Generation] = [Generation("", 0, False)] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            input_ids, attention_mask = _left_pad([prompts[i] for i in chunk], self.pad_token_id, device)
            with torch.inference_mode(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(self._rng.randrange(2**63))
                output = self.model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, generation_config=self.generation_config
                )
            for index, row in zip(chunk, output[:, input_ids.shape[1]:].tolist()):
                stops = [position for position, token in enumerate(row) if token in self.stop_token_ids]
                length = stops[0] if stops else len(row)
                text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
                results[index] = Generation(text, length, not stops)
        return results
