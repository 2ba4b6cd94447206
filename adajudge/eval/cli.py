"""`adajudge eval`: score a saved reward model, or a generative pairwise judge, on benchmark files.

    adajudge eval --benchmark rm-bench --data rm-bench-chat.json --data rm-bench-safety-refuse.json \\
        --model runs/adajudge --out results.json
    adajudge eval --benchmark rewardbench --data rewardbench.jsonl --judge models/RRM-7B --prompt rrm
    adajudge eval --benchmark judgebench --data judgebench-gpt-4o.jsonl --model runs/adajudge --limit 100

Loads `--model` as an `AdaJudgeForRewardModeling` when its config says so, otherwise as a transformers
sequence classifier (one label); the tokenizer comes from `--tokenizer` (default: the model folder).
`--judge` loads a causal LM folder as an `adajudge.rrm.PairwiseJudge` (RewardBench and JudgeBench score
pairwise judges with their official protocols; RM-Bench scores reward models only). Prints the benchmark's
own breakdown as a table with a 95% interval for every accuracy, then notes: chance level, what the
columns mean, a warning when RM-Bench's headline averages fewer than its four domains, the `--limit` sample
and how many responses were truncated (one line). With `--out`, writes the result and every setting that
changes a number (max_length, batch size, dtype, device, limit, seed, model and tokenizer, the truncation
count, package versions) as JSON.
"""
import argparse
import json
import random
from pathlib import Path

from adajudge.eval import loaders
from adajudge.eval.judgebench import score_judgebench
from adajudge.eval.rewardbench import score_rewardbench
from adajudge.eval.rm_bench import score_rm_bench
from adajudge.rrm.cli import add_judge_arguments, load_judge_model, make_judge
from adajudge.tables import print_note, print_table
from adajudge.validation import check_int

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
    scored.add_argument("--model", type=Path, metavar="DIR",
                        help="saved reward model folder (an `adajudge train` output folder means its model/)")
    scored.add_argument("--judge", type=Path, metavar="DIR",
                        help="causal LM folder to run as a generative pairwise judge (rewardbench, judgebench)")
    parser.add_argument("--tokenizer", type=Path, metavar="DIR", help="tokenizer folder (default: --model)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="sequences per forward pass, or prompts per generate call with --judge (default 8)")
    parser.add_argument("--max-length", type=int, default=2048,
                        help="most tokens per sequence; a longer response keeps its last tokens (default 2048)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="score a seeded random sample of N rows (of all --data files together), not all")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the --limit sample, and with --judge the answer order (RewardBench) and the "
                             "sampling (default 0)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype (default float32)")
    parser.add_argument("--out", type=Path, metavar="JSON", help="write the results and every setting here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_judge_arguments(parser.add_argument_group("pairwise judge (with --judge)"), max_new_tokens=8192)


def sample_rows(rows: list, limit: int | None, seed: int) -> list:
    """`limit` rows drawn without replacement by `random.Random(seed)`, in their file order; all rows when
    `limit` is None or not smaller than their number."""
    if limit is None or limit >= len(rows):
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[index] for index in keep]


def resolve_model_dir(path: Path, console) -> Path:
    """`path`, or the `model/` folder inside it when `path` is an `adajudge train` output folder (said on
    `console`); FileNotFoundError naming what is there otherwise."""
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        print_note(console, f"--model {path}: an `adajudge train` output folder; scoring the model it saved, "
                            f"{path / 'model'}")
        return path / "model"
    raise FileNotFoundError(f"--model: expected a save_pretrained folder with a config.json (or an `adajudge "
                            f"train` output folder with model/config.json), got {path} (neither is there)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from adajudge.eval.adapter import reward_fn_from_model
    from adajudge.eval.report import result_notes, result_tables

    console = Console()
    load, score = BENCHMARKS[args.benchmark]
    if args.judge is not None and args.benchmark not in JUDGE_BENCHMARKS:
        raise ValueError(f"--judge: expected a benchmark that scores pairwise judges {JUDGE_BENCHMARKS}, "
                         f"got --benchmark {args.benchmark} (it scores reward models: use --model)")
    check_int("--batch-size", args.batch_size, at_least=1)
    check_int("--max-length", args.max_length, at_least=1)
    if args.limit is not None:
        check_int("--limit", args.limit, at_least=1)
    all_rows = [row for path in args.data for row in load(path)]
    rows = sample_rows(all_rows, args.limit, args.seed)
    settings = {"max_length": args.max_length, "batch_size": args.batch_size, "dtype": args.dtype,
                "device": args.device, "limit": args.limit, "seed": args.seed,
                "rows": len(rows), "rows_in_data": len(all_rows)}
    record = {"benchmark": args.benchmark, "data": [str(path) for path in args.data]}
    counts = None
    if args.judge is not None:
        model, tokenizer, _ = load_judge_model(args.judge, device=args.device, dtype=args.dtype)
        judge = make_judge(model, tokenizer, args)
        record.update(judge=str(args.judge), judge_settings={key: getattr(args, key) for key in (
            "max_new_tokens", "temperature", "top_p", "num_votes", "prompt", "verdict_rule", "seed")})
        seed = {"seed": args.seed} if args.benchmark == "rewardbench" else {}
        result = score(rows, judge_fn=judge, **seed)
        settings["device"] = str(model.device)
        scored_by = args.judge
    else:
        model_dir = resolve_model_dir(args.model, console)
        model, tokenizer = load_reward_model(model_dir, args.tokenizer, device=args.device, dtype=args.dtype)
        reward_fn = reward_fn_from_model(model, tokenizer, batch_size=args.batch_size, max_length=args.max_length,
                                         progress=not args.no_progress, warn=False)
        result = score(rows, reward_fn, batch_size=PAIRS_PER_CALL)
        counts = reward_fn.counts
        record.update(model=str(model_dir), tokenizer=str(args.tokenizer or model_dir))
        settings["device"] = str(next(model.parameters()).device)
        scored_by = model_dir
    record["settings"] = settings
    if counts is not None:
        record["truncation"] = {"responses": counts.responses, "truncated": counts.truncated,
                                "max_length": args.max_length}
    record["versions"] = versions()
    record["results"] = result
    notes = result_notes(args.benchmark, result, judge=args.judge is not None)
    if args.limit is not None and len(rows) < len(all_rows):
        notes.insert(0, f"sample: {len(rows)} of {len(all_rows)} rows, drawn at random with --seed {args.seed} "
                        f"(--limit {args.limit}); the intervals reflect the sample size")
    if counts is not None and counts.truncated:
        notes.append(f"truncation: {counts.truncated} of {counts.responses} responses are longer than --max-length "
                     f"{args.max_length} tokens on their own and were scored on their last {args.max_length} tokens "
                     "(as the official scripts truncate from the left)")
    record["notes"] = notes

    for table in result_tables(args.benchmark, result, title=f"({scored_by})"):
        print_table(console, table)
    for note in notes:
        print_note(console, note, style="yellow" if note.startswith("warning") else None)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print_note(console, f"wrote {args.out}")
    return 0


def versions() -> dict:
    """Versions of the packages whose numerics the scores depend on."""
    import torch
    import transformers

    import adajudge

    return {"adajudge": adajudge.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


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
