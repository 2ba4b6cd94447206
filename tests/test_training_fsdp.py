"""FSDP2 on CPU (two gloo processes) through accelerate's FSDP plugin, as `adajudge train --fsdp` runs it.

- The sharding: every parameter of backbone and head becomes a shard, each decoder layer is its own group,
  and the gradient of one global batch, reduce-scattered over the shards, is the single-process gradient.
- Training: `adajudge train --fsdp` gives the parameters of DDP with the same processes bit for bit, and the
  per-step losses of one process with the same global batch; a run stopped and resumed from its (gathered)
  checkpoint continues exactly; the `save_pretrained` folder loads in one process and reproduces the held-out
  rewards the sharded model measured. The TRL trainer under the same configuration equals its DDP run too.

Why parameters are compared to DDP exactly and to one process through the losses: splitting the global batch
over processes changes the order of float sums, and Adam turns a last-bit difference of a near-zero gradient
into a step of up to `lr` (its update is about `lr * sign(g)`), so a few of the ~250k parameters of the tiny
model move differently after 4 steps in DDP as in FSDP (the DDP test of the head alone shows the same on
`attn_bias`). FSDP's own contribution, the sharded reduction, is checked on the gradient, where no optimizer
amplifies anything.
"""
import json
import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from spawned import free_port, join_group_env, leave

from adajudge.cli import main
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.training.demo_data import make_demo_pairs

WORLD = 2
TRAIN = ["--head", "adajudge", "--head-options", '{"num_blocks": 1}', "--loss", "bt", "--lr", "1e-3",
         "--epochs", "1", "--batch-size", "8", "--heldout", "0.25", "--max-length", "96", "--no-progress",
         "--warmup-ratio", "0"]


def _rows(count=36):
    return [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=4)[:count]]


def _train_worker(rank, world, port, argv):
    join_group_env(rank, world, port)
    assert main(argv) == 0
    leave()


def _global_batch_loss(model, tokenizer, rows, rank, world):
    """The mean BT loss of process `rank`'s share `rows[rank::world]`, scaled as the loop does (`world * local /
    global`), so that the gradient averaged over processes is the gradient of the whole batch."""
    from adajudge.data.collator import PreferenceCollator

    local = rows[rank::world]
    batch = PreferenceCollator(tokenizer, max_length=96)(local)
    rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    response_mask=batch["response_mask"]).logits.squeeze(-1)
    chosen, rejected = rewards[: len(local)], rewards[len(local):]
    return F.softplus(rejected - chosen).mean() * (world * len(local) / len(rows))


def _sharding_worker(rank, world, port, backbone, out):
    """Prepare the model under FSDP, record how it is sharded, and the gradient of one global batch."""
    join_group_env(rank, world, port)
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor
    from transformers import AutoTokenizer

    from adajudge.training.loop import make_accelerator
    from adajudge.training.sharding import is_fsdp, request_fsdp

    request_fsdp()
    accelerator = make_accelerator()
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="adajudge", num_blocks=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, _ = accelerator.prepare(model, optimizer)
    loss = _global_batch_loss(model, AutoTokenizer.from_pretrained(backbone), _rows(7), rank, world)
    accelerator.backward(loss)
    gradients = {name: p.grad.full_tensor() for name, p in model.named_parameters()}
    record = {
        "fsdp": is_fsdp(accelerator),
        "groups": sorted(name for name, module in model.named_modules() if isinstance(module, FSDPModule)),
        "shards": {name: [list(p.to_local().shape), list(p.shape)] for name, p in model.named_parameters()
                   if isinstance(p, DTensor)},
        "plain": [name for name, p in model.named_parameters() if not isinstance(p, DTensor)],
        "optimizer_holds_shards": all(isinstance(p, DTensor) for g in optimizer.param_groups for p in g["params"]),
    }
    if rank == 0:
        torch.save(gradients, os.path.join(out, "fsdp-gradients.pt"))
    with open(os.path.join(out, f"sharding-rank{rank}.json"), "w") as handle:
        json.dump(record, handle)
    leave()


@pytest.fixture()
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _rows()))
    return path


