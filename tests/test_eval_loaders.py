"""Benchmark file loaders: JSON list, JSON Lines, gzip, RM-Bench domains, errors; and the real shared files."""
import gzip
import json
import os
from pathlib import Path

import pytest

from adajudge.eval import loaders


def data_dir() -> Path:
    return Path(os.environ.get("ADAJUDGE_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


def real_file(name: str) -> Path:
    path = data_dir() / name
    if not path.is_file():
        pytest.skip(f"benchmark file {path} absent (set ADAJUDGE_DATA to the shared data folder)")
    return path


RB_ROWS = [{"prompt": "p1", "chosen": "c1", "rejected": "r1", "subset": "math-prm", "id": 1},
           {"prompt": "p2", "chosen": "c2", "rejected": "r2", "subset": "hep-go", "id": 2}]
RM_ROW = {"id": 7, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}


def write(path: Path, rows, fmt: str) -> Path:
    text = json.dumps(rows) if fmt == "json" else "\n".join(json.dumps(row) for row in rows) + "\n\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, fmt", [("rb.json", "json"), ("rb.jsonl", "jsonl"), ("rb.jsonl.gz", "jsonl"),
                                       ("rb.json.gz", "json")])
def test_rewardbench_json_jsonl_and_gzip(tmp_path, name, fmt):
    assert loaders.load_rewardbench(write(tmp_path / name, RB_ROWS, fmt)) == RB_ROWS


@pytest.mark.parametrize("name, domain", [
    ("rm-bench-chat.json", "chat"), ("rm-bench-safety-refuse.json", "safety-refuse"),
    ("safety-response_filtered.json", "safety-response"), ("code_filtered.json", "code"),
    ("rm_bench_math.jsonl", "math"), ("RM-Bench-Safety_Refuse.json", "safety-refuse"),
])
def test_rm_bench_domain_from_file_name(tmp_path, name, domain):
    rows = loaders.load_rm_bench(write(tmp_path / name, [RM_ROW], "json"))
    assert rows == [{**RM_ROW, "domain": domain}]


def test_rm_bench_domain_precedence(tmp_path):
    path = write(tmp_path / "total_dataset.json", [{**RM_ROW, "domain": "math"}, RM_ROW], "json")
    assert loaders.rm_bench_domain_from_name(path) is None
    assert [row.get("domain") for row in loaders.load_rm_bench(path)] == ["math", None]
    assert [row["domain"] for row in loaders.load_rm_bench(path, domain="code")] == ["code", "code"]
    named = write(tmp_path / "rm-bench-chat.json", [{**RM_ROW, "domain": "math"}], "json")
    assert loaders.load_rm_bench(named)[0]["domain"] == "math"  # the row's own field beats the name


def test_rm_bench_ambiguous_name_raises(tmp_path):
    path = write(tmp_path / "chat-vs-math.json", [RM_ROW], "json")
    with pytest.raises(ValueError, match=r"path: expected a file name naming at most one RM-Bench domain .*names several"):
        loaders.load_rm_bench(path)
    assert loaders.load_rm_bench(path, domain="chat")[0]["domain"] == "chat"


def test_missing_fields_name_the_file_and_record(tmp_path):
    path = write(tmp_path / "jb.jsonl", [{"question": "q", "response_A": "a"}], "jsonl")
    with pytest.raises(ValueError,
                       match=r"jb\.jsonl, record 0: expected the fields .* lacks \['response_B', 'label', 'source'\]"):
        loaders.load_judgebench(path)


def test_bad_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path: expected an existing benchmark file, got .*nope\.json \(not found\)"):
        loaders.load_rewardbench(tmp_path / "nope.json")
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: expected a JSON object, got text that is not valid JSON"):
        loaders.read_records(bad_line)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="expected at least one record, got no records"):
        loaders.read_records(empty)
    scalars = tmp_path / "scalars.json"
    scalars.write_text("[1, 2]")
    with pytest.raises(ValueError, match="record 0: expected a JSON object, got int"):
        loaders.read_records(scalars)


def test_real_judgebench_file():
    rows = loaders.load_judgebench(real_file("judgebench-gpt-4o.jsonl"))
    assert len(rows) == 350
    assert {row["label"] for row in rows} == {"A>B", "B>A"}
    prefixes = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
    assert all(row["source"].startswith(prefixes) for row in rows)


@pytest.mark.parametrize("name, count, domain", [("rm-bench-chat.json", 129, "chat"),
                                                 ("rm-bench-safety-refuse.json", 284, "safety-refuse")])
def test_real_rm_bench_files(name, count, domain):
    rows = loaders.load_rm_bench(real_file(name))
    assert len(rows) == count
    assert {row["domain"] for row in rows} == {domain}
    assert all(len(row["chosen"]) == 3 and len(row["rejected"]) == 3 for row in rows)
