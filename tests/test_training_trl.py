"""TRL: `trl.RewardTrainer` trains `AdaJudgeForRewardModeling` unchanged; `AdaJudgeRewardTrainer` swaps the loss
and passes response masks."""
import random

import pytest
import torch

pytest.importorskip("trl", reason="needs TRL (the train extra); the floor environment, like the GPU machine, has none")

from datasets import Dataset
from transformers import AutoTokenizer
from trl import RewardConfig, RewardTrainer

from adajudge.data.collator import PreferenceCollator
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.nn import NormBTLoss
from adajudge.training.demo_data import make_demo_pairs
from adajudge.training.losses import build_loss
from adajudge.training.trainer import AdaJudgeRewardTrainer


def _pairs(n, seed=0):
    """Checkable pairs from the demo (right vs wrong answer: hard for a random tiny model to learn fast)."""
    return [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=seed)[:n]]


def _learnable_pairs(n, seed=0):
    """Pairs a tiny random model learns within a few steps: an answer is preferred over a refusal."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        pairs.append({"prompt": f"What is {a} + {b}? ", "chosen": f"{a} + {b} = {a + b}.", "rejected": "I will not answer that."})
    return pairs


def _args(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_train_epochs=3,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=0,
        max_length=160,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return RewardConfig(**settings)


def _losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_reward_trainer_trains_adajudge_model_and_round_trips(tiny_backbone_path, tmp_path):
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path))  # default head: adajudge
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    trainer = RewardTrainer(
        model=model, args=_args(tmp_path), train_dataset=Dataset.from_list(_learnable_pairs(64)), processing_class=tokenizer
    )
    trainer.train()
    losses = _losses(trainer)
    assert len(losses) == 12  # 64 pairs, 16 per step, 3 epochs
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, f"loss fell from {first:.4f} to {last:.4f} only"

    model.save_pretrained(tmp_path / "saved")
    loaded = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "saved")
    batch = PreferenceCollator(tokenizer, max_length=160)(_pairs(6, seed=3))
    model.eval(), loaded.eval()
    with torch.no_grad():
        before = model(batch["input_ids"], batch["attention_mask"], batch["response_mask"]).logits
        after = loaded(batch["input_ids"], batch["attention_mask"], batch["response_mask"]).logits
    assert torch.equal(before, after)


@pytest.mark.parametrize("loss", ["adajudge", "normbt"])
def test_adajudge_trainer_uses_its_loss_and_response_masks(tiny_backbone_path, tmp_path, loss):
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="adajudge", num_blocks=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    pairs = _learnable_pairs(32)
    trainer = AdaJudgeRewardTrainer(
        model=model,
        args=_args(tmp_path, num_train_epochs=2),
        loss=loss,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
    )
    assert isinstance(trainer.data_collator, PreferenceCollator)

    # compute_loss on a collated batch is the adajudge loss of the head with the response masks
    batch = trainer.data_collator(_pairs(4))
    model.eval()
    with torch.no_grad():
        got = trainer.compute_loss(model, dict(batch))
        output = model(batch["input_ids"], batch["attention_mask"], batch["response_mask"])
        expected = build_loss(loss).pair_loss(*output.head_output().split_pairs())
        unmasked_output = model(batch["input_ids"], batch["attention_mask"])
        unmasked = build_loss(loss).pair_loss(*unmasked_output.head_output().split_pairs())
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(expected, unmasked)  # the masks change the result, so they were used

    model.train()
    trainer.train()
    losses = _losses(trainer)
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2
    assert {"accuracy", "margin", "router_entropy"} <= set(trainer.state.log_history[0])


def test_normbt_state_is_checkpointed_and_restored(tiny_backbone_path, tmp_path):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    dataset = Dataset.from_list(_pairs(16))

    def trainer_for(epochs):
        torch.manual_seed(0)
        model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="last")
        args = _args(tmp_path, per_device_train_batch_size=8, num_train_epochs=epochs, save_strategy="epoch")
        return AdaJudgeRewardTrainer(model=model, args=args, loss="normbt", train_dataset=dataset, processing_class=tokenizer)

    trainer = trainer_for(1)
    trainer.train()
    saved = trainer.loss_fn.running_distance.clone()
    assert saved > 0 and (tmp_path / "checkpoint-2" / "loss.safetensors").is_file()
    resumed = trainer_for(2)
    assert resumed.loss_fn.running_distance == 0
    resumed._load_from_checkpoint(str(tmp_path / "checkpoint-2"))
    assert torch.equal(resumed.loss_fn.running_distance, saved)


def test_evaluation_leaves_the_normbt_distance_alone(tiny_backbone_path, tmp_path):
    """`evaluate` runs the loss in eval mode: NormBT's running distance moves with training steps only."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="last")
    args = _args(tmp_path, per_device_train_batch_size=8, per_device_eval_batch_size=4, num_train_epochs=1)
    trainer = AdaJudgeRewardTrainer(model=model, args=args, loss="normbt", train_dataset=Dataset.from_list(_pairs(16)),
                                    eval_dataset=Dataset.from_list(_pairs(8, seed=1)), processing_class=tokenizer)
    trainer.evaluate()
    assert trainer.loss_fn.num_batches_tracked == 0 and trainer.loss_fn.running_distance == 0
    trainer.train()
    state = {name: value.clone() for name, value in trainer.loss_fn.state_dict().items()}
    assert state["num_batches_tracked"] == 2 and state["running_distance"] > 0
    trainer.evaluate()
    assert all(torch.equal(value, trainer.loss_fn.state_dict()[name]) for name, value in state.items())


