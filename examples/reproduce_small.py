"""Small-scale reproduction of the AdaJudge and NormBT comparisons on a frozen SmolLM2-135M-Instruct.

    python examples/reproduce_small.py --out runs/repro [--train-pairs N --seeds 3 --max-length L]

What it does, in order:

1. Subsamples the shared data (`../shared/data`, or `--data`), each with a seeded random draw (`--data-seed`):
   - train: the first `--train-pairs` pairs of a shuffled hh-rlhf harmless-base test file whose chosen and
     rejected responses both fit in `--max-length` tokens (responses are never cut; the prompt is cut from
     the left, `adajudge.data.encoding`);
   - RM-Bench: `--rm-bench-rows` rows of each of `rm-bench-chat.json` and `rm-bench-safety-refuse.json`
     (scored as two domains, chat and safety; avg = their mean, the official rule);
   - JudgeBench: `--judgebench-rows` rows of `judgebench-gpt-4o.jsonl` (reward-model rule, one order).
   Benchmark texts are encoded as `adajudge eval` encodes them (`adajudge.eval.adapter`): prompt cut from the
   left, and a response longer than `--max-length` keeps its last `--max-length` tokens.
2. Runs the frozen backbone once over every training pair (`adajudge.training.features.cache_features`) and
   once over every distinct benchmark (prompt, response) (`EvalFeatures` below), and keeps both on disk under
   `OUT/features` (reused by a rerun with the same backbone, data and max length).
3. Trains every head {last, mean, attn, adajudge} x loss {BT, Focal-BT, NormBT} x seed on the cached features
   with `adajudge.training.loop.fit`, then scores it with `adajudge.eval.score_rm_bench` /
   `score_judgebench` through a `reward_fn` that runs the head on the cached benchmark features.
4. Writes `OUT/results.json` (settings, subsample sizes, timings, every run) and `OUT/results.md` (mean ± std
   over seeds for each head x loss) and prints the table.

The defaults are sized for a 2-core CPU shared with other jobs (about 25 minutes, of which about half is
the backbone); see docs/reproduction.md for what this scale can and cannot show.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from adajudge.data.collator import PreferenceCollator
from adajudge.data.encoding import tokenize_prompt_response
from adajudge.data.loaders import HH_RLHF_FILE, default_data_dir, load_hh_rlhf
from adajudge.eval import loaders, score_judgebench, score_rm_bench
from adajudge.eval.adapter import encode_for_scoring
from adajudge.eval.judgebench import CATEGORIES
from adajudge.nn import build_head
from adajudge.training.features import FeatureDataset, cache_features, collate_features, features_fingerprint, load_or_none
from adajudge.training.loop import FitConfig, evaluate, fit, head_forward
from adajudge.training.losses import build_loss

HEADS = ("last", "mean", "attn", "adajudge")
LOSSES = {"bt": "BT", "focal": "Focal-BT", "normbt": "NormBT"}
RM_BENCH_FILES = ("rm-bench-chat.json", "rm-bench-safety-refuse.json")
JUDGEBENCH_FILE = "judgebench-gpt-4o.jsonl"
RM_BENCH_FIELDS = ("hard", "normal", "easy", "avg")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", required=True, help="output folder: results.json, results.md, features/")
    add("--data", default=None, help="folder with the shared data files (default ../shared/data or $ADAJUDGE_DATA)")
    add("--backbone", default="smollm2", help="'smollm2' (default), 'tiny' or a transformers checkpoint folder")
    add("--train-pairs", type=int, default=80, help="hh-rlhf training pairs (default 80)")
    add("--rm-bench-rows", type=int, default=12, help="rows drawn from each RM-Bench file (default 12; 0: all)")
    add("--judgebench-rows", type=int, default=48, help="JudgeBench rows drawn (default 48; 0: all)")
    add("--max-length", type=int, default=64, help="tokens per sequence (default 64)")
    add("--seeds", type=int, default=3, help="seeds per head x loss (default 3: seeds 0, 1, 2)")
    add("--heads", nargs="+", default=list(HEADS), choices=HEADS, help="heads to train (default all)")
    add("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES), help="losses (default all)")
    add("--epochs", type=int, default=3, help="passes over the training pairs (default 3)")
    add("--batch-size", type=int, default=8, help="pairs per optimizer step (default 8)")
    add("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    add("--adajudge-options", default='{"num_blocks": 1, "mlp_ratio": 1.0}',
        help="JSON options of the AdaJudge head (default one refinement block, SwiGLU width D, for CPU time)")
    add("--feature-batch-size", type=int, default=16, help="sequences per backbone call (default 16)")
    add("--data-seed", type=int, default=0, help="seed of the subsample draws (default 0)")
    add("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars (default on)")
    args = parser.parse_args(argv)
    for name in ("train_pairs", "max_length", "seeds", "epochs", "batch_size", "feature_batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive int, got {getattr(args, name)}")
    for name in ("rm_bench_rows", "judgebench_rows"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: expected an int >= 0, got {getattr(args, name)}")
    try:
        args.adajudge_options = json.loads(args.adajudge_options)
    except json.JSONDecodeError as error:
        parser.error(f"--adajudge-options: expected a JSON object, got {args.adajudge_options!r} ({error.msg})")
    if not isinstance(args.adajudge_options, dict):
        parser.error(f"--adajudge-options: expected a JSON object, got {args.adajudge_options!r}")
    return args


# ------------------------------------------------------------------------------------------------ data
def draw(rows: list, count: int, seed: int) -> list:
    """`count` rows drawn without replacement by a seeded generator, in file order (all rows when count is 0)."""
    if count == 0 or count >= len(rows):
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), count))
    return [rows[i] for i in keep]


def draw_train_pairs(path: Path, count: int, tokenizer, max_length: int, seed: int) -> tuple[list[dict], int]:
    """The first `count` pairs of a seeded shuffle of `path` whose two responses fit in `max_length` tokens.

    Returns `(pairs, skipped)`: `skipped` counts the pairs passed over because a response was too long.
    """
    pairs = load_hh_rlhf(path)
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    kept, skipped = [], 0
    for i in order:
        pair = pairs[i]
        fits = all(
            len(tokenize_prompt_response(tokenizer, pair["prompt"], pair[side])[1]) <= max_length
            for side in ("chosen", "rejected")
        )
        if fits:
            kept.append(pair)
            if len(kept) == count:
                return kept, skipped
        else:
            skipped += 1
    raise ValueError(f"--train-pairs: only {len(kept)} pairs of {path} fit in --max-length {max_length}, asked {count}")


def benchmark_texts(rm_rows: list[dict], jb_rows: list[dict]) -> list[tuple[str, str]]:
    """Every distinct (prompt, response) the two benchmarks will ask a reward for, in first-seen order."""
    texts = [(row["prompt"], response) for row in rm_rows for response in row["chosen"] + row["rejected"]]
    texts += [(row["question"], row[key]) for row in jb_rows for key in ("response_A", "response_B")]
    return list(dict.fromkeys(texts))


# -------------------------------------------------------------------------------------------- features
class EvalFeatures:
    """Backbone hidden states of single (prompt, response) sequences, for scoring heads without the backbone.

    On disk (a folder): `features.safetensors` with `hidden [S, D]` (real tokens only, packed),
    `response_mask [S]` (uint8) and `cu_seqlens [n+1]` (int64), and `meta.json` with the fingerprint and the
    number of sequences whose response alone exceeded `max_length` (kept as its last `max_length` tokens).
    """

    def __init__(self, texts: list[tuple[str, str]], hidden: torch.Tensor, response_mask: torch.Tensor,
                 cu_seqlens: torch.Tensor, meta: dict):
        self.index = {text: i for i, text in enumerate(texts)}
        self.hidden, self.response_mask, self.cu_seqlens, self.meta = hidden, response_mask, cu_seqlens, meta

    @classmethod
    @torch.no_grad()
    def compute(cls, model, tokenizer, texts, folder: Path, *, max_length: int, batch_size: int, fingerprint: str,
                progress: bool = True) -> EvalFeatures:
        """Run `model.backbone_hidden_states` over `texts` (longest first, right padding) and save to `folder`."""
        meta_path = folder / "meta.json"
        if meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
            tensors = load_file(str(folder / "features.safetensors"))
            return cls(texts, tensors["hidden"], tensors["response_mask"], tensors["cu_seqlens"],
                       json.loads(meta_path.read_text()))
        encoded = [encode_for_scoring(tokenizer, prompt, response, max_length) for prompt, response in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i][0]["input_ids"]))
        rows: list = [None] * len(texts)
        model.eval()
        bar = tqdm(total=len(texts), desc="caching benchmark features", unit="seq", disable=not progress)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            length = max(len(encoded[i][0]["input_ids"]) for i in index)
            input_ids = torch.full((len(index), length), tokenizer.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(index), length), dtype=torch.long)
            for row, i in enumerate(index):
                ids = encoded[i][0]["input_ids"]
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention_mask[row, :len(ids)] = 1
            hidden = model.backbone_hidden_states(input_ids, attention_mask).last_hidden_state.float()
            for row, i in enumerate(index):
                size = len(encoded[i][0]["input_ids"])
                rows[i] = (hidden[row, :size].clone(), torch.tensor(encoded[i][0]["response_mask"], dtype=torch.uint8))
            bar.update(len(index))
        bar.close()
        lengths = torch.tensor([0] + [hidden.shape[0] for hidden, _ in rows], dtype=torch.int64)
        tensors = {
            "hidden": torch.cat([hidden for hidden, _ in rows]).contiguous(),
            "response_mask": torch.cat([mask for _, mask in rows]).contiguous(),
            "cu_seqlens": lengths.cumsum(0),
        }
        meta = {"fingerprint": fingerprint, "sequences": len(texts), "tokens": int(tensors["hidden"].shape[0]),
                "responses_cut": sum(was_cut for _, was_cut in encoded), "max_length": max_length}
        folder.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(folder / "features.safetensors"))
        meta_path.write_text(json.dumps(meta, indent=2))
        return cls(texts, tensors["hidden"], tensors["response_mask"], tensors["cu_seqlens"], meta)

    def reward_fn(self, head: torch.nn.Module, batch_size: int = 32):
        """`reward_fn(prompts, responses) -> list[float]` running `head` on the cached hidden states."""

        @torch.no_grad()
        def reward_fn(prompts: list[str], responses: list[str]) -> list[float]:
            ids = [self.index[text] for text in zip(prompts, responses)]
            spans = [(int(self.cu_seqlens[i]), int(self.cu_seqlens[i + 1])) for i in ids]
            order = sorted(range(len(ids)), key=lambda k: spans[k][0] - spans[k][1])
            rewards = [0.0] * len(ids)
            was_training = head.training
            head.eval()
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                length = max(spans[k][1] - spans[k][0] for k in chunk)
                hidden = self.hidden.new_zeros(len(chunk), length, self.hidden.shape[-1])
                attention_mask = torch.zeros(len(chunk), length, dtype=torch.long)
                response_mask = torch.zeros(len(chunk), length, dtype=torch.long)
                for row, k in enumerate(chunk):
                    lo, hi = spans[k]
                    hidden[row, :hi - lo] = self.hidden[lo:hi]
                    attention_mask[row, :hi - lo] = 1
                    response_mask[row, :hi - lo] = self.response_mask[lo:hi].long()
                scores = head(hidden, attention_mask, response_mask).reward.tolist()
                for k, score in zip(chunk, scores):
                    rewards[k] = score
            head.train(was_training)
            return rewards

        return reward_fn


# ------------------------------------------------------------------------------------------------ runs
def train_and_score(head_kind: str, loss_kind: str, seed: int, train_set: FeatureDataset, features: EvalFeatures,
                    rm_rows: list[dict], jb_rows: list[dict], args, workdir: Path) -> dict:
    """Train one head on the cached training features, then score it on both benchmarks."""
    torch.manual_seed(seed)
    options = args.adajudge_options if head_kind == "adajudge" else {}
    head = build_head(head_kind, train_set.hidden_size, **options)
    loss_fn = build_loss(loss_kind)
    config = FitConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed)
    name = f"{head_kind}/{loss_kind}/seed{seed}"
    started = time.perf_counter()
    fit(head, loss_fn, train_set, None, collate=collate_features, forward=head_forward, config=config,
        output_dir=workdir / name.replace("/", "-"), progress=False, description=name)
    train_seconds = time.perf_counter() - started
    train = evaluate(head, train_set, collate=collate_features, forward=head_forward)
    reward_fn = features.reward_fn(head)
    big = 1 << 30  # hand the reward_fn every text at once; it batches by length itself
    rm = score_rm_bench(rm_rows, reward_fn, batch_size=big)
    jb = score_judgebench(jb_rows, reward_fn=reward_fn, batch_size=big)
    return {
        "head": head_kind,
        "loss": LOSSES[loss_kind],
        "seed": seed,
        "rm_bench": {field: rm[field] for field in RM_BENCH_FIELDS}
        | {"domains": {name: {field: value[field] for field in RM_BENCH_FIELDS} for name, value in rm["domains"].items()}},
        "judgebench": {key: jb[key] for key in ("overall", *CATEGORIES) if key in jb} | {"counts": jb["counts"]},
        "train_accuracy": 100 * train["accuracy"],
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
    }


COLUMNS = (
    ("RM-Bench hard", lambda run: run["rm_bench"]["hard"]),
    ("normal", lambda run: run["rm_bench"]["normal"]),
    ("easy", lambda run: run["rm_bench"]["easy"]),
    ("avg", lambda run: run["rm_bench"]["avg"]),
    ("JudgeBench", lambda run: run["judgebench"]["overall"]),
    ("train acc", lambda run: run["train_accuracy"]),
)


def markdown_table(runs: list[dict]) -> str:
    """Mean ± sample std over seeds of each column, one row per head x loss (in the order the runs came)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["head"], run["loss"]), []).append(run)
    lines = ["| head | loss | seeds | " + " | ".join(name for name, _ in COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for (head, loss), members in groups.items():
        cells = []
        for _, value in COLUMNS:
            values = [value(run) for run in members]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        lines.append(f"| {head} | {loss} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from transformers import AutoTokenizer

    from adajudge import AdaJudgeForRewardModeling
    from adajudge.training.cli import backbone_dir

    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data is not None else default_data_dir()
    backbone = backbone_dir(args.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="last", freeze_backbone=True)

    train_pairs, skipped = draw_train_pairs(data / HH_RLHF_FILE, args.train_pairs, tokenizer, args.max_length,
                                            args.data_seed)
    rm_rows = [row for name in RM_BENCH_FILES
               for row in draw(loaders.load_rm_bench(data / name), args.rm_bench_rows, args.data_seed)]
    jb_rows = draw(loaders.load_judgebench(data / JUDGEBENCH_FILE), args.judgebench_rows, args.data_seed)
    texts = benchmark_texts(rm_rows, jb_rows)

    backbone_started = time.perf_counter()
    train_dir = out / "features" / "train"
    train_fingerprint = features_fingerprint(str(backbone), train_pairs, args.max_length)
    train_set = load_or_none(train_dir, train_fingerprint)
    if train_set is None:
        collator = PreferenceCollator(tokenizer, max_length=args.max_length, padding_side="right")
        cache_features(model, collator, train_pairs, train_dir, batch_size=max(1, args.feature_batch_size // 2),
                       fingerprint=train_fingerprint, progress=args.progress)
        train_set = FeatureDataset(train_dir)
    eval_fingerprint = features_fingerprint(str(backbone), [{"text": text} for text in texts], args.max_length)
    features = EvalFeatures.compute(model, tokenizer, texts, out / "features" / "benchmarks",
                                    max_length=args.max_length, batch_size=args.feature_batch_size,
                                    fingerprint=eval_fingerprint, progress=args.progress)
    backbone_seconds = time.perf_counter() - backbone_started
    del model

    grid = [(head, loss, seed) for head in args.heads for loss in args.losses for seed in range(args.seeds)]
    runs = []
    heads_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reproduce-small-") as workdir:
        for head, loss, seed in tqdm(grid, desc="head x loss x seed", unit="run", disable=not args.progress):
            run = train_and_score(head, loss, seed, train_set, features, rm_rows, jb_rows, args, Path(workdir))
            runs.append(run)
            tqdm.write(f"{head:8s} {run['loss']:8s} seed {seed}: RM-Bench {run['rm_bench']['avg']:.1f} "
                       f"JudgeBench {run['judgebench']['overall']:.1f} train acc {run['train_accuracy']:.1f} "
                       f"({run['total_seconds']:.0f} s)")
    heads_seconds = time.perf_counter() - heads_started

    table = markdown_table(runs)
    settings = {key: value for key, value in vars(args).items() if key not in ("out", "progress")}
    results = {
        "command": " ".join(["python", "examples/reproduce_small.py", *(sys.argv[1:] if argv is None else argv)]),
        "settings": settings | {"backbone_dir": str(backbone), "data": str(data)},
        "subsample": {
            "train_pairs": len(train_set),
            "train_pairs_skipped_too_long": skipped,
            "train_prompts_cut": train_set.meta["truncated"],
            "rm_bench_rows": {domain: sum(row["domain"] == domain for row in rm_rows)
                              for domain in dict.fromkeys(row["domain"] for row in rm_rows)},
            "judgebench_rows": len(jb_rows),
            "judgebench_rows_per_category": runs[0]["judgebench"]["counts"] if runs else {},
            "benchmark_sequences": features.meta["sequences"],
            "benchmark_responses_cut_to_max_length": features.meta["responses_cut"],
        },
        "timing_seconds": {"backbone_features": backbone_seconds, "heads": heads_seconds,
                           "total": time.perf_counter() - started},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table)
    print(table)
    print(f"wall time {results['timing_seconds']['total']:.0f} s (backbone features {backbone_seconds:.0f} s, "
          f"heads {heads_seconds:.0f} s); results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
