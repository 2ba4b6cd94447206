"""``PairwiseJudge``: a causal LM that reasons about two answers and names the better one (RRM,
arXiv 2505.14674; docs/design.md §7), generating with transformers.

Per comparison, and again per vote under voting@k, a coin from the judge's seeded generator decides
whether the answers are shown swapped; a verdict read from a swapped prompt is mapped back, so every
verdict the judge returns is in the caller's order (1: ``answer_1`` is better). Benchmarks that fix the
order themselves call ``judge_in_order``, which never swaps. Voting@k *(ours, for the tie rule)*: the
verdict with more votes wins; votes without a verdict abstain; a tie, all-None included, is None.

Verdicts follow the RRM authors' evaluation (``adajudge.rrm.verdict``): the box after the first
``</think>``, exactly ``Assistant 1`` or ``Assistant 2``, and no verdict for a reply cut off by
``max_new_tokens`` or one that never closes a think block the prompt opened. Sampling defaults are those
of the official runs (microsoft/LMOps ``RRM-evaluation/scripts/run_7b.sh`` and ``run_generative.py``,
commit af6bc85e3e669ad5ec371d074c767905869c862e): temperature 0.6, top_p 1.0, 8192 new tokens.

Reproducibility: one ``random.Random(seed)`` draws the swap coins and one torch seed per ``generate``
call (set inside ``torch.random.fork_rng``, so the global RNG state is left alone). The same judge
settings fed the same calls in the same order give the same results; batching changes padding and
so, for sampled generation, the exact texts.
"""
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from transformers import GenerationConfig

from adajudge.validation import check_bool, check_choice, check_float, check_int

