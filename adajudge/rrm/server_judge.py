"""`ServerJudge`: the RRM pairwise judge with its replies generated on an OpenAI-compatible server.

The judging is `PairwiseJudge`'s, unchanged: the same prompt, answer-order coins, votes and verdict rule;
only the two engine steps differ. `encode_prompt` gives the server what it takes: the comparison rendered
with the model's own chat template (`endpoint="completions"`, the same text the in-process engine
tokenizes) or the chat messages (`endpoint="chat"`). `generate` sends all prompts of a call (every vote
of every comparison of a knockout round, or of a whole round-robin) through `OpenAIEngine`, `concurrency`
requests in flight. A request that fails after its retries is a vote without a verdict whose `error` says
why; the tournament goes on (its coin decides the match when no vote has a verdict).

Sampling: temperature 0 asks the server for greedy decoding, so the verdicts equal the in-process
engine's on the same comparisons (tests/test_rrm_server.py checks this against `transformers serve`);
above 0 every request carries a seed drawn from the judge's seeded generator *(ours)*.
"""
from collections.abc import Sequence

from .judge import Generation, PairwiseJudge
from .openai_engine import OpenAIEngine
from .prompt import comparison_messages, render_comparison
from .verdict import opens_think_block

SEED_BOUND = 2**31  # servers read `seed` as a 32- or 64-bit int; stay inside both


class ServerJudge(PairwiseJudge):
    """`PairwiseJudge` whose `generate` runs on `engine` (an `OpenAIEngine`).

    Args:
        engine: the server connection (URL, model name, endpoint, concurrency, timeout, retries).
        tokenizer: the judge model's tokenizer (only its files are needed): it renders the prompt for
            `/v1/completions` exactly as the in-process engine does.
        **options: `PairwiseJudge`'s judging options (`max_new_tokens`, `temperature`, `top_p`,
            `num_votes`, `seed`, `randomize_order`, `prompt`, `verdict_rule`); `batch_size` has no effect here.

    Example:
        >>> engine = OpenAIEngine("http://127.0.0.1:8000/v1", "Reward-Reasoning/RRM-7B")  # doctest: +SKIP
        >>> judge = ServerJudge(engine, AutoTokenizer.from_pretrained("Reward-Reasoning/RRM-7B"))  # doctest: +SKIP
        >>> best_of_n(question, candidates, judge).winner  # doctest: +SKIP
    """

    def __init__(self, engine: OpenAIEngine, tokenizer, **options):
        if not isinstance(engine, OpenAIEngine):
            raise TypeError(f"engine: expected an OpenAIEngine, got {type(engine).__name__}")
        super().__init__(None, tokenizer, **options)
        self.engine = engine

    def encode_prompt(self, question: str, answer_1: str, answer_2: str) -> tuple:
        """`(prompt, think_opened)` of one vote: the comparison rendered with `self.prompt` through the
        tokenizer's chat template (`completions`), or its chat messages (`chat`, rendered by the server);
        whether the local rendering opened a think block decides how the reply is read, as in-process."""
        text = render_comparison(self.tokenizer, question, answer_1, answer_2, self.prompt)
        if self.engine.endpoint == "chat":
            return comparison_messages(question, answer_1, answer_2, self.prompt), opens_think_block(text)
        return text, opens_think_block(text)

    def generate(self, prompts: Sequence) -> list[Generation]:
        """One `Generation` per prompt from the server, in order (`OpenAIEngine.generate`)."""
        seeds = [self._rng.randrange(SEED_BOUND) for _ in prompts] if self.temperature > 0 else None
        return self.engine.generate(prompts, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                    top_p=self.top_p, seeds=seeds)
