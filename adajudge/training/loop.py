"""The training loop behind `adajudge train` and `adajudge demo`: any module that scores stacked pairs.

`fit` trains a module whose `forward(module, batch)` returns a `HeadOutput` over `[2N]` rows (chosen first):
a head on cached features (`head_forward`) or a whole `AdaJudgeForRewardModeling` (`model_forward`).

- Data order: epoch `e` visits the pairs in `randperm(n)` of a generator seeded with `seed + e`, cut into
  global batches of `batch_size` pairs. A resumed run recomputes the order and skips the steps already done.
- Distributed (torchrun / `accelerate launch`; accelerate sets up the process group, DDP averages gradients):
  `batch_size` is the global batch; process `r` of `W` takes pairs `r, r+W, ...` of each batch and scales its
  loss by `W * local / global` pairs, so the averaged gradient is that of the global batch. A final batch with
  fewer pairs than processes is dropped (never with one process).
- Checkpoints (`checkpoint.py`) at every epoch end, every `save_every` steps and at `stop_after`; `resume=True`
  continues from the newest one with the same losses as an uninterrupted run.
"""
import dataclasses
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from adajudge.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


@dataclasses.dataclass
class FitConfig:
    """Optimisation settings of one run (all JSON-able; stored in checkpoints and the JSON log).

    `batch_size`: global pairs per optimizer step. `save_every`: steps between extra checkpoints (0: epoch
    ends only). `stop_after`: stop (with a checkpoint) after this many optimizer steps in all; the schedule
    still spans every epoch, so a later `resume` continues it unchanged.
    """

    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 16
    eval_batch_size: int = 64
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    save_every: int = 0
    stop_after: int | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive float, got {self.lr!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio: expected a float in [0, 1), got {self.warmup_ratio!r}")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"stop_after: expected a positive int or None, got {self.stop_after!r}")


def make_accelerator() -> Accelerator:
    """The accelerator of a run: the process group comes from the launcher's environment (torchrun,
    `accelerate launch`); without CUDA, processes run on CPU and talk over gloo."""
    return Accelerator(cpu=not torch.cuda.is_available())


def head_forward(head, batch: dict):
    """Run a head on a cached-features batch (`collate_features`) -> `HeadOutput` over `[2N]` rows."""
    dtype = next(head.parameters()).dtype
    return head(batch["hidden"].to(dtype), batch["attention_mask"], batch["response_mask"])


def model_forward(model, batch: dict):
    """Run `AdaJudgeForRewardModeling` on a `PreferenceCollator` batch -> `HeadOutput` over `[2N]` rows."""
    outputs = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], response_mask=batch["response_mask"]
    )
    return outputs.head_output()


