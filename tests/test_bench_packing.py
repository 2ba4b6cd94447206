"""`python -m bench.packing`: its output contract, on the tiny backbone (the figures themselves are meaningless)."""
import json

from adajudge.training.demo_data import make_demo_pairs
from bench.packing import main


def test_packing_bench_writes_both_modes_side_by_side(tiny_backbone_path, tmp_path):
    data = tmp_path / "pairs.jsonl"
    short = [{"prompt": "2+2?", "chosen": "4", "rejected": "five"}] * 6
    long = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in make_demo_pairs(seed=2)[:10]]
    data.write_text("".join(json.dumps(row) + "\n" for row in [*short, *long]))
    assert main(["--backbone", str(tiny_backbone_path), "--data", str(data), "--max-length", "128", "--pairs-per-step",
                 "4", "--steps", "2", "--fractions-at", "2", "4", "--extraction-pairs", "4", "--extraction-batch", "2",
                 "--no-gradient-checkpointing", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "packing.json").read_text())
    assert [row["pairs_per_step"] for row in result["padding"]] == [2, 4]
    for row in result["padding"]:
        assert 0 < row["padding_fraction"] < 1 and 0 <= row["packed_padding_fraction"] < row["padding_fraction"]
        assert row["tokens"] < row["packed_tokens"] < row["padded_tokens"]
    training = result["training"]
    assert training["first_step_loss_difference"] < 1e-5  # the same model on the same pairs
    for mode in ("padded", "packed"):
        assert len(training[mode]["step_s"]) == 2 and training[mode]["peak_memory_bytes"] > 0
        assert training[mode]["median_tokens"] == training["padded"]["median_tokens"]
    assert training["packed"]["median_computed_tokens"] < training["padded"]["median_computed_tokens"]
    assert result["extraction"]["padded"]["tokens"] == result["extraction"]["packed"]["tokens"]
    assert result["meta"]["load_average_start"] and result["meta"]["load_average_end"]
    assert "faster per step" in (tmp_path / "packing.md").read_text()
