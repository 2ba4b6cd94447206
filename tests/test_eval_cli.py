"""`adajudge eval` end to end on a saved tiny sequence classifier (and, when present, the shared files)."""
import json
import os
from pathlib import Path

import pytest
import torch
from transformers import LlamaForSequenceClassification

from adajudge.backbones.tiny import tiny_backbone_dir, tiny_tokenizer
from adajudge.cli import main
from adajudge.eval import loaders, reward_fn_from_model, score_rm_bench


def data_dir() -> Path:
    return Path(os.environ.get("ADAJUDGE_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    backbone = tiny_backbone_dir(tmp_path_factory.mktemp("backbone"), hidden_size=32, num_layers=1)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification.from_pretrained(backbone, num_labels=1)
    out = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(out)
    tiny_tokenizer().save_pretrained(out)
    return out


def rm_rows(n, offset=0):
    return [{"id": i, "prompt": f"question {i}", "chosen": [f"right {i}", f"right answer {i}", f"**right** {i}"],
             "rejected": [f"wrong {i}", f"wrong answer {i}", f"**wrong** {i}"]} for i in range(offset, offset + n)]


def test_rm_bench_two_files_table_and_json(tmp_path, model_dir, capsys):
    chat, refuse = tmp_path / "rm-bench-chat.json", tmp_path / "rm-bench-safety-refuse.json"
    chat.write_text(json.dumps(rm_rows(3)))
    refuse.write_text(json.dumps(rm_rows(2, offset=3)))
    out = tmp_path / "results.json"
    code = main(["eval", "--benchmark", "rm-bench", "--data", str(chat), "--data", str(refuse),
                 "--model", str(model_dir), "--batch-size", "4", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "RM-Bench" in printed and "chat" in printed and "safety" in printed
    record = json.loads(out.read_text())
    assert record["benchmark"] == "rm-bench"
    results = record["results"]
    assert results["counts"] == {"overall": 5, "chat": 3, "safety": 2}

    model = LlamaForSequenceClassification.from_pretrained(model_dir)
    rows = loaders.load_rm_bench(chat) + loaders.load_rm_bench(refuse)
    expected = score_rm_bench(rows, reward_fn_from_model(model, tiny_tokenizer(), progress=False))
    assert results["overall"] == pytest.approx(expected["overall"])
    assert results["domains"]["safety"]["hard"] == pytest.approx(expected["domains"]["safety"]["hard"])


def test_judgebench_and_rewardbench(tmp_path, model_dir, capsys):
    jb = tmp_path / "jb.jsonl"
    jb.write_text("\n".join(json.dumps({"pair_id": str(i), "source": source, "question": "q", "response_A": "yes",
                                        "response_B": "no", "label": "A>B"})
                            for i, source in enumerate(["mmlu-pro-law", "livebench-math", "livecodebench"])))
    assert main(["eval", "--benchmark", "judgebench", "--data", str(jb), "--model", str(model_dir),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "JudgeBench" in printed and "livebench-math" in printed and "overall" in printed

    rb = tmp_path / "rb.json"
    rb.write_text(json.dumps([{"prompt": "q", "chosen": "yes", "rejected": "no", "subset": s, "id": i}
                              for i, s in enumerate(["alpacaeval-easy", "math-prm", "hep-go", "donotanswer"])]))
    out = tmp_path / "rb_results.json"
    assert main(["eval", "--benchmark", "rewardbench", "--data", str(rb), "--model", str(model_dir),
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Chat Hard" in printed and "hep-go" in printed
    assert set(json.loads(out.read_text())["results"]) >= {"overall", "Chat", "Safety", "Reasoning", "subsets"}


def test_bad_data_file_returns_error_code(tmp_path, model_dir, capsys):
    bad = tmp_path / "rm-bench-chat.json"
    bad.write_text(json.dumps([{"prompt": "q"}]))
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(bad), "--model", str(model_dir)]) == 2
    assert "lacks ['chosen', 'rejected']" in capsys.readouterr().err


@pytest.mark.slow
def test_shared_files(tmp_path, model_dir):
    files = [data_dir() / name for name in ("rm-bench-chat.json", "rm-bench-safety-refuse.json",
                                            "judgebench-gpt-4o.jsonl")]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        pytest.skip(f"shared benchmark files absent: {missing} (set ADAJUDGE_DATA)")
    out = tmp_path / "rm.json"
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(files[0]), "--data", str(files[1]),
                 "--model", str(model_dir), "--batch-size", "16", "--max-length", "128", "--out", str(out),
                 "--no-progress"]) == 0
    assert set(json.loads(out.read_text())["results"]["domains"]) == {"chat", "safety"}
    out = tmp_path / "jb.json"
    assert main(["eval", "--benchmark", "judgebench", "--data", str(files[2]), "--model", str(model_dir),
                 "--batch-size", "16", "--max-length", "128", "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["results"]["counts"]["overall"] == 350


def test_adajudge_checkpoint(tmp_path, capsys):
    from adajudge import AdaJudgeForRewardModeling

    backbone = tiny_backbone_dir(tmp_path / "backbone", hidden_size=32, num_layers=1)
    torch.manual_seed(0)
    model = AdaJudgeForRewardModeling.from_backbone(backbone, head="adajudge", num_blocks=1)
    model.save_pretrained(tmp_path / "adajudge")
    tiny_tokenizer().save_pretrained(tmp_path / "adajudge")
    data = tmp_path / "rm-bench-math.json"
    data.write_text(json.dumps(rm_rows(2)))
    out = tmp_path / "out.json"
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--model", str(tmp_path / "adajudge"),
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads(out.read_text())["results"]
    expected = score_rm_bench(loaders.load_rm_bench(data),
                              reward_fn_from_model(model.eval(), tiny_tokenizer(), progress=False))
    assert results["domains"]["math"]["overall"] == pytest.approx(expected["domains"]["math"]["overall"])
    assert sum(results["matrix"], []) == pytest.approx(sum(expected["matrix"], []))


def test_rewardbench_and_judgebench_with_a_generative_judge(tmp_path, tiny_backbone_path, capsys):
    """`--judge DIR`: a causal LM scored with the official pairwise protocols (a tiny random model: the
    machinery, not accuracy: 3 byte-level tokens are too few for any verdict)."""
    rb = tmp_path / "rb.json"
    rb.write_text(json.dumps([{"prompt": "q", "chosen": "yes", "rejected": "no", "subset": s, "id": i}
                              for i, s in enumerate(["alpacaeval-easy", "math-prm", "hep-go"])]))
    out = tmp_path / "rb_judge.json"
    assert main(["eval", "--benchmark", "rewardbench", "--data", str(rb), "--judge", str(tiny_backbone_path),
                 "--max-new-tokens", "3", "--prompt", "rrm", "--out", str(out), "--no-progress"]) == 0
    record = json.loads(out.read_text())
    assert record["judge_settings"] == {"max_new_tokens": 3, "temperature": 0.6, "top_p": 1.0, "num_votes": 1,
                                        "prompt": "rrm", "verdict_rule": "official", "seed": 0}
    results = record["results"]
    assert results["no_verdict"] == {"alpacaeval-easy": 1, "hep-go": 1, "math-prm": 1}
    assert results["overall"] == 50.0  # no verdict anywhere: half credit on every row
    assert "no verdict" in capsys.readouterr().out

    jb = tmp_path / "jb.jsonl"
    jb.write_text(json.dumps({"pair_id": "0", "source": "livebench-math", "question": "q", "response_A": "yes",
                              "response_B": "no", "label": "A>B"}))
    assert main(["eval", "--benchmark", "judgebench", "--data", str(jb), "--judge", str(tiny_backbone_path),
                 "--max-new-tokens", "2", "--no-progress"]) == 0
    assert "JudgeBench" in capsys.readouterr().out


def test_rm_bench_refuses_a_generative_judge(tmp_path, tiny_backbone_path, capsys):
    data = tmp_path / "rm-bench-chat.json"
    data.write_text(json.dumps(rm_rows(1)))
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--judge", str(tiny_backbone_path)]) == 2
    assert "--judge: expected a benchmark that scores pairwise judges" in capsys.readouterr().err
