"""The small-reproduction script's machinery on a tiny random backbone and a handful of hand-written rows.

The rows are written in the shared data files' formats (`../shared/data/README.md`) into a temporary folder,
so the test needs neither the shared data nor SmolLM2.
"""
import gzip
import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "reproduce_small.py"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce_small", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_data(folder: Path) -> Path:
    folder.mkdir()
    hh = [
        {"chosen": f"\n\nHuman: Question {i}?\n\nAssistant: Kind answer {i}.",
         "rejected": f"\n\nHuman: Question {i}?\n\nAssistant: Rude {i}!"}
        for i in range(6)
    ]
    hh.append({"chosen": "\n\nHuman: Long?\n\nAssistant: " + "word " * 40, "rejected": "\n\nHuman: Long?\n\nAssistant: no"})
    with gzip.open(folder / "hh-rlhf-harmless-base-test.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in hh)
    for name in ("rm-bench-chat.json", "rm-bench-safety-refuse.json"):
        rows = [{"id": i, "subset": name, "prompt": f"{name} prompt {i}", "chosen": [f"ok {i}", f"fine {i}", f"**good** {i}"],
                 "rejected": [f"bad {i}", f"poor {i}", f"**wrong** {i}"]} for i in range(3)]
        (folder / name).write_text(json.dumps(rows))
    sources = ["mmlu-pro-law", "livebench-reasoning", "livebench-math", "livecodebench"]
    judge = [{"pair_id": str(i), "original_id": str(i), "source": sources[i % 4], "question": f"Q{i}",
              "response_model": "gpt-4o", "response_A": f"answer A{i}", "response_B": f"answer B{i}",
              "label": "A>B" if i % 2 else "B>A"} for i in range(8)]
    (folder / "judgebench-gpt-4o.jsonl").write_text("".join(json.dumps(row) + "\n" for row in judge))
    return folder


@pytest.mark.slow  # 12 head trainings plus a rerun: ~8 s on a quiet 2-core CPU, ~50 s when it is shared
def test_main_runs_every_head_and_loss_and_reuses_features(reproduce, tiny_backbone_path, tmp_path):
    data = _write_data(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--out", str(out), "--data", str(data), "--backbone", str(tiny_backbone_path), "--train-pairs", "5",
            "--rm-bench-rows", "2", "--judgebench-rows", "6", "--max-length", "48", "--seeds", "1", "--epochs", "1",
            "--batch-size", "2", "--adajudge-options", '{"num_blocks": 1}', "--no-progress"]
    assert reproduce.main(argv) == 0

    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert {(run["head"], run["loss"]) for run in runs} == {
        (head, loss) for head in reproduce.HEADS for loss in reproduce.LOSSES.values()
    }
    assert len(runs) == 12
    sub = results["subsample"]
    # The 40-word response does not fit in 48 tokens, so the draw passes over it whatever the shuffle.
    assert sub["train_pairs"] == 5 and sub["rm_bench_rows"] == {"chat": 2, "safety-refuse": 2}
    assert sub["judgebench_rows"] == 6 and sub["benchmark_sequences"] == 2 * 2 * 6 + 6 * 2
    for run in runs:
        for value in [*(run["rm_bench"][k] for k in ("hard", "normal", "easy", "avg")),
                      run["judgebench"]["overall"], run["train_accuracy"]]:
            assert 0.0 <= value <= 100.0
        domains = run["rm_bench"]["domains"]
        assert set(domains) == {"chat", "safety"}
        assert run["rm_bench"]["avg"] == pytest.approx((domains["chat"]["avg"] + domains["safety"]["avg"]) / 2)
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + 12 and all(line.count("±") == len(reproduce.COLUMNS) for line in table[2:])

    cached = out / "features" / "benchmarks" / "features.safetensors"
    stamp = cached.stat().st_mtime_ns
    assert reproduce.main(argv + ["--heads", "last", "--losses", "bt"]) == 0
    assert cached.stat().st_mtime_ns == stamp, "a rerun with the same inputs must reuse the cached features"


def test_cached_rewards_equal_the_live_model(reproduce, tiny_backbone_path, tmp_path):
    """Scoring a head on cached features gives the rewards of the whole model scored by `adajudge eval`."""
    from transformers import AutoTokenizer

    from adajudge import AdaJudgeForRewardModeling
    from adajudge.eval.adapter import reward_fn_from_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone_path)
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(tiny_backbone_path, head="attn", freeze_backbone=True)
    with torch.no_grad():
        model.head.score.weight.normal_()  # a non-trivial head, so equal rewards are not all zeros
    texts = [("Hi", "Hello there, friend."), ("A much longer prompt " * 4, "Short."), ("Q", "x" * 60)]
    features = reproduce.EvalFeatures.compute(model, tokenizer, texts, tmp_path / "features", max_length=32,
                                              batch_size=2, fingerprint="test", progress=False)
    assert features.meta["responses_cut"] == 1
    prompts, responses = map(list, zip(*texts))
    cached = features.reward_fn(model.head)(prompts, responses)
    live = reward_fn_from_model(model, tokenizer, max_length=32, progress=False)(prompts, responses)
    assert len(set(live)) == 3
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(live), rtol=1e-5, atol=1e-5)
