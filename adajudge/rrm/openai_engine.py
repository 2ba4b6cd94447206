"""The judge's generation engine on an OpenAI-compatible server, through the `openai` client.

vLLM (`vllm serve`), SGLang, TGI, llama.cpp's server and `transformers serve` all answer the OpenAI routes.
`OpenAIEngine.generate(prompts)` sends one request per prompt, `concurrency` of them in flight at once, and
returns one `Generation` per prompt in the order given:

- `endpoint="completions"` (default): `POST /v1/completions`, a prompt is the rendered prompt text (the
  judge renders it with the model's own chat template, exactly as the in-process engine does);
  `endpoint="chat"`: `POST /v1/chat/completions`, a prompt is the chat messages and the server applies
  its template. A chat reply whose reasoning a server's reasoning parser split off (`reasoning_content`, or
  `reasoning` as vLLM names it from v0.11: docs.vllm.ai/en/v0.11.2/features/reasoning_outputs) is joined back
  as `reasoning + "</think>" + content` *(ours)*, so the verdict is read from the text after the reasoning
  as it is in-process.
- Retries are the `openai` client's: a request answered 408, 409, 429 or 5xx, or that failed to connect or
  timed out, is sent again up to `max_retries` times with exponential backoff (0.5 s doubling, at most 8 s,
  with jitter; a `Retry-After` header is honoured). Each attempt may take `timeout` seconds, so a request
  ends within `(max_retries + 1) * timeout` seconds plus the backoff.
- A request that still fails (or is refused as unprocessable, e.g. a prompt longer than the model's
  context) becomes a `Generation` with `error` set and no text: the judge records it as a vote without a
  verdict, and the tournament goes on. *(ours)*
- What no retry mends raises `ServerError`, naming the URL and what came back: no server answering at
  start-up, the model not served, a key refused (401, 403, 404), or a reply that is not an OpenAI
  completion.
- `finish_reason == "length"` marks the generation truncated (the judge then reads no verdict);
  `num_tokens` is the reply's `usage.completion_tokens` as the server counts it (`transformers serve`
  counts the stop token too, the in-process engine does not).

Settings not given come from the environment: `OPENAI_BASE_URL`, `OPENAI_API_KEY` (default `"EMPTY"`, which
local servers accept) and `ADAJUDGE_JUDGE_MODEL`; with no model named, the engine uses the server's only model.
"""
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import openai

from adajudge.validation import check_choice, check_float, check_int, check_str

from .judge import Generation

ENDPOINTS = ("completions", "chat")
# Statuses that name a configuration error (wrong key, wrong model, wrong route): raised, never retried.
FATAL_STATUSES = (401, 403, 404)
THINK_END = "</think>"


class ServerError(RuntimeError):
    """The server cannot serve the judge; the message names the URL and what came back."""


