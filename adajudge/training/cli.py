"""`adajudge train`: train a reward model (or a head on cached backbone features) on preference pairs.

    adajudge train --data pairs.jsonl --backbone smollm2 --head adajudge --loss adajudge \\
        --cache-features --epochs 5 --output-dir runs/adajudge
    adajudge train --config train.yaml --resume          # continue the newest checkpoint exactly
    torchrun --nproc-per-node 2 -m adajudge train ...     # DDP (accelerate sets up the process group)
    torchrun --nproc-per-node 8 -m adajudge train --fsdp ...   # FSDP2: the model sharded over the processes

Writes to `--output-dir`: `checkpoints/` (exact resume), `log.json` (settings, per-step loss and token counts,
per-epoch held-out accuracy), `curves.png` (loss and accuracy) and `model/` (an `AdaJudgeForRewardModeling` and
its tokenizer, for `from_pretrained`; with `--cache-features` its backbone is the frozen one the features came
from). Batches are packed by default (`--no-packing` pads them; docs/packing.md).
"""
import argparse
import json
import time
from pathlib import Path

from adajudge.training.settings import DEFAULT_LR, DEFAULTS, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `adajudge train`; every default is None so that a config file can supply it."""
    add = parser.add_argument
    add("--config", help="JSON or YAML file of settings (keys as the flags, '_' for '-'); flags override it")
    add("--data", nargs="+", help="preference files: JSONL/JSON {prompt, chosen, rejected[, margin, weight]} or hh-rlhf")
    add("--eval-data", nargs="+", help="held-out preference files (default: --heldout of --data)")
    add("--heldout", type=float, help=f"fraction of --data held out for accuracy (default {DEFAULTS['heldout']})")
    add("--max-pairs", type=int, help="use only the first N pairs of --data (quick runs)")
    add("--backbone", help="'smollm2' (default), 'tiny' (random test backbone) or a transformers checkpoint folder")
    add("--head", choices=["adajudge", "last", "mean", "attn"], help="reward head (default adajudge)")
    add("--head-options", help='JSON keyword options of the head, e.g. \'{"num_blocks": 2}\'')
    add("--loss", choices=["bt", "focal", "normbt", "adajudge"], help="preference loss (default adajudge)")
    add("--loss-options", help='JSON keyword options of the loss, e.g. \'{"gamma": 1.0}\'')
    add("--cache-features", action=argparse.BooleanOptionalAction, default=None,
        help="freeze the backbone, compute its hidden states once, train only the head on them")
    add("--features-dir", help="where cached features live (default OUTPUT_DIR/features)")
    add("--packing", action=argparse.BooleanOptionalAction, default=None,
        help="pack whole sequences into rows instead of padding them (default on; docs/packing.md); also for "
             "--cache-features, its extraction and the head's batches")
    add("--fsdp", action=argparse.BooleanOptionalAction, default=None,
        help="shard the model over the processes with FSDP2 (accelerate's FSDP plugin) instead of DDP")
    add("--feature-batch-size", type=int, help="pairs per backbone call while caching (default 8)")
    add("--max-length", type=int, help=f"longest sequence in tokens; the prompt is cut first (default {DEFAULTS['max_length']})")
    add("--epochs", type=int, help=f"passes over the training pairs (default {DEFAULTS['epochs']})")
    add("--lr", type=float,
        help=f"peak learning rate (default {DEFAULT_LR['cached']} with --cache-features, else {DEFAULT_LR['full']})")
    add("--batch-size", type=int, help=f"pairs per optimizer step, over all processes (default {DEFAULTS['batch_size']})")
    add("--batch-tokens", type=int,
        help="tokens per optimizer step instead of --batch-size pairs (pairs added while they fit; best with packing)")
    add("--eval-batch-size", type=int, help=f"pairs per held-out batch (default {DEFAULTS['eval_batch_size']})")
    add("--weight-decay", type=float, help="AdamW weight decay (default 0)")
    add("--warmup-ratio", type=float, help="share of steps with linear warm-up, then linear decay (default 0.1)")
    add("--max-grad-norm", type=float, help="gradient clipping norm, 0 for none (default 1.0)")
    add("--seed", type=int, help="seed of initialisation, held-out split and data order (default 0)")
    add("--save-every", type=int, help="checkpoint every N steps as well as at each epoch end (default 0: epoch ends)")
    add("--stop-after", type=int, help="stop with a checkpoint after N optimizer steps (resume later with --resume)")
    add("--output-dir", help="folder for checkpoints, log.json, curves.png and model/")
    add("--resume", action=argparse.BooleanOptionalAction, default=None, help="continue from the newest checkpoint")
    add("--progress", action=argparse.BooleanOptionalAction, default=None, help="show a progress bar (default on)")


def backbone_dir(name: str) -> Path:
    """Resolve `--backbone`: 'smollm2' (converted SmolLM2-135M-Instruct), 'tiny' (random test backbone) or a path."""
    from adajudge.backbones.smollm2 import cache_root, smollm2_dir
    from adajudge.backbones.tiny import tiny_backbone_dir

    if name == "smollm2":
        return smollm2_dir()
    if name == "tiny":
        return tiny_backbone_dir(cache_root() / "tiny-backbone")
    path = Path(name)
    if not path.is_dir():
        raise ValueError(f"backbone: expected 'smollm2', 'tiny' or a checkpoint folder, got {name!r}")
    return path


def load_pairs(paths, max_pairs=None) -> list[dict]:
    """Read preference pairs from every path, in order, keeping the first `max_pairs` when given (formats:
    `adajudge.data.loaders.load_preferences`: JSONL/JSON, optionally gzipped, including hh-rlhf transcripts)."""
    from adajudge.data.loaders import load_preferences

    pairs = [pair for path in paths for pair in load_preferences(path)]
    if not pairs:
        raise ValueError(f"data: expected preference pairs, found none in {list(map(str, paths))}")
    return pairs if max_pairs is None else pairs[:max_pairs]


def split_indices(num: int, heldout: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of `range(num)` into (train, held-out) with `round(heldout * num)` held out."""
    import torch

    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed)).tolist()
    held = round(heldout * num)
    return sorted(order[held:]), sorted(order[:held])


