"""`adajudge eval`: score a saved reward model on RewardBench, RM-Bench or JudgeBench files.

    adajudge eval --benchmark rm-bench --data rm-bench-chat.json --data rm-bench-safety-refuse.json \\
        --model runs/adajudge --out results.json

Loads `--model` as an `AdaJudgeForRewardModeling` when its config says so, otherwise as a transformers
sequence classifier (one label); the tokenizer comes from `--tokenizer` (default: the model folder). Prints
the benchmark's own breakdown as a table and, with `--out`, writes the result as JSON.
"""
import argparse
import json
import sys
from pathlib import Path

from adajudge.eval import loaders
from adajudge.eval.judgebench import score_judgebench
from adajudge.eval.rewardbench import score_rewardbench
from adajudge.eval.rm_bench import score_rm_bench


def _score_judgebench_rm(rows, reward_fn, *, batch_size):
    return score_judgebench(rows, reward_fn=reward_fn, batch_size=batch_size)


BENCHMARKS = {
    "rewardbench": (loaders.load_rewardbench, score_rewardbench),
    "rm-bench": (loaders.load_rm_bench, score_rm_bench),
    "judgebench": (loaders.load_judgebench, _score_judgebench_rm),
}

# (prompt, response) pairs handed to the model's reward_fn per call: large, so that sorting by length spans
# many model batches and the progress bar advances over most of a benchmark at once.
PAIRS_PER_CALL = 4096

DTYPES = ("float32", "bfloat16", "float16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="which benchmark's rules")
    parser.add_argument("--data", required=True, action="append", type=Path, metavar="PATH",
                        help="benchmark file (JSON or JSONL, optionally .gz); repeat for several files "
                             "(RM-Bench: each file's domain is read from its name, e.g. rm-bench-chat.json)")
    parser.add_argument("--model", required=True, type=Path, metavar="DIR", help="saved reward model folder")
    parser.add_argument("--tokenizer", type=Path, metavar="DIR", help="tokenizer folder (default: --model)")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass (default 8)")
    parser.add_argument("--max-length", type=int, default=2048, help="most tokens per sequence (default 2048)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype (default float32)")
    parser.add_argument("--out", type=Path, metavar="JSON", help="write the results here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from adajudge.eval.adapter import reward_fn_from_model
    from adajudge.eval.report import result_tables

    load, score = BENCHMARKS[args.benchmark]
    try:
        rows = [row for path in args.data for row in load(path)]
    except (OSError, ValueError) as error:
        print(f"adajudge eval: error: {error}", file=sys.stderr)
        return 2
    model, tokenizer = load_reward_model(args.model, args.tokenizer, device=args.device, dtype=args.dtype)
    reward_fn = reward_fn_from_model(model, tokenizer, batch_size=args.batch_size, max_length=args.max_length,
                                     progress=not args.no_progress)
    result = score(rows, reward_fn, batch_size=PAIRS_PER_CALL)

    console = Console()
    for table in result_tables(args.benchmark, result, title=f"({args.model.name})"):
        console.print(table)
    if args.out is not None:
        record = {"benchmark": args.benchmark, "model": str(args.model), "data": [str(path) for path in args.data],
                  "results": result}
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
        raise FileNotFoundError(f"--model {model_dir}: no config.json there (expected a save_pretrained folder)")
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
