"""The training loop behind `adajudge train` and `adajudge demo`: any module that scores stacked pairs.

`fit` trains a module whose `forward(module, batch)` returns a `HeadOutput` over `[2N]` rows (chosen first):
a head on cached features (`head_forward`) or a whole `AdaJudgeForRewardModeling` (`model_forward`).

- Data order: epoch `e` visits the pairs in `randperm(n)` of a generator seeded with `seed + e`, cut into
  global batches of `batch_size` pairs, or, with `batch_tokens`, of at most that many tokens
  (`adajudge.data.sampler.token_budget_batches`). A resumed run recomputes the order and skips the steps
  already done.
- Batches are padded (`PreferenceCollator`, `collate_features`) or packed (`PackedPreferenceCollator`,
  `collate_packed_features`; docs/packing.md): `model_forward` / `head_forward` take either, and every step's
  history entry counts its real tokens, the tokens a padded batch of the same pairs would hold and the
  tokens the model ran (`adajudge.data.packing.token_counts`, summed over processes).
- Distributed (torchrun / `accelerate launch`; accelerate sets up the process group, DDP averages gradients,
  or FSDP2 shards the module and reduce-scatters them when requested, see `sharding.py`): `batch_size` is the
  global batch; process `r` of `W` takes pairs `r, r+W, ...` of each batch and scales its loss by
  `W * local / global` pairs, so the averaged gradient is that of the global batch. A final batch with
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

from adajudge.data.packing import is_packed, token_counts
from adajudge.data.sampler import token_budget_batches, visiting_order
from adajudge.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from adajudge.training.sharding import is_fsdp, shard_cpu_processes


@dataclasses.dataclass
class FitConfig:
    """Optimisation settings of one run (all JSON-able; stored in checkpoints and the JSON log).

    `batch_size`: global pairs per optimizer step. `batch_tokens`: instead, global tokens per optimizer step
    (pairs are added in the visiting order while they fit; `batch_size` then unused for training). `save_every`:
    steps between extra checkpoints (0: epoch ends only). `stop_after`: stop (with a checkpoint) after this many
    optimizer steps in all; the schedule still spans every epoch, so a later `resume` continues it unchanged.
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
    batch_tokens: int | None = None

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
        if self.batch_tokens is not None and (not isinstance(self.batch_tokens, int) or self.batch_tokens < 1):
            raise ValueError(f"batch_tokens: expected a positive int or None, got {self.batch_tokens!r}")


def make_accelerator() -> Accelerator:
    """The accelerator of a run: the process group comes from the launcher's environment (torchrun,
    `accelerate launch`); without CUDA, processes run on CPU and talk over gloo. FSDP when requested
    (`adajudge.training.sharding`), on CPU processes too."""
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    shard_cpu_processes(accelerator)
    return accelerator


def head_forward(head, batch: dict):
    """Run a head on a cached-features batch (`collate_features`, or packed: `collate_packed_features`) ->
    `HeadOutput` over `[2N]` sequences."""
    dtype = next(head.parameters()).dtype
    if is_packed(batch):
        return head(batch["hidden"].to(dtype), None, batch["response_mask"], cu_seqlens=batch["cu_seqlens"],
                    max_seqlen=batch["max_seqlen"])
    return head(batch["hidden"].to(dtype), batch["attention_mask"], batch["response_mask"])


def model_inputs(batch: dict) -> dict:
    """The entries of a `PreferenceCollator` or `PackedPreferenceCollator` batch that a reward model's forward
    takes (the rest, `margin` and `weight`, go to the loss)."""
    if is_packed(batch):
        keys = ("input_ids", "position_ids", "token_index", "cu_seqlens", "max_seqlen", "response_mask")
    else:
        keys = ("input_ids", "attention_mask", "response_mask")
    return {key: batch[key] for key in keys}


def model_forward(model, batch: dict):
    """Run `AdaJudgeForRewardModeling` on a padded or packed batch -> `HeadOutput` over `[2N]` sequences."""
    return model(**model_inputs(batch)).head_output()


