"""TRL with its own defaults, as a user writes it: `AdaJudgeRewardTrainer` under `RewardConfig`'s default bf16 on
a CPU hands back a model that scores as its saved folder does, and plain `trl.RewardTrainer` takes
`load_hh_rlhf()` rows in either format."""
import pytest

pytest.importorskip("trl", reason="needs TRL (the train extra); the floor environment, like the GPU machine, has none")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from trl import RewardConfig, RewardTrainer  # noqa: E402

from adajudge.data.collator import PreferenceCollator  # noqa: E402
from adajudge.data.loaders import HH_RLHF_FILE, load_hh_rlhf  # noqa: E402
from adajudge.modeling import AdaJudgeForRewardModeling  # noqa: E402
from adajudge.training.trainer import AdaJudgeRewardTrainer  # noqa: E402

PAIRS = [{"prompt": f"What is {a} + {a}?", "chosen": f"{2 * a}", "rejected": "I will not say."} for a in range(16)]


def rewards(model, batch):
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"], batch["response_mask"]).logits


@pytest.mark.parametrize("call", ["train", "evaluate"])
def test_after_bf16_training_the_model_scores_as_its_saved_folder(tiny_backbone_path, tmp_path, call):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="adajudge", num_blocks=1)
    args = RewardConfig(output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=2, report_to=[],
                        per_device_eval_batch_size=8, disable_tqdm=True)
    assert args.bf16  # TRL's default: the mixed precision whose autocast wrapper must not stay on the model
    trainer = AdaJudgeRewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(PAIRS),
                                    eval_dataset=Dataset.from_list(PAIRS[:8]), processing_class=tokenizer)
    getattr(trainer, call)()
    assert "_original_forward" not in model.__dict__  # accelerate's autocast wrapper is gone
    model.save_pretrained(tmp_path / "saved")
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "saved").eval()
    batch = PreferenceCollator(tokenizer, max_length=64)(PAIRS[:6])
    assert torch.equal(rewards(model.eval(), batch), rewards(loaded, batch))


def test_an_evaluation_inside_training_keeps_training_in_mixed_precision(tiny_backbone_path, tmp_path):
    """The wrapper comes off when the outermost call returns, not at the evaluation inside `train()`."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last")
    args = RewardConfig(output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=4, eval_strategy="steps",
                        eval_steps=1, report_to=[], per_device_train_batch_size=4, disable_tqdm=True)
    wrapped_during_steps = []

    class Probe(AdaJudgeRewardTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            wrapped_during_steps.append("_original_forward" in self.model.__dict__)
            return super().training_step(model, inputs, num_items_in_batch)

    trainer = Probe(model=model, args=args, train_dataset=Dataset.from_list(PAIRS),
                    eval_dataset=Dataset.from_list(PAIRS[:4]), processing_class=tokenizer)
    trainer.train()
    assert wrapped_during_steps == [True] * 4
    assert "_original_forward" not in model.__dict__


@pytest.mark.parametrize("as_messages", [True, False])
def test_plain_reward_trainer_takes_load_hh_rlhf_rows(tiny_backbone_path, tmp_path, shared_data_dir, as_messages):
    pairs = load_hh_rlhf(shared_data_dir / HH_RLHF_FILE, as_messages=as_messages, limit=8)
    formats = {key: type(pairs[0][key]).__name__ for key in ("prompt", "chosen", "rejected")}
    assert set(formats.values()) == ({"list"} if as_messages else {"str"}), formats
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="last")
    args = RewardConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, max_steps=1, max_length=None,
                        per_device_train_batch_size=4, report_to=[], disable_tqdm=True)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs),
                            processing_class=AutoTokenizer.from_pretrained(tiny_backbone_path))
    assert trainer.train().global_step == 1
