"""TRL integration: `trl.RewardTrainer` with adajudge's losses and response masks.

`trl.RewardTrainer` already trains `AdaJudgeForRewardModeling` unchanged (it calls
`model(input_ids, attention_mask, use_cache=False)` on its own collator's chosen-then-rejected batches and
reads `logits [2N, 1]`); the head then treats every real token as response. `AdaJudgeRewardTrainer`
adds what the plain trainer cannot pass:

- response masks, from `adajudge.data.collator.PreferenceCollator` (raw `{prompt, chosen, rejected}` rows
  are tokenised by the collator with the tokenizer's chat template, so prompt tokens are known);
- the loss: "adajudge" (Focal-BT + router entropy floor, on the head's full output), "normbt"
  (representation-normalised BT), "focal" or "bt" (see `adajudge.training.losses`), or any such module;
- per-pair `margin` and `weight` columns;
- padding-free batches (`packing=True`): `PackedPreferenceCollator` packs whole sequences into rows, and the
  model runs them without padding (docs/packing.md); the logs then count real and padded-equivalent tokens.

The model handed back scores as its saved folder does: under mixed precision (TRL's default `bf16=True`)
accelerate wraps `model.forward` in an autocast context while the trainer runs, and the plain trainer leaves
that wrapper on the model after `train()` / `evaluate()` (its rewards then differ from the reloaded model's
by bf16 rounding); this trainer takes it off again when each returns.

NormBT's running mean distance is saved with each checkpoint (`loss.safetensors`) and restored on resume;
the loss follows the model's mode, so evaluation (eval mode) never moves it. Reward centering comes either
from TRL (`args.center_rewards_coefficient`) or from the loss (`center_coef`), never both. Under FSDP
(`adajudge.training.sharding.request_fsdp()` or `accelerate launch` with an FSDP2 config) it trains sharded
with the same accelerate configuration as `adajudge train --fsdp`, on CPU processes too.
"""
import contextlib
import os

import torch
from accelerate.utils import extract_model_from_parallel
from safetensors.torch import load_file, save_file
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import RewardTrainer

from adajudge.data.collator import ENCODED_KEYS, PackedPreferenceCollator, PreferenceCollator
from adajudge.data.packing import token_counts
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.nn import PairLoss
from adajudge.training.loop import model_inputs
from adajudge.training.losses import build_loss
from adajudge.training.sharding import shard_cpu_processes

RAW_COLUMNS = ("prompt", "chosen", "rejected")
LOSS_STATE = "loss.safetensors"


def _check_single_centering(args, loss_fn: PairLoss) -> None:
    """Raise when both TRL's `center_rewards_coefficient` and the loss's `center_coef` would add the
    centering term `coef · mean((c + r)²)`: it would then be added twice."""
    trl_coef = getattr(args, "center_rewards_coefficient", None)
    loss_coef = max((getattr(module, "center_coef", 0.0) for module in loss_fn.modules()), default=0.0)
    if trl_coef and loss_coef:
        raise ValueError(
            f"args.center_rewards_coefficient, center_coef: expected at most one reward-centering term, got "
            f"center_rewards_coefficient={trl_coef} and the loss's center_coef={loss_coef} (the term would be "
            "added twice); set one of them to 0 / None"
        )


