"""Throughput of the RRM judge (comparisons per minute): in-process vs over a local OpenAI-compatible server.

    python examples/judge_throughput.py --comparisons 16 --max-new-tokens 32 --concurrency 1 8

The judge is SmolLM2-135M-Instruct (`adajudge.backbones.smollm2`) with the default prompt, greedy decoding
and `--max-new-tokens` per vote. The same comparisons are judged by `PairwiseJudge` (transformers `generate`,
`--batch-size` prompts per call) and by `ServerJudge` against `transformers serve` started here on 127.0.0.1
(or `--server URL`), once per `--concurrency`. Add `--continuous-batching` to start the server with it.
Each engine judges one comparison untimed first (warm-up). Prints one row per engine and writes them as
JSON with `--out`.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def comparisons(count: int) -> list[tuple[str, str, str]]:
    """`count` (question, answer_1, answer_2) triples of arithmetic questions, one right answer each."""
    items = []
    for i in range(count):
        a, b = 3 + 7 * i, 11 + 5 * i
        right, wrong = f"{a} + {b} = {a + b}.", f"{a} + {b} = {a + b + 1 + i % 3}."
        items.append((f"What is {a} + {b}?", right, wrong) if i % 2 else (f"What is {a} + {b}?", wrong, right))
    return items


def timed(judge, items) -> dict:
    """Judge `items` once, after one untimed comparison (the first request warms the engine up); comparisons
    per minute and what the votes were."""
    judge.judge_batch(items[:1])
    started = time.perf_counter()
    judgements = judge.judge_batch(items)
    seconds = time.perf_counter() - started
    votes = [vote for judgement in judgements for vote in judgement.votes]
    return {"comparisons": len(items), "seconds": round(seconds, 2),
            "comparisons_per_minute": round(60 * len(items) / seconds, 2),
            "mean_new_tokens": sum(vote.num_tokens for vote in votes) / len(votes),
            "failed_votes": sum(vote.error is not None for vote in votes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8, help="in-process prompts per generate call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--server", help="an already running server's API root (default: start transformers serve)")
    parser.add_argument("--continuous-batching", action="store_true", help="start transformers serve with it")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adajudge.backbones.smollm2 import smollm2_dir
    from adajudge.rrm import OpenAIEngine, PairwiseJudge, ServerJudge
    from adajudge.rrm.local_server import transformers_server

    folder = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    items = comparisons(args.comparisons)
    options = {"temperature": 0, "max_new_tokens": args.max_new_tokens, "seed": 0}
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    rows = [{"engine": f"in-process (batch {args.batch_size})",
             **timed(PairwiseJudge(model, tokenizer, batch_size=args.batch_size, **options), items)}]
    del model

    def over(base_url: str, label: str) -> None:
        for concurrency in args.concurrency:
            engine = OpenAIEngine(base_url, concurrency=concurrency, timeout=600)
            rows.append({"engine": f"{label}, concurrency {concurrency}",
                         **timed(ServerJudge(engine, tokenizer, **options), items)})

    if args.server:
        over(args.server, args.server)
    else:
        extra = ("--continuous-batching",) if args.continuous_batching else ()
        label = "transformers serve" + (" --continuous-batching" if extra else "")
        with tempfile.TemporaryDirectory() as logs, \
                transformers_server(folder, log_path=Path(logs) / "serve.log", extra_args=extra) as server:
            over(server.base_url, label)

    width = max(len(row["engine"]) for row in rows)
    print(f"{'engine':<{width}}  comparisons/min  seconds  mean new tokens  failed votes", file=sys.stderr)
    for row in rows:
        print(f"{row['engine']:<{width}}  {row['comparisons_per_minute']:>15.1f}  {row['seconds']:>7.1f}  "
              f"{row['mean_new_tokens']:>15.1f}  {row['failed_votes']:>12}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
