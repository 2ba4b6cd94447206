"""Load preference pairs into one shape: `{"prompt", "chosen", "rejected"[, "margin", "weight"]}`.

Sources: JSONL or JSON files (optionally `.gz`), a `datasets.Dataset`, or any iterable of mappings. Each
row is either explicit (`prompt`, `chosen`, `rejected` as strings or chat-message lists, optional numeric
`margin` and `weight`) or an Anthropic hh-rlhf transcript pair (`chosen`, `rejected` whole transcripts
`"\\n\\nHuman: …\\n\\nAssistant: …"`, no `prompt`).

hh-rlhf split *(ours, where the format is ambiguous)*: the prompt is everything up to the last
`"\\n\\nAssistant:"` that lies in the common prefix of the two transcripts. For ordinary rows this is the
last `"\\n\\nAssistant:"` of either transcript; for the few rows whose response itself contains the marker
(5 of 2,312 in harmless-base test) it is the last turn both transcripts share.
"""
from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
HH_RLHF_FILE = "hh-rlhf-harmless-base-test.jsonl.gz"
# Files of public datasets by name -> the dataset's Hugging Face Hub id, for model cards' `datasets`.
HUB_DATASETS = {HH_RLHF_FILE: "Anthropic/hh-rlhf"}
_TURN = re.compile(r"\n\n(Human|Assistant):")


def default_data_dir() -> Path:
    """The shared data folder: `$ADAJUDGE_DATA`, else `<repo>/../shared/data` (it may not exist)."""
    env = os.environ.get("ADAJUDGE_DATA")
    if env:
        return Path(env).expanduser()
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


def _read_rows(path: Path) -> list:
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.with_suffix("") if path.suffix == ".gz" else path
    with opener(path, "rt", encoding="utf-8") as handle:
        if stem.suffix == ".jsonl":
            return [json.loads(line) for line in handle if line.strip()]
        if stem.suffix == ".json":
            data = json.load(handle)
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
            return data
    raise ValueError(f"path: expected a .json or .jsonl file (optionally .gz), got {path.name!r}")


def parse_hh_turns(transcript: str) -> list[dict[str, str]]:
    """Chat messages of an hh-rlhf transcript: Human -> "user", Assistant -> "assistant", content stripped.

    Args:
        transcript: text of the form `"\\n\\nHuman: …\\n\\nAssistant: …"`.

    Raises:
        ValueError: the transcript does not start with `"\\n\\nHuman:"`.
    """
    if not transcript.startswith(HUMAN):
        raise ValueError(f"transcript: expected text starting with {HUMAN!r}, got {transcript[:40]!r}")
    parts = _TURN.split(transcript)
    # parts = ["", "Human", text, "Assistant", text, ...]
    return [
        {"role": "user" if speaker == "Human" else "assistant", "content": text.strip()}
        for speaker, text in zip(parts[1::2], parts[2::2])
    ]


def split_hh_pair(chosen: str, rejected: str, *, as_messages: bool = True) -> dict:
    """Split an hh-rlhf transcript pair into prompt, chosen and rejected (rule in the module docstring).

    Args:
        chosen, rejected: whole transcripts.
        as_messages: True gives TRL's conversational format (for tokenizers with a chat template): the prompt
            as chat messages and each response as one assistant message with the stripped text; False keeps
            TRL's standard format, raw text: the prompt ends with `"\\n\\nAssistant:"` and each response is
            the text after it. Either way the three fields have one format, which plain `trl.RewardTrainer`
            requires.

    Raises:
        ValueError: the transcripts share no `"\\n\\nAssistant:"` turn.
    """
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        raise ValueError(
            f"chosen/rejected: expected hh-rlhf transcripts sharing a {ASSISTANT!r} turn, got none in their "
            f"common prefix {common[:80]!r}"
        )
    end = cut + len(ASSISTANT)
    prompt, chosen_response, rejected_response = chosen[:end], chosen[end:], rejected[end:]
    if not as_messages:
        return {"prompt": prompt, "chosen": chosen_response, "rejected": rejected_response}
    return {
        "prompt": parse_hh_turns(chosen[:cut]),
        "chosen": [{"role": "assistant", "content": chosen_response.strip()}],
        "rejected": [{"role": "assistant", "content": rejected_response.strip()}],
    }