class AdaJudgeRewardTrainer(RewardTrainer):
    """`trl.RewardTrainer` whose `compute_loss` uses an adajudge loss and the collator's response masks.

    Args:
        model: an `AdaJudgeForRewardModeling` or a `replace_reward_head` model (any model whose forward takes
            `response_mask` and returns an `adajudge.modeling.AdaJudgeRewardOutput`).
        args: `trl.RewardConfig`; `max_length` (default 1024) is the collator's token budget per sequence.
        loss: "adajudge", "normbt", "focal", "bt", or an `adajudge.nn.PairLoss` module.
        loss_options: keyword options for `build_loss` when `loss` is a name.
        data_collator: default `PreferenceCollator(processing_class, max_length=args.max_length)`, or with
            `packing=True` `PackedPreferenceCollator(processing_class, max_length=args.max_length)`.
        packing: train on packed batches (default False, TRL's padded batches). Needs an
            `AdaJudgeForRewardModeling` whose backbone keeps packed sequences apart (checked here, once:
            `AdaJudgeForRewardModeling.check_packing_support`).
        train_dataset / eval_dataset: `datasets.Dataset` with `prompt`, `chosen`, `rejected` (str or chat
            messages) and optional `margin`, `weight` columns, or already encoded columns
            (`chosen_input_ids`, `chosen_response_mask`, ...).
        processing_class: the tokenizer (required when `data_collator` is not given).
        **kwargs: the rest of `trl.RewardTrainer`'s arguments.
    """

    def __init__(
        self,
        model,
        args=None,
        *,
        loss="adajudge",
        loss_options=None,
        packing: bool = False,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        **kwargs,
    ):
        if isinstance(loss, str):
            self.loss_fn = build_loss(loss, **(loss_options or {}))
        elif isinstance(loss, PairLoss):
            if loss_options:
                raise ValueError("loss_options: only used when `loss` is a name, got options with a loss module")
            self.loss_fn = loss
        else:
            raise TypeError(f"loss: expected a loss name or an adajudge.nn.PairLoss, got {type(loss).__name__}")
        _check_single_centering(args, self.loss_fn)
        if not isinstance(packing, bool):
            raise TypeError(f"packing: expected a bool, got {type(packing).__name__}")
        if packing:
            if not isinstance(model, AdaJudgeForRewardModeling):
                raise ValueError(
                    f"packing: packed batches run through AdaJudgeForRewardModeling only, got a {type(model).__name__}; "
                    "pass packing=False"
                )
            model.check_packing_support()  # before accelerate wraps the model
        if data_collator is None:
            if processing_class is None:
                raise ValueError("processing_class: expected the tokenizer (the collator needs it), got None")
            max_length = getattr(args, "max_length", None) or 1024
            collator_class = PackedPreferenceCollator if packing else PreferenceCollator
            data_collator = collator_class(processing_class, max_length=max_length)
        super().__init__(
            model,
            args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )

    def train(self, *args, **kwargs):
        """`trl.RewardTrainer.train`, then the model's own forward back (module docstring)."""
        with self._handing_back_the_model():
            return super().train(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """`trl.RewardTrainer.evaluate`, then the model's own forward back (module docstring)."""
        with self._handing_back_the_model():
            return super().evaluate(*args, **kwargs)

    @contextlib.contextmanager
    def _handing_back_the_model(self):
        """Run a `train`/`evaluate` call; when the outermost one returns (an evaluation inside training must
        keep the wrapper), undo accelerate's mixed-precision wrapper of `self.model.forward`, in place."""
        self._calls_running = getattr(self, "_calls_running", 0) + 1
        try:
            yield
        finally:
            self._calls_running -= 1
            if not self._calls_running:
                extract_model_from_parallel(self.model, keep_fp32_wrapper=False)

    def create_accelerator_and_postprocess(self):
        super().create_accelerator_and_postprocess()
        if shard_cpu_processes(self.accelerator):  # CPU processes asked for FSDP: see adajudge.training.sharding
            self.is_fsdp_enabled = True

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        # The collator tokenises (chat template, response mask, truncation policy), so rows stay as they are.
        columns = set(dataset.column_names or [])
        if not (set(RAW_COLUMNS) <= columns or set(ENCODED_KEYS) <= columns):
            raise ValueError(
                f"{dataset_name}_dataset: expected columns {list(RAW_COLUMNS)} or {list(ENCODED_KEYS)}, got {sorted(columns)}"
            )
        return dataset

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = [*RAW_COLUMNS, *ENCODED_KEYS, "margin", "weight"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        self.loss_fn.train(self.model.training)  # evaluation must not move NormBT's running distance
        outputs = model(**model_inputs(inputs))
        head_output = outputs.head_output()
        self.loss_fn.to(head_output.reward.device)
        chosen, rejected = head_output.split_pairs()
        loss = self.loss_fn.pair_loss(chosen, rejected, margin=inputs.get("margin"), weights=inputs.get("weight"))
        if self.args.center_rewards_coefficient is not None:  # TRL's centering term, as in RewardTrainer
            loss = loss + self.args.center_rewards_coefficient * (chosen.reward + rejected.reward).pow(2).mean()

        with torch.no_grad():
            rewards = self.accelerator.gather(head_output.reward.detach())
            self._metrics[mode]["mean_reward"].append(rewards.mean().item())
            accuracy = self.accelerator.gather_for_metrics((chosen.reward > rejected.reward).float().mean())
            self._metrics[mode]["accuracy"].append(accuracy.mean().item())
            margin = self.accelerator.gather_for_metrics((chosen.reward - rejected.reward).mean())
            self._metrics[mode]["margin"].append(margin.mean().item())
            entropy = self.accelerator.gather_for_metrics(head_output.router_entropy.mean())
            self._metrics[mode]["router_entropy"].append(entropy.mean().item())
            counts = token_counts(inputs)  # this process's batch; summed over processes below
            local = torch.tensor(list(counts.values()), dtype=torch.float64, device=head_output.reward.device)
            for name, total in zip(counts, self.accelerator.reduce(local, "sum").tolist()):
                self._metrics[mode][name].append(total)
        return (loss, outputs) if return_outputs else loss

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        state = self.loss_fn.state_dict()
        if state and self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, os.path.join(folder, LOSS_STATE))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, LOSS_STATE)
        if os.path.isfile(path):
            self.loss_fn.load_state_dict(load_file(path))