def epoch_batches(num_pairs: int, batch_size: int, seed: int, epoch: int, world_size: int) -> list[list[int]]:
    """The global batches (pair indices) of one epoch: a seeded permutation cut into `batch_size` chunks."""
    order = torch.randperm(num_pairs, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    batches = [order[i : i + batch_size] for i in range(0, num_pairs, batch_size)]
    return [batch for batch in batches if len(batch) >= world_size]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def evaluate(module, dataset, *, collate, forward, batch_size: int = 64, accelerator: Accelerator | None = None) -> dict:
    """Held-out pairwise accuracy (`reward(chosen) > reward(rejected)`, ties wrong) and mean reward margin.

    Under several processes each scores a strided share and the counts are summed. Returns
    `{"accuracy", "margin", "pairs"}`.
    """
    accelerator = accelerator or make_accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    was_training = module.training
    module.eval()
    local = list(range(rank, len(dataset), world))
    correct = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    margin = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    for start in range(0, len(local), batch_size):
        batch = _to(collate([dataset[i] for i in local[start : start + batch_size]]), accelerator.device)
        chosen, rejected = forward(module, batch).split_pairs()
        correct += (chosen.reward > rejected.reward).sum()
        margin += (chosen.reward - rejected.reward).double().sum()
    module.train(was_training)
    totals = accelerator.reduce(torch.stack([correct, margin]), reduction="sum").tolist()
    pairs = len(dataset)
    return {"accuracy": totals[0] / max(pairs, 1), "margin": totals[1] / max(pairs, 1), "pairs": pairs}


def fit(
    module,
    loss_fn,
    train_set,
    eval_set=None,
    *,
    collate,
    forward,
    config: FitConfig,
    output_dir,
    resume: bool = False,
    progress: bool = True,
    description: str = "training",
    on_epoch_end=None,
) -> dict:
    """Train `module` on `train_set` with `loss_fn`; returns the history.

    Args:
        module: the trainable `nn.Module` (its frozen parameters stay frozen).
        loss_fn: a loss from `adajudge.training.losses.build_loss`.
        train_set / eval_set: indexable datasets of pairs (eval may be None or empty).
        collate: list of items -> batch dict (`PreferenceCollator` or `collate_features`).
        forward: `head_forward` or `model_forward` (or any `(module, batch) -> HeadOutput [2N]`).
        config: `FitConfig`.
        output_dir: checkpoints go to `output_dir/checkpoints`.
        resume: continue from the newest checkpoint there (an error when there is none or when its settings
            differ from `config` in anything but `stop_after`).
        on_epoch_end: optional `callback(history)` on the main process after each epoch's evaluation.

    Returns:
        `{"steps": [{"step", "epoch", "loss", "lr"}], "epochs": [{"epoch", "accuracy", "margin", "seconds"}],
        "finished": bool}` (`finished` False when `stop_after` cut the run short).
    """
    accelerator = make_accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    if config.batch_size < world:
        raise ValueError(f"batch_size: expected at least one pair per process ({world}), got {config.batch_size}")
    if len(train_set) < world:
        raise ValueError(f"train_set: expected at least {world} pairs, got {len(train_set)}")
    checkpoints = Path(output_dir) / "checkpoints"
    steps_per_epoch = len(epoch_batches(len(train_set), config.batch_size, config.seed, 0, world))
    total_steps = steps_per_epoch * config.epochs

    module.to(accelerator.device)
    loss_fn.to(accelerator.device)
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("module: expected trainable parameters, got none (everything is frozen)")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    history = {"steps": [], "epochs": [], "finished": False}
    epoch, step_in_epoch, global_step = 0, 0, 0
    if resume:
        folder = latest_checkpoint(checkpoints)
        if folder is None:
            raise ValueError(f"resume: no checkpoint under {str(checkpoints)!r}")
        state = load_checkpoint(folder, module=module, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler, rank=rank)
        saved = {k: v for k, v in state["config"].items() if k != "stop_after"}
        wanted = {k: v for k, v in dataclasses.asdict(config).items() if k != "stop_after"}
        if saved != wanted or state["world_size"] != world:
            raise ValueError(
                f"resume: checkpoint settings {saved} (world size {state['world_size']}) differ from this run's "
                f"{wanted} (world size {world})"
            )
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        history = state["history"]
    model = accelerator.prepare_model(module)

    def checkpoint():
        accelerator.wait_for_everyone()
        state = {
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "global_step": global_step,
            "world_size": world,
            "config": dataclasses.asdict(config),
            "history": history,
        }
        save_checkpoint(
            checkpoints / f"step-{global_step:07d}",
            module=module,
            loss_fn=loss_fn,
            optimizer=optimizer,
            scheduler=scheduler,
            state=state,
            rank=rank,
            is_main=accelerator.is_main_process,
        )
        accelerator.wait_for_everyone()

    bar = tqdm(total=total_steps, initial=global_step, desc=description, disable=not (progress and accelerator.is_main_process))
    while epoch < config.epochs:
        started = time.perf_counter()
        batches = epoch_batches(len(train_set), config.batch_size, config.seed, epoch, world)
        model.train()
        while step_in_epoch < len(batches):
            pairs = batches[step_in_epoch]
            local = pairs[rank::world]
            batch = _to(collate([train_set[i] for i in local]), accelerator.device)
            chosen, rejected = forward(model, batch).split_pairs()
            loss = loss_fn.pair_loss(chosen, rejected, margin=batch.get("margin"), weights=batch.get("weight"))
            accelerator.backward(loss * (world * len(local) / len(pairs)))
            if config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_in_epoch += 1
            global_step += 1
            mean_loss = accelerator.reduce(loss.detach() * len(local), reduction="sum").item() / len(pairs)
            history["steps"].append(
                {"step": global_step, "epoch": epoch, "loss": mean_loss, "lr": scheduler.get_last_lr()[0]}
            )
            bar.update(1)
            bar.set_postfix(loss=f"{mean_loss:.4f}", epoch=epoch + 1)
            if config.stop_after is not None and global_step >= config.stop_after:
                checkpoint()
                bar.close()
                return history
            if config.save_every and global_step % config.save_every == 0:
                checkpoint()
        if eval_set is not None and len(eval_set):
            metrics = evaluate(
                accelerator.unwrap_model(model),
                eval_set,
                collate=collate,
                forward=forward,
                batch_size=config.eval_batch_size,
                accelerator=accelerator,
            )
        else:
            metrics = {"accuracy": None, "margin": None, "pairs": 0}
        history["epochs"].append({"epoch": epoch + 1, **metrics, "seconds": time.perf_counter() - started})
        if accelerator.is_main_process:
            accuracy = "n/a" if metrics["accuracy"] is None else f"{metrics['accuracy']:.3f}"
            bar.write(f"{description}: epoch {epoch + 1}/{config.epochs} held-out accuracy {accuracy}")
            if on_epoch_end is not None:
                on_epoch_end(history)
        epoch, step_in_epoch = epoch + 1, 0
        history["finished"] = epoch == config.epochs
        checkpoint()
    bar.close()
    history["finished"] = True
    return history