def cached_features(model, collator, pairs, folder, *, name: str, settings: dict):
    """Features of `pairs` in `folder`: reused when complete and computed from the same inputs, else computed by
    all processes together (each its share of the shards; an interrupted run keeps the shards it wrote)."""
    from adajudge.training.features import cache_features, features_fingerprint, load_or_none

    fingerprint = features_fingerprint(name, pairs, settings["max_length"])
    dataset = load_or_none(folder, fingerprint)
    if dataset is None:
        cache_features(
            model,
            collator,
            pairs,
            folder,
            batch_size=settings["feature_batch_size"],
            fingerprint=fingerprint,
            progress=settings["progress"],
        )
        dataset = load_or_none(folder, fingerprint)
    return dataset


def training_summary(settings: dict, history: dict, train_pairs: int, heldout_pairs: int) -> dict:
    """What the model card records of a finished run (`AdaJudgeConfig.training_summary`)."""
    from adajudge.data.loaders import hub_dataset_id

    last = history["epochs"][-1] if history["epochs"] else {}
    datasets = [hub_dataset_id(path) for path in settings["data"]]
    return {
        "loss": settings["loss"],
        "loss_options": settings["loss_options"],
        "data": [Path(path).name for path in settings["data"]],
        "datasets": sorted({name for name in datasets if name}) or None,
        "train_pairs": train_pairs,
        "epochs": settings["epochs"],
        "heldout_pairs": heldout_pairs,
        "heldout_accuracy": last.get("accuracy"),
    }