@pytest.mark.slow
def test_fsdp_shards_backbone_and_head_and_reduces_the_global_batch_gradient(tiny_backbone_path, tmp_path):
    from transformers import AutoTokenizer

    mp.spawn(_sharding_worker, args=(WORLD, free_port(), str(tiny_backbone_path), str(tmp_path)), nprocs=WORLD,
             join=True)
    records = [json.loads((tmp_path / f"sharding-rank{r}.json").read_text()) for r in range(WORLD)]
    for record in records:
        assert record["fsdp"] and record["optimizer_holds_shards"] and record["plain"] == []
        # each decoder layer its own group; the head in the root group (accelerate also gives the embeddings
        # and the final norm groups of their own)
        assert {"", "backbone.layers.0", "backbone.layers.1"} <= set(record["groups"])
        assert not any(group.startswith("head") for group in record["groups"])
        for name, (local, full) in record["shards"].items():
            assert local[1:] == full[1:] and local[0] in (-(-full[0] // WORLD), full[0] // WORLD), name
    assert any(name.startswith("head.refinement") for name in records[0]["shards"])
    assert "head.pool.attn_bias" in records[0]["shards"]

    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="adajudge", num_blocks=1)
    _global_batch_loss(model, AutoTokenizer.from_pretrained(tiny_backbone_path), _rows(7), 0, 1).backward()
    sharded = torch.load(tmp_path / "fsdp-gradients.pt", weights_only=True)
    assert sharded.keys() == {name for name, _ in model.named_parameters()}
    # fp32 sums in another order differ by rounding relative to the magnitudes summed: the loss's largest
    # gradient entry sets the scale (gradients that vanish in exact arithmetic, such as the scorers' output
    # biases under a uniform router, are rounding noise of ~1e-9 in both runs)
    scale = max(p.grad.abs().max().item() for p in model.parameters())
    assert scale > 1e-3  # a gradient worth comparing
    for name, param in model.named_parameters():
        torch.testing.assert_close(sharded[name], param.grad, rtol=1e-5, atol=1e-5 * scale,
                                   msg=lambda message: f"{name}: {message}")


@pytest.mark.slow
def test_fsdp_training_equals_ddp_and_one_process_and_saves_a_loadable_model(pairs_file, tiny_backbone_path, tmp_path):
    argv = ["train", "--data", str(pairs_file), "--backbone", str(tiny_backbone_path), *TRAIN]
    assert main([*argv, "--output-dir", str(tmp_path / "single")]) == 0
    runs = [("ddp", []), ("fsdp", ["--fsdp"]),
            ("cut", ["--fsdp", "--stop-after", "2"]), ("cut", ["--fsdp", "--resume"])]
    for name, extra in runs:
        run = [*argv, "--output-dir", str(tmp_path / name), *extra]
        mp.spawn(_train_worker, args=(WORLD, free_port(), run), nprocs=WORLD, join=True)
    logs = {name: json.loads((tmp_path / name / "log.json").read_text()) for name in ("single", "ddp", "fsdp", "cut")}
    losses = {name: [step["loss"] for step in log["history"]["steps"]] for name, log in logs.items()}
    assert len(losses["single"]) == 4  # 27 training pairs, 8 per step (the last 3 form a batch), 1 epoch
    assert losses["fsdp"] == losses["ddp"]
    assert losses["cut"] == losses["fsdp"]  # stopped after 2 steps and resumed from the sharded checkpoint
    torch.testing.assert_close(losses["fsdp"], losses["single"], rtol=1e-5, atol=1e-6)

    fsdp = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "fsdp" / "model").eval()
    ddp = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "ddp" / "model").eval()
    initial = AdaJudgeForRewardModeling.from_backbone(str(tiny_backbone_path), head="adajudge", num_blocks=1)
    fsdp_state, ddp_state = fsdp.state_dict(), ddp.state_dict()
    assert fsdp_state.keys() == ddp_state.keys() == initial.state_dict().keys()
    for name, value in fsdp_state.items():
        assert torch.equal(value, ddp_state[name]), f"{name}: FSDP differs from DDP"
    moved = max((fsdp_state[name] - value).abs().max().item() for name, value in initial.state_dict().items())
    assert moved > 1e-3  # training changed the parameters

    # the folder loads in one process and scores the held-out pairs as the sharded model did at the epoch end
    from transformers import AutoTokenizer

    from adajudge.data.collator import PreferenceCollator
    from adajudge.training.cli import split_indices

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "fsdp" / "model")
    rows = _rows()
    held = [rows[i] for i in split_indices(len(rows), 0.25, 0)[1]]
    batch = PreferenceCollator(tokenizer, max_length=96)(held)
    with torch.no_grad():
        rewards = fsdp(batch["input_ids"], batch["attention_mask"], batch["response_mask"]).logits.squeeze(-1)
    chosen, rejected = rewards[: len(held)], rewards[len(held):]
    epoch = logs["fsdp"]["history"]["epochs"][-1]
    assert epoch["pairs"] == len(held) == 9
    assert (chosen > rejected).sum().item() / len(held) == epoch["accuracy"]
    assert (chosen - rejected).double().mean().item() == pytest.approx(epoch["margin"], rel=1e-5, abs=1e-7)


def _trl_worker(rank, world, port, backbone, out, fsdp):
    """`AdaJudgeRewardTrainer` for a few steps in one of `world` processes, under FSDP or DDP."""
    join_group_env(rank, world, port)
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RewardConfig

    from adajudge.training.sharding import request_fsdp
    from adajudge.training.trainer import AdaJudgeRewardTrainer

    if fsdp:
        request_fsdp()
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="adajudge", num_blocks=1)
    args = RewardConfig(output_dir=out, per_device_train_batch_size=4, max_steps=3, learning_rate=1e-3,
                        lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                        seed=0, bf16=False, fp16=False, max_length=96, dataloader_num_workers=0, disable_tqdm=True)
    trainer = AdaJudgeRewardTrainer(model, args, loss="adajudge", train_dataset=Dataset.from_list(_rows(24)),
                                    processing_class=AutoTokenizer.from_pretrained(backbone))
    trainer.train()
    trainer.save_model(os.path.join(out, "model"))
    if rank == 0:
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        record = {"fsdp": trainer.is_fsdp_enabled, "losses": losses}
        with open(os.path.join(out, "trl.json"), "w") as handle:
            json.dump(record, handle)
    leave()


@pytest.mark.slow
def test_the_trl_trainer_trains_under_the_same_fsdp_configuration(tiny_backbone_path, tmp_path):
    for name, fsdp in (("ddp", False), ("fsdp", True)):
        args = (WORLD, free_port(), str(tiny_backbone_path), str(tmp_path / name), fsdp)
        mp.spawn(_trl_worker, args=args, nprocs=WORLD, join=True)
    ddp, fsdp = (json.loads((tmp_path / name / "trl.json").read_text()) for name in ("ddp", "fsdp"))
    assert fsdp["fsdp"] and not ddp["fsdp"] and len(fsdp["losses"]) == 3
    assert fsdp["losses"] == ddp["losses"]
    fsdp_state = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "fsdp" / "model").state_dict()
    ddp_state = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "ddp" / "model").state_dict()
    assert fsdp_state.keys() == ddp_state.keys()
    for name, value in fsdp_state.items():
        assert torch.equal(value, ddp_state[name]), f"{name}: FSDP differs from DDP under the TRL trainer"
