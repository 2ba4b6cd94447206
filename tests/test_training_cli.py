"""`adajudge train`: config file or flags, logs and plot, a loadable model, and exact resume."""
import json

import pytest
import torch

from adajudge.cli import main
from adajudge.modeling import AdaJudgeForRewardModeling
from adajudge.training.demo_data import make_demo_pairs
from adajudge.training.settings import load_config_file


@pytest.fixture()
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=2)[:40]]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _train(pairs_file, backbone, output_dir, *extra):
    argv = ["train", "--data", str(pairs_file), "--backbone", str(backbone), "--epochs", "2", "--batch-size", "8",
            "--heldout", "0.2", "--max-length", "160", "--output-dir", str(output_dir), "--no-progress", *extra]
    assert main(argv) == 0
    return json.loads((output_dir / "log.json").read_text())


CACHED = ["--cache-features", "--head", "attn", "--head-options", "{\"bias\": false}", "--loss", "normbt"]
FULL = ["--no-cache-features", "--head", "last", "--loss", "bt", "--lr", "1e-3"]


@pytest.mark.parametrize("mode", [pytest.param(CACHED, id="cached"), pytest.param(FULL, id="full")])
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(pairs_file, tiny_backbone_path, tmp_path, mode):
    whole = _train(pairs_file, tiny_backbone_path, tmp_path / "whole", *mode)
    _train(pairs_file, tiny_backbone_path, tmp_path / "cut", *mode, "--stop-after", "5")
    cut_log = json.loads((tmp_path / "cut" / "log.json").read_text())
    assert not cut_log["history"]["finished"] and len(cut_log["history"]["steps"]) == 5
    resumed = _train(pairs_file, tiny_backbone_path, tmp_path / "cut", *mode, "--resume")

    losses = [step["loss"] for step in whole["history"]["steps"]]
    assert len(losses) == 8  # 32 training pairs, 8 per step, 2 epochs
    assert [step["loss"] for step in resumed["history"]["steps"]] == losses
    assert [e["accuracy"] for e in resumed["history"]["epochs"]] == [e["accuracy"] for e in whole["history"]["epochs"]]
    assert whole["train_pairs"] == 32 and whole["heldout_pairs"] == 8
    assert (tmp_path / "whole" / "curves.png").stat().st_size > 0

    # the saved model is the trained one: reloaded, it reproduces the held-out accuracy of the last epoch
    from transformers import AutoTokenizer

    from adajudge.data.collator import PreferenceCollator
    from adajudge.training.cli import split_indices

    model = AdaJudgeForRewardModeling.from_pretrained(tmp_path / "whole" / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "whole" / "model")
    rows = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    held = [rows[i] for i in split_indices(len(rows), 0.2, 0)[1]]
    batch = PreferenceCollator(tokenizer, max_length=160)(held)
    with torch.no_grad():
        rewards = model(batch["input_ids"], batch["attention_mask"], batch["response_mask"]).logits.squeeze(-1)
    accuracy = (rewards[:8] > rewards[8:]).float().mean().item()
    assert accuracy == pytest.approx(whole["history"]["epochs"][-1]["accuracy"])


def test_config_file_and_flags(pairs_file, tiny_backbone_path, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data: {pairs_file}\nbackbone: {tiny_backbone_path}\nhead: last\nloss: bt\ncache_features: true\n"
        f"epochs: 5\nbatch_size: 8\nmax_length: 160\noutput_dir: {tmp_path / 'run'}\nprogress: false\n"
    )
    assert main(["train", "--config", str(config), "--epochs", "1"]) == 0  # the flag wins over the file
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["settings"]["epochs"] == 1 and log["settings"]["head"] == "last" and log["settings"]["lr"] == 1e-3
    assert len(log["history"]["epochs"]) == 1 and log["history"]["finished"]

    # a changed setting cannot resume the run: one line on stderr, exit status 2
    assert main(["train", "--config", str(config), "--epochs", "1", "--lr", "0.5", "--resume"]) == 2
    assert "resume" in capsys.readouterr().err.splitlines()[-1]


def test_bad_settings_are_rejected(pairs_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": str(pairs_file), "learning_rate": 1e-3}))
    with pytest.raises(ValueError, match="learning_rate"):
        load_config_file(bad)
    for flags, name in ([[], "data"], [["--heldout", "1.5"], "heldout"], [["--head-options", "[1]"], "head_options"],
                        [["--backbone", str(tmp_path / "none")], "backbone"]):
        data = [] if name == "data" else ["--data", str(pairs_file)]
        assert main(["train", *data, "--output-dir", str(tmp_path), *flags]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"adajudge train: error: {name}"), line


def test_trained_folder_loads_with_the_auto_classes_and_has_a_model_card(pairs_file, tiny_backbone_path, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    log = _train(pairs_file, tiny_backbone_path, tmp_path / "run", *CACHED)
    folder = tmp_path / "run" / "model"
    card = (folder / "README.md").read_text()
    accuracy = log["history"]["epochs"][-1]["accuracy"]
    assert "| loss | `normbt` (defaults) |" in card
    assert f"| data | `{pairs_file.name}`; 32 training pairs, 2 epochs |" in card
    assert f"| held-out accuracy | {accuracy:.3f} ({round(accuracy * 8)} of 8 held-out pairs) |" in card
    assert '| head | `attn` (bias=false)' in card and "| adapters | none; backbone frozen |" in card
    loaded = AutoModelForSequenceClassification.from_pretrained(folder)
    assert type(loaded) is AdaJudgeForRewardModeling
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template  # what RLHF trainers render conversations with
    assert tokenizer.decode(loaded.config.response_header_ids) == "<|im_start|>assistant\n"


@pytest.mark.parametrize("mode", [pytest.param(CACHED, id="cached"), pytest.param(FULL, id="full")])
def test_packing_gives_the_padded_first_step_loss_and_logs_token_counts(pairs_file, tiny_backbone_path, tmp_path, mode):
    packed = _train(pairs_file, tiny_backbone_path, tmp_path / "packed", *mode, "--packing", "--stop-after", "2")
    padded = _train(pairs_file, tiny_backbone_path, tmp_path / "padded", *mode, "--no-packing", "--stop-after", "2")
    assert packed["settings"]["packing"] and not padded["settings"]["packing"]
    first_packed, first_padded = packed["history"]["steps"][0], padded["history"]["steps"][0]
    assert first_packed["loss"] == pytest.approx(first_padded["loss"], abs=1e-4, rel=0)
    for step_packed, step_padded in zip(packed["history"]["steps"], padded["history"]["steps"]):
        assert step_packed["pairs"] == step_padded["pairs"] == 8
        assert step_packed["tokens"] == step_padded["tokens"] > 0  # the same pairs: the same real tokens
        assert step_packed["padded_tokens"] == step_padded["padded_tokens"] == step_padded["computed_tokens"]
        assert step_packed["tokens"] <= step_packed["computed_tokens"] <= step_padded["computed_tokens"]


def test_token_budget_batches_carry_at_most_the_budget(pairs_file, tiny_backbone_path, tmp_path):
    log = _train(pairs_file, tiny_backbone_path, tmp_path / "run", *CACHED, "--batch-tokens", "700")
    steps = log["history"]["steps"]
    assert all(step["tokens"] <= 700 for step in steps) and max(step["pairs"] for step in steps) > 1
    for epoch in (0, 1):  # every training pair once per epoch
        assert sum(step["pairs"] for step in steps if step["epoch"] == epoch) == 32
