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
    assert results["counts"] == {"all": 5, "chat": 3, "safety": 2}

    model = LlamaForSequenceClassification.from_pretrained(model_dir)
    rows = loaders.load_rm_bench(chat) + loaders.load_rm_bench(refuse)
    expected = score_rm_bench(rows, reward_fn_from_model(model, tiny_tokenizer(), progress=False))
    assert results["avg"] == pytest.approx(expected["avg"])
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
    assert results["domains"]["math"]["avg"] == pytest.approx(expected["domains"]["math"]["avg"])
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


def test_limit_is_a_seeded_recorded_sample_and_the_json_records_every_setting(tmp_path, model_dir, capsys, recwarn):
    data = tmp_path / "rm-bench-chat.json"
    data.write_text(json.dumps(rm_rows(12)))
    records, printed = [], []
    for seed in (0, 0, 1):
        out = tmp_path / f"limit-{len(records)}.json"
        assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--model", str(model_dir), "--limit", "5",
                     "--seed", str(seed), "--max-length", "8", "--batch-size", "3", "--out", str(out),
                     "--no-progress"]) == 0
        records.append(json.loads(out.read_text()))
        printed.append(capsys.readouterr().out)
    first = records[0]
    assert first["settings"] == {"max_length": 8, "batch_size": 3, "dtype": "float32", "device": "cpu", "limit": 5,
                                 "seed": 0, "rows": 5, "rows_in_data": 12}
    assert first["model"] == first["tokenizer"] == str(model_dir) and first["data"] == [str(data)]
    assert set(first["versions"]) == {"adajudge", "torch", "transformers"}
    assert first["results"]["counts"] == {"all": 5, "chat": 5}
    # 5 rows x 6 responses; "right answer 3" is 14 byte-level tokens (plus the template's), more than 8
    assert first["truncation"]["responses"] == 30 and 0 < first["truncation"]["truncated"] <= 30
    assert first["results"] == records[1]["results"]  # the same seed draws the same rows
    samples = [[line for line in text.splitlines() if line.startswith("sample:")] for text in printed]
    assert samples[0] == samples[1] == ["sample: 5 of 12 rows, drawn at random with --seed 0 (--limit 5); the "
                                        "intervals reflect the sample size"]
    assert samples[2][0].startswith("sample: 5 of 12 rows, drawn at random with --seed 1")
    [truncation] = [line for line in printed[0].splitlines() if line.startswith("truncation:")]
    assert truncation.endswith("were scored on their last 8 tokens (as the official scripts truncate from the left)")
    assert not [warning for warning in recwarn if "max_length" in str(warning.message)]  # one line, no UserWarning


def test_the_report_states_chance_the_columns_the_intervals_and_a_partial_headline(tmp_path, model_dir, capsys):
    data = tmp_path / "rm-bench-chat.json"
    data.write_text(json.dumps(rm_rows(4)))
    out = tmp_path / "out.json"
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--model", str(model_dir), "--out", str(out),
                 "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "chance: 50 (random rewards; ties count as wrong)" in lines
    assert any(line.startswith("RM-Bench compares 3 styles") and "hard = the chosen answer in a plainer style" in line
               for line in lines)
    assert ("warning: the headline averages 1 of RM-Bench's 4 domains (chat); the official avg averages chat, math, "
            "code and safety, so this is not comparable to it") in lines
    assert any(line.startswith("95% intervals: percentile bootstrap over rows") for line in lines)
    header = next(line for line in lines if "hard" in line and "normal" in line)
    assert " avg " in header and "overall" not in header  # the column is the JSON key
    results = json.loads(out.read_text())["results"]
    low, high = results["ci95"]["avg"]
    assert low <= results["avg"] <= high and "overall" not in results
    assert json.loads(out.read_text())["notes"][1].startswith("RM-Bench compares")


def test_an_adajudge_train_output_folder_scores_its_model(tmp_path, model_dir, capsys):
    import shutil

    run = tmp_path / "runs" / "adajudge"
    shutil.copytree(model_dir, run / "model")
    data = tmp_path / "rm-bench-chat.json"
    data.write_text(json.dumps(rm_rows(2)))
    out = tmp_path / "out.json"
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--model", str(run), "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads(out.read_text())["model"] == str(run / "model")
    assert f"--model {run}: an `adajudge train` output folder; scoring the model it saved" in capsys.readouterr().out
    assert main(["eval", "--benchmark", "rm-bench", "--data", str(data), "--model", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("adajudge eval: error: --model: expected a save_pretrained folder with a config.json")


@pytest.mark.parametrize("argv, message", [
    (["eval", "--benchmark", "rm-bench", "--data", "missing.json", "--model", "."],
     "adajudge eval: error: path: expected an existing benchmark file, got missing.json (not found)"),
    (["eval", "--benchmark", "rm-bench", "--data", "DATA", "--model", "MODEL", "--limit", "0"],
     "adajudge eval: error: --limit: expected an int >= 1, got 0"),
    (["train", "--data", "missing.jsonl", "--backbone", "tiny", "--output-dir", "out"], "adajudge train: error: "),
    (["judge", "--data", "missing.jsonl"], "adajudge judge: error: "),
    (["train", "--data", "DATA", "--backbone", "no/such/folder", "--output-dir", "out"],
     "adajudge train: error: backbone: expected 'smollm2', 'tiny' or a checkpoint folder, got 'no/such/folder'"),
])
def test_cli_errors_are_one_line_with_exit_status_2(tmp_path, model_dir, capsys, monkeypatch, argv, message):
    data = tmp_path / "rm-bench-chat.json"
    data.write_text(json.dumps(rm_rows(2)))
    monkeypatch.chdir(tmp_path)
    argv = [str(data) if a == "DATA" else str(model_dir) if a == "MODEL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == err.splitlines()[-1] and errors[0].startswith(message)
