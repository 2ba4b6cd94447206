"""`adajudge eval`: score a saved reward model, or a generative pairwise judge, on benchmark files.

    adajudge eval --benchmark rm-bench --data rm-bench-chat.json --data rm-bench-safety-refuse.json \\
        --model runs/adajudge --out results.json
    adajudge eval --benchmark rewardbench --data rewardbench.jsonl --judge models/RRM-7B --prompt rrm

Loads `--model` as an `AdaJudgeForRewardModeling` when its config says so, otherwise as a transformers
sequence classifier (one label); the tokenizer comes from `--tokenizer` (default: the model folder).
`--judge` loads a causal LM folder as an `adajudge.rrm.PairwiseJudge` (RewardBench and JudgeBench score
pairwise judges with their official protocols; RM-Bench scores reward models only). Prints the benchmark's
own breakdown as a table and, with `--out`, writes the result as JSON.
"""
import argparse
import json
import sys
from pathlib import Path

from adajudge.eval import loaders
from adajudge.eval.judgebench import score_judgebench
from adajudge.eval.rewardbench import score_rewardbench
from adajudge.eval.rm_bench import score_rm_bench
from adajudge.rrm.cli import add_judge_arguments, load_judge_model, make_judge

BENCHMARKS = {
    "rewardbench": (loaders.load_rewardbench, score_rewardbench),
    "rm-bench": (loaders.load_rm_bench, score_rm_bench),
    "judgebench": (loaders.load_judgebench, score_judgebench),
}

JUDGE_BENCHMARKS = ("rewardbench", "judgebench")

# (prompt, response) pairs handed to the model's reward_fn per call: large, so that sorting by length spans
# many model batches and the progress bar advances over most of a benchmark at once.
PAIRS_PER_CALL = 4096

DTYPES = ("float32", "bfloat16", "float16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="which benchmark's rules")
    parser.add_argument("--data", required=True, action="append", type=Path, metavar="PATH",
                        help="benchmark file (JSON or JSONL, optionally .gz); repeat for several files "
                             "(RM-Bench: each file's domain is read from its name, e.g. rm-bench-chat.json)")
    scored = parser.add_mutually_exclusive_group(required=True)
    scored.add_argument("--model", type=Path, metavar="DIR", help="saved reward model folder")
    scored.add_argument("--judge", type=Path, metavar="DIR",
                        help="causal LM folder to run as a generative pairwise judge (rewardbench, judgebench)")
    parser.add_argument("--tokenizer", type=Path, metavar="DIR", help="tokenizer folder (default: --model)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="sequences per forward pass, or prompts per generate call with --judge (default 8)")
    parser.add_argument("--max-length", type=int, default=2048, help="most tokens per sequence (default 2048)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype (default float32)")
    parser.add_argument("--out", type=Path, metavar="JSON", help="write the results here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge = parser.add_argument_group("pairwise judge (with --judge)")
    add_judge_arguments(judge, max_new_tokens=8192)
    judge.add_argument("--seed", type=int, default=0, help="seeds the answer order (RewardBench) and sampling (default 0)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from adajudge.eval.adapter import reward_fn_from_model
    from adajudge.eval.report import result_tables

    load, score = BENCHMARKS[args.benchmark]
    try:
        if args.judge is not None and args.benchmark not in JUDGE_BENCHMARKS:
            raise ValueError(f"--judge: expected a benchmark that scores pairwise judges {JUDGE_BENCHMARKS}, "
                             f"got --benchmark {args.benchmark} (it scores reward models: use --model)")
        rows = [row for path in args.data for row in load(path)]
    except (OSError, ValueError) as error:
        print(f"adajudge eval: error: {error}", file=sys.stderr)
        return 2
    if args.judge is not None:
        try:
            model, tokenizer, _ = load_judge_model(args.judge, device=args.device, dtype=args.dtype)
            judge = make_judge(model, tokenizer, args)
        except (OSError, ValueError, TypeError) as error:
            print(f"adajudge eval: error: {error}", file=sys.stderr)
            return 2
        seed = {"seed": args.seed} if args.benchmark == "rewardbench" else {}
        result = score(rows, judge_fn=judge, **seed)
        scored_by = args.judge
    else:
        model, tokenizer = load_reward_model(args.model, args.tokenizer, device=args.device, dtype=args.dtype)
        reward_fn = reward_fn_from_model(model, tokenizer, batch_size=args.batch_size, max_length=args.max_length,
                                         progress=not args.no_progress)
        result = score(rows, reward_fn, batch_size=PAIRS_PER_CALL)
        scored_by = args.model

    console = Console()
    for table in result_tables(args.benchmark, result, title=f"({scored_by.name})"):
        console.print(table)
    if args.out is not None:
        record = {"benchmark": args.benchmark, "model": str(scored_by), "data": [str(path) for path in args.data],
                  "results": result}
        if args.judge is not None:
            record["judge_settings"] = {key: getattr(args, key) for key in (
                "max_new_tokens", "temperature", "top_p", "num_votes", "prompt", "verdict_rule", "seed")}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        console.print(f"wrote {args.out}")
    return 0


def load_reward_model(model_dir: Path, tokenizer_dir: Path | None = None, *, device: str | None = None,
                      dtype: str = "float32"):
    """`(model, tokenizer)` from a saved folder, the model in eval mode on `device`.

    A folder saved from `AdaJudgeForRewardModeling` (its `config.json` lists that class under
    `architectures`) loads with `AdaJudgeForRewardModeling.from_pretrained`; anything else with
    `transformers.AutoModelForSequenceClassification`, which must have one label. A sequence classifier
    without `config.pad_token_id` gets the tokenizer's, which it needs to find the last token of padded rows.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"--model: expected a save_pretrained folder with a config.json, got {model_dir} "
                                "(no config.json there)")
    is_adajudge = "AdaJudgeForRewardModeling" in (json.loads(config_path.read_text()).get("architectures") or [])
    torch_dtype = getattr(torch, dtype)
    if is_adajudge:
        from adajudge import AdaJudgeForRewardModeling

        model = AdaJudgeForRewardModeling.from_pretrained(model_dir, dtype=torch_dtype)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or model_dir)
    if not is_adajudge and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer
