"""Padded vs packed batches on real preference data: padding fractions, training steps, feature extraction.

    python -m bench.packing --out bench-results                    # SmolLM2-135M on hh-rlhf, 16 pairs/step
    python -m bench.packing --pairs-per-step 8 --steps 3 --out bench-results
    python -m bench.packing --backbone tiny --data pairs.jsonl --steps 2 --out /tmp/p   # the harness's own test

What runs, in one process (docs/packing.md):

1. **Padding fractions** of the whole data set at `--fractions-at` pairs per step (default 8, 16, 32), pairs in
   the seeded order training visits them (`adajudge.data.sampler.visiting_order`): `1 − real / (2k × longest)`
   for padded batches (`PreferenceCollator`), and `1 − real / (rows × row length)` for packed ones
   (`PackedPreferenceCollator`, rows of `--max-length` tokens: the rows' tails).
2. **Training steps** at `--pairs-per-step`: the same `AdaJudgeForRewardModeling` (backbone + head) twice, from the
   same weights, each with its own AdamW (as `adajudge train`: lr 2e-5, gradient clipping 1.0, the loss of
   `--loss`), fed the same pairs, padded and packed. Step `i` runs both on batch `i`, the order alternating
   (padded first on even steps), so load from other processes hits both alike; `--warmup` steps are not timed.
   A step is forward + backward + clipping + optimizer step (collation excluded: it is the same host work in
   both). Reported: the median step time, tokens/s (real tokens / step time), and the first step's losses of
   both (equal up to rounding: the same model, the same pairs). Peak memory: tensor bytes held at once during
   one further step of each on the first timed batch (`bench.memory`: the profiler's allocation events on
   CPU, the allocator's counters on CUDA).
3. **Feature extraction**: the backbone's no-grad forward over the first `--extraction-pairs` pairs in
   `cache_features`' order (longest first, `--extraction-batch` pairs per call), padded vs packed, interleaved per
   batch; its speed-up is compared with the padded/computed token ratio.

`--gradient-checkpointing` (default on) recomputes each decoder layer in the backward, for both: a padded
16-pair step at 1024 tokens holds ~16k token positions, whose activations would not fit a 24 GiB machine.
Writes `packing.json` and `packing.md` under `--out`, and prints the tables. CPU timings from a shared machine
say so: the load average at the start and the end is recorded.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from adajudge.data.collator import PackedPreferenceCollator, PreferenceCollator
from adajudge.data.encoding import encode_pairs
from adajudge.data.loaders import HH_RLHF_FILE, default_data_dir, load_preferences
from adajudge.data.packing import token_counts
from adajudge.data.sampler import visiting_order
from bench import environment
from bench.memory import peak_cpu, peak_cuda

MODES = ("padded", "packed")


def padding_fractions(encoded: list[dict], collators: dict, pairs_per_step: int, seed: int) -> dict:
    """Token counts of one epoch of `encoded` in batches of `pairs_per_step` pairs (seeded visiting order),
    and the share of padding in each mode."""
    order = visiting_order(len(encoded), seed, 0)
    totals = {"tokens": 0, "padded_tokens": 0, "packed_tokens": 0}
    for start in range(0, len(order), pairs_per_step):
        items = [encoded[i] for i in order[start : start + pairs_per_step]]
        padded = token_counts(collators["padded"](items))
        totals["tokens"] += padded["tokens"]
        totals["padded_tokens"] += padded["padded_tokens"]
        totals["packed_tokens"] += token_counts(collators["packed"](items))["computed_tokens"]
    return {
        "pairs_per_step": pairs_per_step,
        **totals,
        "padding_fraction": 1 - totals["tokens"] / totals["padded_tokens"],
        "packed_padding_fraction": 1 - totals["tokens"] / totals["packed_tokens"],
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_fn(model, optimizer, loss_fn, batch: dict):
    """One training step of `model` on `batch` (as `adajudge.training.loop`), returning the loss."""
    from adajudge.training.loop import model_forward

    def step() -> float:
        chosen, rejected = model_forward(model, batch).split_pairs()
        loss = loss_fn.pair_loss(chosen, rejected)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def _peak(fn, device: torch.device) -> int:
    return peak_cuda(fn, device) if device.type == "cuda" else peak_cpu(fn)


def training_steps(model, batches: dict[str, list[dict]], *, loss: str, lr: float, warmup: int, device) -> dict:
    """Interleaved training steps of two copies of `model` on the padded and packed forms of the same batches."""
    from adajudge.training.losses import build_loss

    models = {"padded": model, "packed": copy.deepcopy(model)}
    optimizers = {m: torch.optim.AdamW([p for p in models[m].parameters() if p.requires_grad], lr=lr) for m in MODES}
    losses = {m: build_loss(loss).to(device) for m in MODES}
    seconds = {m: [] for m in MODES}
    first_loss = {}
    steps = len(batches["padded"])
    for index in range(steps):
        order = MODES if index % 2 == 0 else MODES[::-1]
        for mode in order:
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batches[mode][index].items()}
            step = _step_fn(models[mode], optimizers[mode], losses[mode], batch)
            _synchronize(device)
            started = time.perf_counter()
            value = step()
            _synchronize(device)
            if index == 0:
                first_loss[mode] = value
            if index >= warmup:
                seconds[mode].append(time.perf_counter() - started)
            print(f"  step {index + 1}/{steps} {mode}: {time.perf_counter() - started:.2f} s, loss {value:.6f}", flush=True)
    memory = {}
    for mode in MODES:
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batches[mode][warmup].items()}
        memory[mode] = _peak(_step_fn(models[mode], optimizers[mode], losses[mode], batch), device)
    result = {"first_step_loss": first_loss, "first_step_loss_difference": abs(first_loss["padded"] - first_loss["packed"])}
    for mode in MODES:
        counts = [token_counts(batch) for batch in batches[mode][warmup:]]
        median_s = statistics.median(seconds[mode])
        tokens = statistics.median(c["tokens"] for c in counts)
        result[mode] = {
            "median_step_s": median_s,
            "step_s": seconds[mode],
            "tokens_per_s": statistics.median(c["tokens"] / s for c, s in zip(counts, seconds[mode])),
            "median_tokens": tokens,
            "median_computed_tokens": statistics.median(c["computed_tokens"] for c in counts),
            "peak_memory_bytes": memory[mode],
        }
    result["speedup"] = result["padded"]["median_step_s"] / result["packed"]["median_step_s"]
    result["memory_ratio"] = result["packed"]["peak_memory_bytes"] / max(1, result["padded"]["peak_memory_bytes"])
    return result


@torch.no_grad()
def feature_extraction(model, encoded: list[dict], collators: dict, *, batch_size: int, device) -> dict:
    """No-grad backbone forwards over `encoded` in `cache_features`' batching, padded vs packed, interleaved."""
    from adajudge.training.features import _batch_sequences

    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: max(len(encoded[i]["chosen_input_ids"]),
                                                        len(encoded[i]["rejected_input_ids"])), reverse=True)
    seconds = {m: 0.0 for m in MODES}
    counts = {m: {"tokens": 0, "padded_tokens": 0, "computed_tokens": 0} for m in MODES}
    for number, start in enumerate(range(0, len(order), batch_size)):
        items = [encoded[i] for i in order[start : start + batch_size]]
        for mode in (MODES if number % 2 == 0 else MODES[::-1]):
            batch = collators[mode](items)
            for key, value in token_counts(batch).items():
                counts[mode][key] += value
            _synchronize(device)
            started = time.perf_counter()
            _batch_sequences(model, batch, device)
            _synchronize(device)
            seconds[mode] += time.perf_counter() - started
    model.train()
    return {
        "pairs": len(encoded),
        "batch_pairs": batch_size,
        **{mode: {"seconds": seconds[mode], **counts[mode]} for mode in MODES},
        "speedup": seconds["padded"] / seconds["packed"],
        "token_ratio": counts["padded"]["computed_tokens"] / counts["packed"]["computed_tokens"],
    }


def markdown(result: dict) -> str:
    meta = result["meta"]
    load = f"load average {meta['load_average_start'][0]:.2f} at the start, {meta['load_average_end'][0]:.2f} at the end"
    lines = [
        f"_`{meta['command']}` on {meta['machine_description']} ({meta['device']}); {load}_",
        "",
        f"Data: {meta['data']}, {meta['pairs']} pairs kept (max_length {meta['max_length']}); sequence length "
        f"median {meta['sequence_length']['median']}, 90th percentile {meta['sequence_length']['p90']}, "
        f"longest {meta['sequence_length']['max']}.",
        "",
        "| pairs per step | real tokens | padded tokens | padding (padded) | packed row tokens | padding (packed) |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["padding"]:
        lines.append(
            f"| {row['pairs_per_step']} | {row['tokens']} | {row['padded_tokens']} | {100 * row['padding_fraction']:.1f} % "
            f"| {row['packed_tokens']} | {100 * row['packed_padding_fraction']:.1f} % |"
        )
    steps = result["training"]
    lines += [
        "",
        f"Training steps, {meta['pairs_per_step']} pairs per step, `{meta['backbone']}` + `{meta['head']}` head, "
        f"{meta['loss']} loss, gradient checkpointing {'on' if meta['gradient_checkpointing'] else 'off'}, "
        f"{len(steps['padded']['step_s'])} timed steps after {meta['warmup']} warm-up (interleaved):",
        "",
        "| batches | median step s | real tokens / s | median real tokens | median computed tokens | peak memory MiB |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        row = steps[mode]
        lines.append(
            f"| {mode} | {row['median_step_s']:.2f} | {row['tokens_per_s']:.0f} | {row['median_tokens']:.0f} "
            f"| {row['median_computed_tokens']:.0f} | {row['peak_memory_bytes'] / 2**20:.0f} |"
        )
    lines += [
        "",
        f"Packed vs padded: **{steps['speedup']:.2f}× faster per step** (median), peak memory "
        f"{steps['memory_ratio']:.2f}×; first-step loss padded {steps['first_step_loss']['padded']:.6f}, packed "
        f"{steps['first_step_loss']['packed']:.6f} (difference {steps['first_step_loss_difference']:.1e}).",
    ]
    extraction = result.get("extraction")
    if extraction:
        lines += [
            "",
            f"Feature extraction, {extraction['pairs']} pairs, {extraction['batch_pairs']} per backbone call, longest "
            f"first: padded {extraction['padded']['seconds']:.1f} s ({extraction['padded']['computed_tokens']} token "
            f"positions), packed {extraction['packed']['seconds']:.1f} s ({extraction['packed']['computed_tokens']}): "
            f"**{extraction['speedup']:.2f}× faster**, against a token ratio of {extraction['token_ratio']:.2f}.",
        ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.packing", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help=f"preference file (default: the shared {HH_RLHF_FILE})")
    parser.add_argument("--backbone", default="smollm2", help="'smollm2' (default), 'tiny' or a checkpoint folder")
    parser.add_argument("--head", default="adajudge", choices=("adajudge", "last", "mean", "attn"))
    parser.add_argument("--loss", default="adajudge", choices=("bt", "focal", "normbt", "adajudge"))
    parser.add_argument("--max-length", type=int, default=1024, help="longest sequence; also the packed row length")
    parser.add_argument("--pairs-per-step", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per mode (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first (default 1)")
    parser.add_argument("--fractions-at", type=int, nargs="+", default=[8, 16, 32], help="pairs per step")
    parser.add_argument("--extraction-pairs", type=int, default=64, help="pairs for feature extraction, 0 to skip")
    parser.add_argument("--extraction-batch", type=int, default=8, help="pairs per backbone call (cache_features' default)")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU intra-op threads, 0 for torch's default (default 1, as python -m bench: on a shared "
                             "machine an OpenMP barrier waiting on a descheduled thread costs milliseconds per op, "
                             "which a step of fewer tokens feels more)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from transformers import AutoTokenizer

    from adajudge.modeling import AdaJudgeForRewardModeling
    from adajudge.training.cli import backbone_dir

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: expected a visible CUDA device, got none")
    if args.threads < 0:
        raise SystemExit(f"--threads: expected an integer >= 0, got {args.threads}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    meta = {
        "command": " ".join(["python -m bench.packing", *argv]),
        "device": device.type,
        "machine_description": environment.description(device),
        "machine": environment.machine(device),
        "versions": environment.versions(),
        "git": environment.git_state(),
        "load_average_start": environment.machine(device)["load_average"],
    }
    data = args.data or default_data_dir() / HH_RLHF_FILE
    path = backbone_dir(args.backbone)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoded, stats = encode_pairs(tokenizer, load_preferences(data), max_length=args.max_length)
    lengths = sorted(len(e[f"{side}_input_ids"]) for e in encoded for side in ("chosen", "rejected"))
    collators = {
        "padded": PreferenceCollator(tokenizer, max_length=args.max_length),
        "packed": PackedPreferenceCollator(tokenizer, max_length=args.max_length),
    }
    meta.update({
        "data": Path(data).name, "pairs": len(encoded), "dropped": stats.dropped, "max_length": args.max_length,
        "sequence_length": {"median": statistics.median(lengths), "p90": lengths[int(0.9 * (len(lengths) - 1))],
                            "max": lengths[-1]},
        "pairs_per_step": args.pairs_per_step, "backbone": args.backbone, "head": args.head, "loss": args.loss,
        "warmup": args.warmup, "gradient_checkpointing": args.gradient_checkpointing,
        "torch_threads": torch.get_num_threads(),
    })
    result = {"meta": meta, "padding": [padding_fractions(encoded, collators, k, args.seed) for k in args.fractions_at]}
    print(f"padding fractions: {[round(row['padding_fraction'], 3) for row in result['padding']]}", flush=True)

    torch.manual_seed(args.seed)
    model = AdaJudgeForRewardModeling.from_backbone(str(path), head=args.head).to(device).train()
    model.check_packing_support()
    if args.gradient_checkpointing:  # transformers 5.25 renamed it; 5.17 has the old name only
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    order = visiting_order(len(encoded), args.seed, 0)
    count = args.warmup + args.steps
    steps = [[encoded[i] for i in order[n * args.pairs_per_step : (n + 1) * args.pairs_per_step]] for n in range(count)]
    batches = {mode: [collators[mode](items) for items in steps] for mode in MODES}
    result["training"] = training_steps(model, batches, loss=args.loss, lr=args.lr, warmup=args.warmup, device=device)
    if args.extraction_pairs:
        result["extraction"] = feature_extraction(
            model, encoded[: args.extraction_pairs], collators, batch_size=args.extraction_batch, device=device
        )
    meta["load_average_end"] = environment.machine(device)["load_average"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "packing.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (args.out / "packing.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
