"""Training checkpoints that resume exactly: weights, loss state, optimizer, scheduler, RNG states, position.

A checkpoint is a folder `checkpoints/step-XXXXXXX/` under the output directory:

- `module.safetensors`: the module's trainable parameters and buffers (frozen parameters never change, so a
  frozen backbone is not written again at every checkpoint).
- `loss.safetensors`: the loss module's state (NormBT's running mean distance), when it has one.
- `optimizer.pt`, `scheduler.pt`: their state dicts, read back with `torch.load(weights_only=True)`.

Module and optimizer states go through `torch.distributed.checkpoint.state_dict` as full state dicts (keyed
by parameter name): a module sharded by FSDP2 is gathered on save and resharded on load, so a checkpoint
looks the same whether it was written by one process, DDP or FSDP.
- `rng-rank{r}.json`: python, numpy, torch (and CUDA) generator states of each process.
- `state.json`: epoch, step within the epoch, global step, the run's settings and its history so far.

`checkpoints/latest` names the newest complete checkpoint; it is written last, so an interrupted save is never
picked up. Data order needs no state: each epoch's order is a function of (seed, epoch) (see `loop.py`).
"""
import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

LATEST = "latest"
# Full (unsharded) tensors, on the CPU of the main process under FSDP (the others get empty dicts).
FULL_STATE = StateDictOptions(full_state_dict=True, cpu_offload=True)


def rng_state() -> dict:
    """This process's generator states as JSON-able lists."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    """Restore generator states written by `rng_state`."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _trained_state(module) -> dict:
    frozen = {name for name, param in module.named_parameters() if not param.requires_grad}
    state = get_model_state_dict(module, options=FULL_STATE)
    return {k: v.detach().clone().contiguous() for k, v in state.items() if k not in frozen}


def save_checkpoint(folder, *, module, loss_fn, optimizer, scheduler, state: dict, rank: int, is_main: bool) -> Path:
    """Write one checkpoint folder. Every process calls it (each writes its RNG file, and all gather a sharded
    module's state together); the main one writes the rest and then points `latest` at it. Callers
    synchronise processes around the call."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rng-rank{rank}.json").write_text(json.dumps(rng_state()))
    module_state = _trained_state(module)
    optimizer_state = get_optimizer_state_dict(module, optimizer, options=FULL_STATE)
    if is_main:
        save_file(module_state, str(folder / "module.safetensors"))
        loss_state = loss_fn.state_dict()
        if loss_state:
            save_file({k: v.contiguous() for k, v in loss_state.items()}, str(folder / "loss.safetensors"))
        torch.save(optimizer_state, folder / "optimizer.pt")
        torch.save(scheduler.state_dict(), folder / "scheduler.pt")
        (folder / "state.json").write_text(json.dumps(state, indent=1))
        (folder.parent / LATEST).write_text(folder.name)
    return folder


def latest_checkpoint(checkpoints_dir) -> Path | None:
    """The newest complete checkpoint folder under `checkpoints_dir`, or None."""
    pointer = Path(checkpoints_dir) / LATEST
    if not pointer.is_file():
        return None
    return Path(checkpoints_dir) / pointer.read_text().strip()


def load_checkpoint(folder, *, module, loss_fn, optimizer, scheduler, rank: int) -> dict:
    """Load a checkpoint into the given objects (in place), restore this process's RNG; returns `state.json`."""
    folder = Path(folder)
    rng_path = folder / f"rng-rank{rank}.json"
    if not rng_path.is_file():
        raise ValueError(f"resume: {str(folder)!r} has no RNG state for rank {rank}; was it saved with fewer processes?")
    result = set_model_state_dict(
        module, load_file(str(folder / "module.safetensors")), options=StateDictOptions(full_state_dict=True, strict=False)
    )
    frozen = {name for name, param in module.named_parameters() if not param.requires_grad}
    missing = [key for key in result.missing_keys if key not in frozen]
    if result.unexpected_keys or missing:
        raise ValueError(
            f"resume: checkpoint {str(folder)!r} does not match the module: unexpected {result.unexpected_keys[:5]}, "
            f"missing {missing[:5]}"
        )
    if (folder / "loss.safetensors").is_file():
        loss_fn.load_state_dict(load_file(str(folder / "loss.safetensors")))
    set_optimizer_state_dict(
        module, optimizer, torch.load(folder / "optimizer.pt", weights_only=True),
        options=StateDictOptions(full_state_dict=True),
    )
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    state = json.loads((folder / "state.json").read_text())
    set_rng_state(json.loads(rng_path.read_text()))
    return state