@pytest.mark.parametrize("loss, options", [("bt", {"center_coef": 0.01}), ("adajudge", {"center_coef": 0.01})])
def test_centering_from_both_trl_and_the_loss_is_refused(tiny_backbone_path, tmp_path, loss, options):
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="last")
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    dataset = Dataset.from_list(_pairs(4))
    with pytest.raises(ValueError, match=r"args.center_rewards_coefficient, center_coef: expected at most one "
                                         r"reward-centering term, got center_rewards_coefficient=0.01 "
                                         r"and the loss's center_coef=0.01"):
        AdaJudgeRewardTrainer(model=model, args=_args(tmp_path, center_rewards_coefficient=0.01), loss=loss,
                              loss_options=options, train_dataset=dataset, processing_class=tokenizer)
    for only_one in (_args(tmp_path), _args(tmp_path, center_rewards_coefficient=0.01)):
        loss_options = options if only_one.center_rewards_coefficient is None else None
        AdaJudgeRewardTrainer(model=model, args=only_one, loss=loss, loss_options=loss_options, train_dataset=dataset,
                              processing_class=tokenizer)


def test_adajudge_trainer_rejects_bad_arguments(tiny_backbone_path, tmp_path):
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="last")
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    dataset = Dataset.from_list(_pairs(4))
    with pytest.raises(ValueError, match="loss"):
        AdaJudgeRewardTrainer(model=model, args=_args(tmp_path), loss="hinge", train_dataset=dataset, processing_class=tokenizer)
    with pytest.raises(ValueError, match="loss_options"):
        AdaJudgeRewardTrainer(model=model, args=_args(tmp_path), loss=NormBTLoss(), loss_options={"gamma": 1.0},
                              train_dataset=dataset, processing_class=tokenizer)
    with pytest.raises(ValueError, match="processing_class"):
        AdaJudgeRewardTrainer(model=model, args=_args(tmp_path), train_dataset=dataset)
    with pytest.raises(ValueError, match="train_dataset"):
        AdaJudgeRewardTrainer(model=model, args=_args(tmp_path), train_dataset=Dataset.from_list([{"text": "a"}]),
                              processing_class=tokenizer)


def test_packed_trainer_gives_the_padded_trainer_s_losses(tiny_backbone_path, tmp_path):
    from adajudge.data.collator import PackedPreferenceCollator

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    dataset = Dataset.from_list(_learnable_pairs(16))
    logs = {}
    for packing in (True, False):
        torch.manual_seed(0)
        model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="adajudge", num_blocks=1)
        trainer = AdaJudgeRewardTrainer(model=model, args=_args(tmp_path / str(packing), per_device_train_batch_size=8,
                                                                 num_train_epochs=1), packing=packing,
                                        train_dataset=dataset, processing_class=tokenizer)
        assert isinstance(trainer.data_collator, PackedPreferenceCollator) == packing
        trainer.train()
        logs[packing] = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs[True]) == len(logs[False]) == 2
    assert logs[True][0]["loss"] == pytest.approx(logs[False][0]["loss"], abs=1e-4, rel=0)
    for packed, padded in zip(logs[True], logs[False]):
        assert packed["tokens"] == padded["tokens"] and packed["padded_tokens"] == padded["padded_tokens"]
        assert packed["computed_tokens"] <= padded["computed_tokens"] == padded["padded_tokens"]


def test_packing_needs_an_adajudge_reward_model(tiny_backbone_path, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from adajudge.modeling import replace_reward_head

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    classifier = replace_reward_head(AutoModelForSequenceClassification.from_pretrained(tiny_backbone_path, num_labels=1))
    with pytest.raises(ValueError, match="packing: packed batches run through AdaJudgeForRewardModeling only"):
        AdaJudgeRewardTrainer(model=classifier, args=_args(tmp_path), packing=True,
                              train_dataset=Dataset.from_list(_pairs(4)), processing_class=tokenizer)