from .prompt import DEFAULT_PROMPT, as_template, encode_rendered, render_comparison
from .verdict import VERDICT_RULES, Verdict, no_verdict_reason, opens_think_block, parse_verdict, split_reasoning


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
    ``think_opened``: the prompt opened a think block for the reply; ``error``: why the engine got no reply
    (then there is no verdict); ``no_verdict_reason``: why there is no verdict (a code of
    ``adajudge.rrm.verdict.NO_VERDICT_REASONS``), None when there is one."""

    verdict: Verdict
    shown_verdict: Verdict
    swapped: bool
    text: str
    num_tokens: int
    truncated: bool
    think_opened: bool = False
    error: str | None = None
    no_verdict_reason: str | None = None

    @property
    def reasoning(self) -> str:
        """The text before the first ``</think>`` (all of it when the reasoning never ended), ``""`` when
        the reply has no think block."""
        return split_reasoning(self.text, think_opened=self.think_opened)[0]


@dataclass(frozen=True)
class Judgement:
    """The outcome of one comparison: the majority ``verdict`` over ``votes`` (caller's order)."""

    verdict: Verdict
    votes: tuple[Vote, ...]


def majority(verdicts: Sequence[Verdict]) -> Verdict:
    """1 or 2 when it has strictly more votes than the other; None votes abstain; ties give None."""
    ones, twos = sum(v == 1 for v in verdicts), sum(v == 2 for v in verdicts)
    return 1 if ones > twos else 2 if twos > ones else None


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
        max_new_tokens: the thinking budget per vote; a reply cut off by it has no verdict (default 8192,
            the official runs').
        temperature: 0 decodes greedily; above 0 samples with ``top_p`` (default 0.6, the official runs').
        top_p: nucleus mass when sampling (default 1.0, the official runs').
        num_votes: k of voting@k (k sampled judgements per comparison, majority verdict).
        seed: seeds the swap coins and the sampling (module docstring).
        batch_size: prompts per ``generate`` call (prompts are sorted by length to save padding).
        randomize_order: swap the answers at random per vote (True) or always show them as given; the
            benchmarks' ``judge_in_order`` ignores it.
        prompt: the prompt template: ``adajudge.rrm.prompt.DEFAULT_PROMPT``, ``RRM_PROMPT`` (the one the
            RRM checkpoints were trained with), a ``PromptTemplate``, a ``str`` user-turn template over
            ``{question}``, ``{answer_1}``, ``{answer_2}``, or a callable returning chat messages.
        verdict_rule: ``"official"`` (the RRM evaluation's rule, ``adajudge.rrm.verdict``) or
            ``"lenient"`` *(ours)*, which also reads truncated replies, the box after the last
            ``</think>`` and boxes with whitespace.

    ``judge(question, answer_1, answer_2) -> 1 | 2 | None`` (the object is callable the same way) plugs
    into ``adajudge.eval.score_judgebench(judge_fn=...)`` and ``score_rewardbench(judge_fn=...)``, which
    call ``judge_in_order``; ``judge_batch(items)`` returns ``Judgement``s with every vote's text and
    token count.

    Raises:
        TypeError, ValueError: an argument of the wrong kind or out of range (``adajudge.validation``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_new_tokens: int = 8192,
        temperature: float = 0.6,
        top_p: float = 1.0,
        num_votes: int = 1,
        seed: int = 0,
        batch_size: int = 8,
        randomize_order: bool = True,
        prompt=DEFAULT_PROMPT,
        verdict_rule: str = "official",
    ):
        in_process = type(self).generate is PairwiseJudge.generate
        if (model is not None or in_process) and not callable(getattr(model, "generate", None)):
            raise TypeError(f"model: expected a causal LM with a generate method, got {type(model).__name__}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = check_int("max_new_tokens", max_new_tokens, at_least=1)
        self.num_votes = check_int("num_votes", num_votes, at_least=1)
        self.batch_size = check_int("batch_size", batch_size, at_least=1)
        self.temperature = check_float("temperature", temperature, at_least=0)
        self.top_p = check_float("top_p", top_p, greater_than=0, at_most=1)
        self.randomize_order = check_bool("randomize_order", randomize_order)
        self.prompt = as_template(prompt)
        self.verdict_rule = check_choice("verdict_rule", verdict_rule, VERDICT_RULES)
        seed = check_int("seed", seed)
        self.stop_token_ids = _stop_token_ids(model, tokenizer)
        pad_id = tokenizer.pad_token_id
        if pad_id is None and not self.stop_token_ids:
            raise ValueError("tokenizer: expected a pad_token_id or an eos_token_id, got neither")
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

    def judge_in_order(self, items: Sequence[tuple[str, str, str]]) -> list[Verdict]:
        """One verdict per ``(question, answer_1, answer_2)``, every vote shown ``answer_1`` first whatever
        ``randomize_order`` says: the hook the benchmark scorers call (``adajudge.eval._judge``)."""
        return [judgement.verdict for judgement in self.judge_batch(items, randomize_order=False)]

    def judge_batch(self, items: Sequence[tuple[str, str, str]], *, randomize_order: bool | None = None
                    ) -> list[Judgement]:
        """One ``Judgement`` per ``(question, answer_1, answer_2)``; all votes of all items are generated
        together, ``batch_size`` prompts per ``generate`` call. ``randomize_order`` overrides the judge's
        setting for this call (None: the judge's)."""
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError(f"items: expected a sequence of (question, answer_1, answer_2), got {type(items).__name__}")
        randomize = self.randomize_order if randomize_order is None else check_bool("randomize_order", randomize_order)
        prompts, swaps, opened = [], [], []
        for index, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 3:
                raise ValueError(f"items[{index}]: expected a (question, answer_1, answer_2) triple, got {item!r:.80}")
            question, answer_1, answer_2 = item
            for _ in range(self.num_votes):
                swapped = randomize and self._rng.random() < 0.5
                shown = (answer_2, answer_1) if swapped else (answer_1, answer_2)
                prompt, think_opened = self.encode_prompt(question, *shown)
                prompts.append(prompt)
                swaps.append(swapped)
                opened.append(think_opened)
        outputs = self.generate(prompts)
        votes = [self._vote(output, swapped, think_opened)
                 for output, swapped, think_opened in zip(outputs, swaps, opened)]
        k = self.num_votes
        return [
            Judgement(majority([v.verdict for v in votes[i:i + k]]), tuple(votes[i:i + k]))
            for i in range(0, len(votes), k)
        ]

    def _vote(self, output: Generation, swapped: bool, think_opened: bool) -> Vote:
        text, num_tokens, truncated, error = output
        lenient = self.verdict_rule == "lenient"
        cut_off = truncated and not lenient  # the official evaluation counts a cut-off reply as an error
        failed = error is not None  # the engine got no reply (a server request that failed after its retries)
        shown = None if cut_off or failed else parse_verdict(text, think_opened=think_opened, lenient=lenient)
        verdict = {1: 2, 2: 1}.get(shown) if swapped else shown
        if failed:
            reason = "request_failed"
        elif shown is None and truncated:
            reason = "truncated"
        elif shown is None:
            reason = no_verdict_reason(text, think_opened=think_opened, lenient=lenient)
        else:
            reason = None
        return Vote(verdict, shown, swapped, text, num_tokens, truncated, think_opened, error, reason)

    def encode_prompt(self, question: str, answer_1: str, answer_2: str) -> tuple:
        """``(prompt, think_opened)`` of one vote: what ``generate`` receives (here the token ids of the
        comparison rendered with ``self.prompt`` through the tokenizer's chat template) and whether the
        rendering opened a think block. An engine that takes text or chat messages
        (``adajudge.rrm.ServerJudge``) overrides it with ``generate``."""
        text = render_comparison(self.tokenizer, question, answer_1, answer_2, self.prompt)
        return encode_rendered(self.tokenizer, text), opens_think_block(text)

    def generate(self, prompts: list[list[int]]) -> list[Generation]:
        """One ``Generation`` per prompt (token ids), in the given order: the only step that touches the
        engine. transformers ``generate`` here, ``batch_size`` left-padded prompts per call, sorted by
        length; a subclass may override it to generate elsewhere (``ServerJudge``; docs/judge.md)."""
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