def _excerpt(value, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class OpenAIEngine:
    """Generation on an OpenAI-compatible server (module docstring); checks the server when built.

    Args:
        base_url: the API root, e.g. `http://127.0.0.1:8000/v1`; default `$OPENAI_BASE_URL`.
        model: the served model's name; default `$ADAJUDGE_JUDGE_MODEL`, else the server's only model.
        api_key: default `$OPENAI_API_KEY`, else `"EMPTY"`.
        endpoint: `"completions"` (prompts are text) or `"chat"` (prompts are chat messages).
        concurrency: requests in flight at once, >= 1.
        timeout: seconds per attempt, > 0.
        max_retries: further attempts of a request after a retryable failure, >= 0.

    Raises:
        ValueError, TypeError: a setting out of range or of the wrong kind; no URL given or set.
        ServerError: no server answers at `base_url`, or it does not serve `model` (or serves several and
            none was named).
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        endpoint: str = "completions",
        concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 3,
    ):
        base_url = base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL")
        if base_url is None:
            raise ValueError("base_url: expected the server's URL (e.g. http://127.0.0.1:8000/v1), got None "
                             "and $OPENAI_BASE_URL is not set")
        self.base_url = check_str("base_url", base_url).rstrip("/")
        self.endpoint = check_choice("endpoint", endpoint, ENDPOINTS)
        self.concurrency = check_int("concurrency", concurrency, at_least=1)
        self.timeout = check_float("timeout", timeout, greater_than=0)
        self.max_retries = check_int("max_retries", max_retries, at_least=0)
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.client = openai.OpenAI(base_url=self.base_url, api_key=check_str("api_key", api_key),
                                    timeout=self.timeout, max_retries=self.max_retries)
        model = model if model is not None else os.environ.get("ADAJUDGE_JUDGE_MODEL")
        self.model = self._served_model(None if model is None else check_str("model", model))

    def _served_model(self, model: str | None) -> str:
        """`model` once `GET /models` shows the server serves it (the only served model when None)."""
        where = f"{self.base_url}/models"
        try:
            listing = self.client.models.list()
            served = [entry.id for entry in listing.data]
        except openai.APIConnectionError as error:
            raise ServerError(f"{where}: no server answered ({type(error).__name__}: {error}) after "
                              f"{self.max_retries + 1} attempts of up to {self.timeout:g} s") from None
        except openai.APIStatusError as error:
            raise ServerError(f"{where} answered HTTP {error.status_code}: {_excerpt(error.message)}") from None
        except (AttributeError, TypeError, ValueError) as error:
            raise ServerError(f"{where} did not answer an OpenAI model list ({error})") from None
        if not all(isinstance(name, str) for name in served):
            raise ServerError(f"{where} did not answer an OpenAI model list: ids {_excerpt(served)}")
        if model is None:
            if len(served) != 1:
                raise ServerError(f"{where} serves {served}: name the judge's model (--model, $ADAJUDGE_JUDGE_MODEL)")
            return served[0]
        if model not in served:
            raise ServerError(f"{where}: the server does not serve model {model!r}; it serves {served}")
        return model

    def generate(
        self,
        prompts: Sequence,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seeds: Sequence[int] | None = None,
    ) -> list[Generation]:
        """One `Generation` per prompt, in order; up to `concurrency` requests in flight at once.

        Args:
            prompts: texts (`endpoint="completions"`) or lists of `{"role", "content"}` messages (`"chat"`).
            max_new_tokens: `max_tokens` of each request.
            temperature: 0 asks for greedy decoding; above 0 the request also carries `top_p`.
            seeds: one per prompt, sent as the request's `seed` (servers that honour it sample
                reproducibly whatever the batching), or None.

        Raises:
            ServerError: a reply that is not an OpenAI completion, or a configuration error (401, 403, 404);
                requests not yet sent are cancelled.
        """
        seeds = [None] * len(prompts) if seeds is None else list(seeds)
        if len(seeds) != len(prompts):
            raise ValueError(f"seeds: expected one per prompt ({len(prompts)}), got {len(seeds)}")
        options = {"max_tokens": max_new_tokens, "temperature": temperature}
        if temperature > 0:
            options["top_p"] = top_p
        if not prompts:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="adajudge-judge")
        try:
            futures = [pool.submit(self._request, prompt, options, seed) for prompt, seed in zip(prompts, seeds)]
            return [future.result() for future in futures]
        finally:  # all done, or an error: requests not sent yet are dropped, those in flight end on their own
            pool.shutdown(wait=False, cancel_futures=True)

    def _request(self, prompt, options: dict, seed: int | None) -> Generation:
        """One request, retried by the client; a failure left after the retries is a `Generation` with `error`."""
        route = f"{self.base_url}/{'completions' if self.endpoint == 'completions' else 'chat/completions'}"
        extra = {} if seed is None else {"seed": seed}
        try:
            if self.endpoint == "completions":
                reply = self.client.completions.create(model=self.model, prompt=prompt, **options, **extra)
            else:
                reply = self.client.chat.completions.create(model=self.model, messages=prompt, **options, **extra)
        except openai.APIConnectionError as error:
            return Generation("", 0, False, error=f"{route}: {type(error).__name__}: {error}")
        except openai.APIStatusError as error:
            message = f"{route} answered HTTP {error.status_code}: {_excerpt(error.message)}"
            if error.status_code in FATAL_STATUSES:
                raise ServerError(message) from None
            return Generation("", 0, False, error=message)
        return self._generation(reply, route)

    def _generation(self, reply, route: str) -> Generation:
        """The `Generation` in a reply; `ServerError` when the reply is not one OpenAI completion choice."""
        try:
            (choice,) = reply.choices
            if self.endpoint == "completions":
                text = choice.text
            else:
                message = choice.message
                text = message.content or ""
                reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
                if isinstance(reasoning, str) and reasoning:
                    text = reasoning + THINK_END + text
            num_tokens = reply.usage.completion_tokens
            finish_reason = choice.finish_reason
        except (AttributeError, TypeError, ValueError):
            raise ServerError(
                f"{route} answered something that is not an OpenAI completion: {_excerpt(reply)}"
            ) from None
        if not isinstance(text, str) or isinstance(num_tokens, bool) or not isinstance(num_tokens, int):
            raise ServerError(f"{route} answered a completion without text or token count: {_excerpt(reply)}")
        return Generation(text, num_tokens, finish_reason == "length")