def _check_text(name: str, value) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, Sequence) and all(
        isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    ):
        return
    raise TypeError(f"{name}: expected a str or a list of {{'role': str, 'content': str}} messages, got {value!r:.120}")


def normalize_example(row: Mapping, *, index: int = 0, hh_as_messages: bool = True) -> dict:
    """One row in the common shape; an hh-rlhf transcript pair (no `prompt`) is split with `split_hh_pair`.

    Returns:
        `{"prompt", "chosen", "rejected"}` plus `margin`/`weight` as float when present and not None.
    """
    if not isinstance(row, Mapping):
        raise TypeError(f"rows[{index}]: expected a mapping, got {type(row).__name__}")
    if "chosen" not in row or "rejected" not in row:
        raise ValueError(f"rows[{index}]: expected keys 'chosen' and 'rejected', got {sorted(row)}")
    if "prompt" in row and row["prompt"] is not None:
        example = {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
    elif isinstance(row["chosen"], str) and isinstance(row["rejected"], str):
        try:
            example = split_hh_pair(row["chosen"], row["rejected"], as_messages=hh_as_messages)
        except ValueError as error:
            raise ValueError(f"rows[{index}]: no 'prompt' and not an hh-rlhf transcript pair: {error}") from None
    else:
        raise ValueError(f"rows[{index}]: no 'prompt', and chosen/rejected are not hh-rlhf transcript strings")
    for key in ("prompt", "chosen", "rejected"):
        _check_text(f"rows[{index}].{key}", example[key])
    for key in ("margin", "weight"):
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"rows[{index}].{key}: expected a number, got {value!r}")
        example[key] = float(value)
    return example


def load_preferences(source, *, hh_as_messages: bool = True, limit: int | None = None) -> list[dict]:
    """Load preference pairs from a file, a `datasets.Dataset` or an iterable of mappings.

    Args:
        source: path to `.jsonl`/`.json` (optionally `.gz`), a `datasets.Dataset`, or an iterable of rows.
        hh_as_messages: for hh-rlhf transcripts, prompt and responses as chat messages (True) or raw text
            (False); see `split_hh_pair`.
        limit: keep only the first `limit` rows, or None for all.

    Returns:
        A list of `{"prompt", "chosen", "rejected"[, "margin", "weight"]}` dicts, in source order.

    Example:
        >>> pairs = load_preferences(default_data_dir() / HH_RLHF_FILE, limit=64)  # doctest: +SKIP
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit: expected None or an int >= 0, got {limit!r}")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"source: no such file {str(path)!r}")
        rows: Iterable = _read_rows(path)
    elif isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise TypeError(
            f"source: expected a path, a datasets.Dataset or an iterable of rows, got {type(source).__name__}"
        )
    else:
        rows = source
    out = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        out.append(normalize_example(row, index=index, hh_as_messages=hh_as_messages))
    return out


def hub_dataset_id(path: str | os.PathLike) -> str | None:
    """The Hub id of the public dataset a file of that name holds (`HUB_DATASETS`), or None."""
    return HUB_DATASETS.get(Path(path).name)


def load_hh_rlhf(path: str | os.PathLike | None = None, *, as_messages: bool = True, limit: int | None = None):
    """The hh-rlhf harmless-base test pairs (`default_data_dir()/hh-rlhf-harmless-base-test.jsonl.gz` by default).

    Raises:
        FileNotFoundError: the file is absent (the shared data folder is not next to the repository).
    """
    path = Path(path) if path is not None else default_data_dir() / HH_RLHF_FILE
    return load_preferences(path, hh_as_messages=as_messages, limit=limit)