def run(args) -> int:
    """Run `adajudge train`; returns the exit status (0)."""
    import torch
    from torch.utils.data import Subset
    from transformers import AutoTokenizer

    from adajudge.data.collator import PackedPreferenceCollator, PreferenceCollator
    from adajudge.data.encoding import encode_pairs
    from adajudge.modeling import AdaJudgeForRewardModeling
    from adajudge.modeling.spans import chat_response_header
    from adajudge.training.features import collate_features, collate_packed_features
    from adajudge.training.loop import FitConfig, fit, head_forward, make_accelerator, model_forward
    from adajudge.training.losses import build_loss
    from adajudge.training.plot import plot_histories
    from adajudge.training.sharding import request_fsdp, save_pretrained

    started = time.perf_counter()
    settings = resolve(args)
    if settings["fsdp"]:
        request_fsdp()  # before the first Accelerator: accelerate keeps one state per process
    output_dir = Path(settings["output_dir"])
    config = FitConfig(**{key: settings[key] for key in (
        "epochs", "lr", "batch_size", "eval_batch_size", "weight_decay", "warmup_ratio", "max_grad_norm", "seed",
        "save_every", "stop_after", "batch_tokens")})
    with make_accelerator().main_process_first():  # a first use writes the backbone folder: once, not per process
        path = backbone_dir(settings["backbone"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    try:  # saved with the model, it lets calls without response masks (pipelines, RLHF) find the response
        response_header = chat_response_header(tokenizer)
    except ValueError as error:
        response_header = None
        print(f"adajudge train: {error}; the saved model takes every token as response when given no response mask")
    packing = settings["packing"]
    collator = (PackedPreferenceCollator if packing else PreferenceCollator)(tokenizer, max_length=settings["max_length"])
    pairs = load_pairs(settings["data"], settings["max_pairs"])
    eval_pairs = load_pairs(settings["eval_data"]) if settings["eval_data"] else None
    torch.manual_seed(config.seed)

    if settings["cache_features"]:
        model = AdaJudgeForRewardModeling.from_backbone(
            str(path), head=settings["head"], freeze_backbone=True, **settings["head_options"]
        )
        features_dir = Path(settings["features_dir"] or output_dir / "features")
        train_set = cached_features(model, collator, pairs, features_dir / "train", name=str(path), settings=settings)
        if eval_pairs is None:
            train_index, eval_index = split_indices(len(train_set), settings["heldout"], config.seed)
            train_set, eval_set = Subset(train_set, train_index), Subset(train_set, eval_index)
        else:
            eval_set = cached_features(model, collator, eval_pairs, features_dir / "eval", name=str(path), settings=settings)
        module = model.head
        collate, forward = (collate_packed_features if packing else collate_features), head_forward
    else:
        encoded, stats = encode_pairs(tokenizer, pairs, max_length=settings["max_length"])
        if eval_pairs is None:
            train_index, eval_index = split_indices(len(encoded), settings["heldout"], config.seed)
            train_set, eval_set = [encoded[i] for i in train_index], [encoded[i] for i in eval_index]
        else:
            train_set = encoded
            eval_set = encode_pairs(tokenizer, eval_pairs, max_length=settings["max_length"])[0]
        if stats.dropped:
            print(f"adajudge train: truncation dropped {stats.dropped} of {stats.pairs} pairs "
                  f"(max_length {settings['max_length']})")
        model = module = AdaJudgeForRewardModeling.from_backbone(str(path), head=settings["head"], **settings["head_options"])
        if packing:
            model.check_packing_support()  # before the model is wrapped (FSDP) and trained
        collate, forward = collator, model_forward
    loss_fn = build_loss(settings["loss"], **settings["loss_options"])

    accelerator = make_accelerator()
    is_main = accelerator.is_main_process
    log_path, plot_path = output_dir / "log.json", output_dir / "curves.png"

    def write_log(history):
        log = {
            "settings": settings,
            "backbone_dir": str(path),
            "train_pairs": len(train_set),
            "heldout_pairs": len(eval_set),
            "history": history,
            "seconds": time.perf_counter() - started,
        }
        output_dir.mkdir(parents=True, exist_ok=True)
        log_path.write_text(json.dumps(log, indent=1))
        plot_histories({settings["head"]: history}, plot_path,
                       title=f"adajudge train: {settings['head']} head, {settings['loss']} loss")

    history = fit(
        module,
        loss_fn,
        train_set,
        eval_set,
        collate=collate,
        forward=forward,
        config=config,
        output_dir=output_dir,
        resume=settings["resume"],
        progress=settings["progress"],
        description=f"{settings['head']} head",
        on_epoch_end=write_log,
    )
    if history["finished"]:
        model.config.training_summary = training_summary(settings, history, len(train_set), len(eval_set))
        model.config.response_header_ids = response_header
        save_pretrained(accelerator, model, output_dir / "model")
    if is_main:
        write_log(history)
        if history["finished"]:
            tokenizer.save_pretrained(output_dir / "model")
        last = history["epochs"][-1] if history["epochs"] else None
        accuracy = ("n/a" if last is None or last["accuracy"] is None
                    else f"{last['accuracy']:.3f} ({round(last['accuracy'] * last['pairs'])} of {last['pairs']})")
        state = "finished" if history["finished"] else f"stopped after step {history['steps'][-1]['step']} (--resume continues)"
        print(f"adajudge train: {state}; held-out accuracy {accuracy}; log {log_path}; plot {plot_path}")
    return 0
