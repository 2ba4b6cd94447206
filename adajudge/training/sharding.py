"""Sharded training (FSDP2) through accelerate's FSDP plugin, for `adajudge train --fsdp` and the TRL trainer.

One configuration serves both trainers: the environment variables that `accelerate launch --use_fsdp` sets
(`FSDP_ENVIRONMENT`). `request_fsdp()` sets them, and every `Accelerator()` built afterwards (the training
loop's, `AdaJudgeRewardTrainer`'s) reads the same plugin from them; `accelerate launch` with an FSDP2 config
file has the same effect. The configuration: FSDP2 (`torch.distributed.fsdp.fully_shard`); each decoder
layer of the backbone (the model's `_no_split_modules`) is its own shard group, the rest (embeddings, final
norm, the reward head) the root group; parameters are gathered for each forward and resharded after it,
gradients reduce-scattered (averaged over processes, as DDP's); saving gathers a full state dict.

CPU processes: accelerate 1.15 turns the plugin on only for accelerator devices. `AcceleratorState.__init__`
(accelerate/src/accelerate/state.py, v1.15.0) sets `DistributedType.FSDP` in its GPU/XPU/NPU/... branch, and
`DistributedType.MULTI_CPU` processes silently train with DDP instead. torch's FSDP2 itself runs on CPU over
gloo, so `shard_cpu_processes` selects FSDP for CPU processes explicitly *(ours)*: the same accelerate FSDP2
code then runs, and is tested, on CPU.
"""
import os

from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

FSDP_ENVIRONMENT = {
    "ACCELERATE_USE_FSDP": "true",
    "FSDP_VERSION": "2",
    "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_RESHARD_AFTER_FORWARD": "true",
    "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
}


def request_fsdp() -> None:
    """Ask every `Accelerator` built from now on in this process for FSDP2 (`FSDP_ENVIRONMENT`); call it
    before the first one is built (accelerate keeps one state per process)."""
    os.environ.update(FSDP_ENVIRONMENT)


def fsdp_requested() -> bool:
    """Whether this process was asked for FSDP (`request_fsdp`, or `accelerate launch` with FSDP)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def shard_cpu_processes(accelerator: Accelerator) -> bool:
    """Select FSDP for CPU processes that asked for it and that accelerate left on DDP (module docstring).

    Returns True when it changed the (process-wide) accelerator state, False when there was nothing to do:
    FSDP not requested, one process, or accelerate already chose FSDP (GPUs).
    """
    if not fsdp_requested() or accelerator.distributed_type != DistributedType.MULTI_CPU:
        return False
    state = accelerator.state
    state.distributed_type = DistributedType.FSDP
    if getattr(state, "fsdp_plugin", None) is None:
        state.fsdp_plugin = FullyShardedDataParallelPlugin()
    if state.mixed_precision != "no":  # as accelerate does for the plugins it turns on
        state.fsdp_plugin.set_mixed_precision(state.mixed_precision)
    # Every later AcceleratorState() copies the process state over its own, as AcceleratorState.__init__ ends.
    PartialState().distributed_type = DistributedType.FSDP
    return True


def is_fsdp(accelerator: Accelerator) -> bool:
    """Whether `accelerator` shards models with FSDP."""
    return accelerator.distributed_type == DistributedType.FSDP


def save_pretrained(accelerator: Accelerator, model, folder) -> None:
    """`model.save_pretrained(folder)` written by the main process, with the full weights: every process
    calls it, since a sharded model's state dict is gathered from all of them first."""
    state = accelerator.get_state_dict(model) if is_fsdp(accelerator) else None
    if accelerator.is_main_process:
        model.save_pretrained(folder, state_dict=state)
