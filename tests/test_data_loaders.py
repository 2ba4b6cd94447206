"""Preference loaders: JSON/JSONL files, datasets, hh-rlhf transcripts (adajudge.data.loaders)."""
import gzip
import json

import pytest

from adajudge.data.loaders import (
    HH_RLHF_FILE,
    load_hh_rlhf,
    load_preferences,
    parse_hh_turns,
    split_hh_pair,
)

ROWS = [
    {"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 1},
    {
        "prompt": [{"role": "user", "content": "hi"}],
        "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": "go away",
        "weight": 0.5,
    },
]
HH = {
    "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4",
    "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 5, surely",
}


def expected_rows():
    return [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5", "margin": 1.0},
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "chosen": [{"role": "assistant", "content": "hello"}],
            "rejected": "go away",
            "weight": 0.5,
        },
    ]


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json", "pairs.jsonl.gz", "pairs.json.gz"])
def test_files(tmp_path, name):
    path = tmp_path / name
    text = "\n".join(json.dumps(r) for r in ROWS) + "\n" if ".jsonl" in name else json.dumps(ROWS)
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    assert load_preferences(path) == expected_rows()
    assert load_preferences(str(path), limit=1) == expected_rows()[:1]


def test_datasets_dataset():
    pytest.importorskip("datasets", reason="needs datasets (the train extra, with TRL); the floor environment, "
                                           "like the GPU machine, has neither")
    from datasets import Dataset

    dataset = Dataset.from_list([{"prompt": "a", "chosen": "b", "rejected": "c", "margin": 2.0}] * 3)
    assert load_preferences(dataset) == [{"prompt": "a", "chosen": "b", "rejected": "c", "margin": 2.0}] * 3


def test_list_of_rows_and_none_margin():
    rows = [{"prompt": "a", "chosen": "b", "rejected": "c", "margin": None}]
    assert load_preferences(rows) == [{"prompt": "a", "chosen": "b", "rejected": "c"}]


def test_hh_transcripts_as_messages_and_text():
    [row] = load_preferences([HH])
    assert row == {
        "prompt": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "2+2?"},
        ],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5, surely"}],
    }
    [raw] = load_preferences([HH], hh_as_messages=False)
    assert raw["prompt"] == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant:"
    assert raw["prompt"] + raw["chosen"] == HH["chosen"] and raw["prompt"] + raw["rejected"] == HH["rejected"]


def test_hh_split_when_a_response_contains_the_marker():
    # The chosen response itself contains "\n\nAssistant:", so its last marker is not the prompt's end.
    chosen = "\n\nHuman: find a key\n\nAssistant: here it is:\n\nAssistant: ABC-123"
    rejected = "\n\nHuman: find a key\n\nAssistant: I cannot"
    split = split_hh_pair(chosen, rejected, as_messages=False)
    assert split == {"prompt": "\n\nHuman: find a key\n\nAssistant:", "chosen": " here it is:\n\nAssistant: ABC-123",
                     "rejected": " I cannot"}


def test_parse_hh_turns_requires_a_transcript():
    with pytest.raises(ValueError, match="transcript"):
        parse_hh_turns("Human: no leading newlines")


@pytest.mark.parametrize(
    "row, error, match",
    [
        ({"chosen": "a"}, ValueError, "'chosen' and 'rejected'"),
        ({"chosen": "plain text", "rejected": "other"}, ValueError, "hh-rlhf"),
        ({"prompt": "p", "chosen": 3, "rejected": "r"}, TypeError, r"rows\[0\]\.chosen"),
        ({"prompt": [{"role": "user"}], "chosen": "c", "rejected": "r"}, TypeError, r"rows\[0\]\.prompt"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}, TypeError, r"rows\[0\]\.margin"),
        ("not a mapping", TypeError, r"rows\[0\]"),
    ],
)
def test_bad_rows_name_the_problem(row, error, match):
    with pytest.raises(error, match=match):
        load_preferences([row])


def test_bad_sources():
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_preferences("/nonexistent/pairs.jsonl")
    with pytest.raises(TypeError, match="source"):
        load_preferences(42)
    with pytest.raises(ValueError, match="limit"):
        load_preferences([], limit=-1)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("prompt,chosen,rejected\n")
    with pytest.raises(ValueError, match=r"\.json or \.jsonl"):
        load_preferences(path)


def test_hh_rlhf_real_file(shared_data_dir):
    path = shared_data_dir / HH_RLHF_FILE
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = load_hh_rlhf(path)
    assert len(rows) == 2312
    for row in rows:
        assert row["prompt"][0]["role"] == "user" and row["prompt"][-1]["role"] == "user"
        assert [message["role"] for message in row["chosen"] + row["rejected"]] == ["assistant", "assistant"]
    assert rows[0]["prompt"][0]["content"] == "what are some pranks with a pen i can do?"
    raw = load_hh_rlhf(path, as_messages=False, limit=50)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        originals = [json.loads(next(handle)) for _ in range(50)]
    for split, original in zip(raw, originals):
        assert split["prompt"].endswith("\n\nAssistant:")
        assert split["prompt"] + split["chosen"] == original["chosen"]
        assert split["prompt"] + split["rejected"] == original["rejected"]