def epoch_batches(num_pairs: int, batch_size: int, seed: int, epoch: int, world_size: int) -> list[list[int]]:
    """The global batches (pair indices) of one epoch: a seeded permutation cut into `batch_size` chunks."""
    order = visiting_order(num_pairs, seed, epoch)
    batches = [order[i : i + batch_size] for i in range(0, num_pairs, batch_size)]
    return [batch for batch in batches if len(batch) >= world_size]


def pair_tokens(dataset) -> list[int]:
    """Tokens of each pair of a training set (chosen + rejected): encoded pairs (`chosen_input_ids`, ...),
    a `FeatureDataset` or a `torch.utils.data.Subset` of one."""
    if isinstance(dataset, torch.utils.data.Subset):
        counts = pair_tokens(dataset.dataset)
        return [counts[i] for i in dataset.indices]
    if hasattr(dataset, "pair_tokens"):
        return dataset.pair_tokens()
    return [len(item["chosen_input_ids"]) + len(item["rejected_input_ids"]) for item in dataset]


def _epoch_batches(config: FitConfig, train_set, epoch: int, world_size: int, counts: list[int] | None) -> list[list[int]]:
    """The global batches of `epoch`: `batch_size` pairs each, or at most `batch_tokens` tokens (`counts`, from
    `pair_tokens`); batches with fewer pairs than processes are dropped."""
    if config.batch_tokens is None:
        return epoch_batches(len(train_set), config.batch_size, config.seed, epoch, world_size)
    batches = token_budget_batches(counts, config.batch_tokens, seed=config.seed, epoch=epoch)
    return [batch for batch in batches if len(batch) >= world_size]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def evaluate(module, dataset, *, collate, forward, batch_size: int = 64, accelerator: Accelerator | None = None) -> dict:
    """Held-out pairwise accuracy (`reward(chosen) > reward(rejected)`, ties wrong) and mean reward margin.

    Under several processes each scores a strided share and the counts are summed. Every process runs the
    same number of forwards (a sharded module gathers its parameters in each, all processes together): one
    whose share ran out scores pair 0 again and does not count it. Returns `{"accuracy", "margin", "pairs"}`.
    """
    accelerator = accelerator or make_accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    was_training = module.training
    module.eval()
    local = list(range(rank, len(dataset), world))
    correct = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    margin = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    largest_share = -(-len(dataset) // world)
    for start in range(0, largest_share, batch_size):
        chunk = local[start : start + batch_size]
        batch = _to(collate([dataset[i] for i in chunk or [0]]), accelerator.device)
        chosen, rejected = forward(module, batch).split_pairs()
        if chunk:
            correct += (chosen.reward > rejected.reward).sum()
            margin += (chosen.reward - rejected.reward).double().sum()
    module.train(was_training)
    totals = accelerator.reduce(torch.stack([correct, margin]), reduction="sum").tolist()
    pairs = len(dataset)
    return {"accuracy": totals[0] / max(pairs, 1), "margin": totals[1] / max(pairs, 1), "pairs": pairs}


@dataclasses.dataclass
class _Run:
    """What one `fit` call trains with and where it stands; the pieces of `fit` read and advance it.

    `module` is the bare module (checkpoints read and write it), `model` the one accelerate prepared (the
    step runs it; under FSDP2 the same object, sharded in place, and `params` its sharded parameters).
    Position: `epoch` (0-based), `step_in_epoch` (optimizer steps done in it) and `global_step` (in all);
    `history` is `fit`'s return value being built.
    """

    accelerator: Accelerator
    module: torch.nn.Module
    loss_fn: torch.nn.Module
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: object
    config: FitConfig
    checkpoints: Path
    total_steps: int
    pair_tokens: list[int] | None = None
    model: torch.nn.Module | None = None
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: dict = dataclasses.field(default_factory=lambda: {"steps": [], "epochs": [], "finished": False})


def _start_run(module, loss_fn, train_set, config: FitConfig, output_dir) -> _Run:
    """Check the run's sizes, move `module` / `loss_fn` to the device, build AdamW and the linear warmup schedule.

    Raises:
        ValueError: fewer pairs per global batch or in `train_set` than processes; no trainable parameter.
    """
    accelerator = make_accelerator()
    world = accelerator.num_processes
    if config.batch_size < world:
        raise ValueError(f"batch_size: expected at least one pair per process ({world}), got {config.batch_size}")
    if len(train_set) < world:
        raise ValueError(f"train_set: expected at least {world} pairs, got {len(train_set)}")
    counts = pair_tokens(train_set) if config.batch_tokens is not None else None
    total_steps = sum(len(_epoch_batches(config, train_set, epoch, world, counts)) for epoch in range(config.epochs))
    module.to(accelerator.device)
    loss_fn.to(accelerator.device)
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("module: expected trainable parameters, got none (everything is frozen)")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    checkpoints = Path(output_dir) / "checkpoints"
    return _Run(accelerator, module, loss_fn, params, optimizer, scheduler, config, checkpoints, total_steps, counts)


def _prepare(run: _Run) -> None:
    """Wrap the module for the processes: DDP (`prepare_model`), or FSDP2, which shards the module in place
    and needs the optimizer prepared with it (its parameters become the shards)."""
    if is_fsdp(run.accelerator):
        run.model, _ = run.accelerator.prepare(run.module, run.optimizer)
        run.params = [p for p in run.model.parameters() if p.requires_grad]
    else:
        run.model = run.accelerator.prepare_model(run.module)


def _resume(run: _Run) -> None:
    """Load the newest checkpoint under `run.checkpoints` into the run (weights, loss state, optimizer,
    scheduler, RNG, position, history), once the module is prepared (a sharded module loads its shards).

    Raises:
        ValueError: no checkpoint; its settings (all but `stop_after`) or world size differ from this run's.
    """
    folder = latest_checkpoint(run.checkpoints)
    if folder is None:
        raise ValueError(f"resume: no checkpoint under {str(run.checkpoints)!r}")
    world = run.accelerator.num_processes
    state = load_checkpoint(
        folder,
        module=run.module,
        loss_fn=run.loss_fn,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        rank=run.accelerator.process_index,
    )
    defaults = {field.name: field.default for field in dataclasses.fields(FitConfig)}  # fields added since it was saved
    saved = {k: v for k, v in {**defaults, **state["config"]}.items() if k != "stop_after"}
    wanted = {k: v for k, v in dataclasses.asdict(run.config).items() if k != "stop_after"}
    if saved != wanted or state["world_size"] != world:
        raise ValueError(
            f"resume: checkpoint settings {saved} (world size {state['world_size']}) differ from this run's "
            f"{wanted} (world size {world})"
        )
    run.epoch, run.step_in_epoch, run.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
    run.history = state["history"]


def _save(run: _Run) -> None:
    """Write `checkpoints/step-<global_step>` with the run's position and history; all processes call it."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    state = {
        "epoch": run.epoch,
        "step_in_epoch": run.step_in_epoch,
        "global_step": run.global_step,
        "world_size": accelerator.num_processes,
        "config": dataclasses.asdict(run.config),
        "history": run.history,
    }
    save_checkpoint(
        run.checkpoints / f"step-{run.global_step:07d}",
        module=run.module,
        loss_fn=run.loss_fn,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        state=state,
        rank=accelerator.process_index,
        is_main=accelerator.is_main_process,
    )
    accelerator.wait_for_everyone()


def _train_step(run: _Run, pairs: list[int], train_set, *, collate, forward) -> float:
    """One optimizer step on the global batch `pairs` (this process takes `pairs[rank::world]`).

    Scales the local loss so that the averaged gradient is the global batch's, clips, steps optimizer and
    scheduler, advances the position and appends `{"step", "epoch", "loss", "lr", "pairs", "tokens",
    "padded_tokens", "computed_tokens"}` to the history (token counts of the global batch: `token_counts`).
    Returns the global batch's mean loss (the same on every process).
    """
    accelerator = run.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    local = pairs[rank::world]
    batch = collate([train_set[i] for i in local])
    counts = token_counts(batch)
    batch = _to(batch, accelerator.device)
    chosen, rejected = forward(run.model, batch).split_pairs()
    loss = run.loss_fn.pair_loss(chosen, rejected, margin=batch.get("margin"), weights=batch.get("weight"))
    accelerator.backward(loss * (world * len(local) / len(pairs)))
    if run.config.max_grad_norm > 0:
        accelerator.clip_grad_norm_(run.params, run.config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step_in_epoch += 1
    run.global_step += 1
    local_sums = torch.tensor([len(local), *counts.values()], dtype=torch.float64, device=accelerator.device)
    sums = accelerator.reduce(torch.cat([(loss.detach() * len(local)).double()[None], local_sums]), reduction="sum")
    mean_loss, *totals = sums.tolist()
    mean_loss /= len(pairs)
    run.history["steps"].append({
        "step": run.global_step, "epoch": run.epoch, "loss": mean_loss, "lr": run.scheduler.get_last_lr()[0],
        **dict(zip(("pairs", *counts), map(int, totals))),
    })
    return mean_loss


def _end_epoch(run: _Run, eval_set, *, collate, forward, started: float, bar, description: str, on_epoch_end) -> None:
    """Close the current epoch: evaluate on `eval_set` (when given and non-empty), append
    `{"epoch", "accuracy", "margin", "pairs", "seconds"}` to the history, report it and call `on_epoch_end`
    on the main process, move to the next epoch and save a checkpoint there."""
    accelerator = run.accelerator
    run.loss_fn.eval()  # evaluation must not move state the loss tracks (NormBT's running distance)
    if eval_set is not None and len(eval_set):
        metrics = evaluate(
            accelerator.unwrap_model(run.model),
            eval_set,
            collate=collate,
            forward=forward,
            batch_size=run.config.eval_batch_size,
            accelerator=accelerator,
        )
    else:
        metrics = {"accuracy": None, "margin": None, "pairs": 0}
    run.history["epochs"].append({"epoch": run.epoch + 1, **metrics, "seconds": time.perf_counter() - started})
    if accelerator.is_main_process:
        accuracy = "n/a" if metrics["accuracy"] is None else f"{metrics['accuracy']:.3f}"
        bar.write(f"{description}: epoch {run.epoch + 1}/{run.config.epochs} held-out accuracy {accuracy}")
        if on_epoch_end is not None:
            on_epoch_end(run.history)
    run.epoch, run.step_in_epoch = run.epoch + 1, 0
    run.history["finished"] = run.epoch == run.config.epochs
    _save(run)


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
        collate: list of items -> batch dict (`PreferenceCollator`, `PackedPreferenceCollator`,
            `collate_features` or `collate_packed_features`).
        forward: `head_forward` or `model_forward` (or any `(module, batch) -> HeadOutput [2N]`).
        config: `FitConfig`.
        output_dir: checkpoints go to `output_dir/checkpoints`.
        resume: continue from the newest checkpoint there (an error when there is none or when its settings
            differ from `config` in anything but `stop_after`).
        on_epoch_end: optional `callback(history)` on the main process after each epoch's evaluation.

    Returns:
        `{"steps": [{"step", "epoch", "loss", "lr", "pairs", "tokens", "padded_tokens", "computed_tokens"}],
        "epochs": [{"epoch", "accuracy", "margin", "seconds"}],
        "finished": bool}` (`finished` False when `stop_after` cut the run short).
    """
    run = _start_run(module, loss_fn, train_set, config, output_dir)
    _prepare(run)
    if resume:
        _resume(run)
    world = run.accelerator.num_processes
    show = progress and run.accelerator.is_main_process
    bar = tqdm(total=run.total_steps, initial=run.global_step, desc=description, disable=not show)
    while run.epoch < config.epochs:
        started = time.perf_counter()
        batches = _epoch_batches(config, train_set, run.epoch, world, run.pair_tokens)
        run.model.train()
        run.loss_fn.train()
        while run.step_in_epoch < len(batches):
            mean_loss = _train_step(run, batches[run.step_in_epoch], train_set, collate=collate, forward=forward)
            bar.update(1)
            bar.set_postfix(loss=f"{mean_loss:.4f}", epoch=run.epoch + 1)
            if config.stop_after is not None and run.global_step >= config.stop_after:
                _save(run)
                bar.close()
                return run.history
            if config.save_every and run.global_step % config.save_every == 0:
                _save(run)
        _end_epoch(
            run,
            eval_set,
            collate=collate,
            forward=forward,
            started=started,
            bar=bar,
            description=description,
            on_epoch_end=on_epoch_end,
        )
    bar.close()
    run.history["finished"] = True
    return run.history
