"""Training: TRL integration, cached backbone features, the `adajudge train` and `adajudge demo` commands.

- `adajudge.training.trainer.AdaJudgeRewardTrainer`: `trl.RewardTrainer` with AdaJudge / NormBT / BT / Focal-BT
  losses and response masks from `adajudge.data.collator.PreferenceCollator`.
- `adajudge.training.features`: backbone hidden states computed once and kept on disk (safetensors shards,
  written one at a time, resumable, computed by all processes of a distributed run).
- `adajudge.training.loop.fit`: the training loop behind `adajudge train` (progress bar, held-out accuracy,
  checkpoints with exact resume, DDP or FSDP2 through accelerate).
- `adajudge.training.sharding`: the FSDP2 configuration both trainers share (`adajudge train --fsdp`).
"""
