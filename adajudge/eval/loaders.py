"""Read RewardBench, RM-Bench and JudgeBench files from a path into the rows the scorers take.

Formats (see `../shared/data/README.md`): a JSON list of objects, or JSON Lines (one object per line);
either may be gzip-compressed (`.gz`). The loaders check that each row has the benchmark's fields, so a
wrong file fails here with its path and row number; they keep every field as it is.
"""
import gzip
import json
import os
import re
from pathlib import Path

from adajudge.validation import check_str

RM_BENCH_DOMAINS: tuple[str, ...] = ("safety-refuse", "safety-response", "chat", "code", "math")

REWARDBENCH_FIELDS = ("prompt", "chosen", "rejected", "subset")
RM_BENCH_FIELDS = ("prompt", "chosen", "rejected")
JUDGEBENCH_FIELDS = ("question", "response_A", "response_B", "label", "source")

_DOMAIN_IN_NAME = re.compile(r"(?<![a-z])(" + "|".join(d.replace("-", "[-_]") for d in RM_BENCH_DOMAINS) + r")(?![a-z])")


def read_records(path: str | os.PathLike) -> list[dict]:
    """Every object in a JSON-list or JSON-Lines file (optionally `.gz`), in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected an existing benchmark file, got {path} (not found)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: expected a JSON object, got text that is not valid "
                                     f"JSON ({error.msg})") from error
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{path}, record {index}: expected a JSON object, got {type(record).__name__}")
    if not records:
        raise ValueError(f"{path}: expected at least one record, got no records")
    return records


def load_rewardbench(path: str | os.PathLike) -> list[dict]:
    """RewardBench rows (`prompt`, `chosen`, `rejected`, `subset`, usually `id`) from a JSON/JSONL file."""
    return _with_fields(read_records(path), REWARDBENCH_FIELDS, path)


def load_rm_bench(path: str | os.PathLike, domain: str | None = None) -> list[dict]:
    """RM-Bench rows (`id`, `prompt`, `chosen [3]`, `rejected [3]`) with a `domain` field where known.

    The domain is, in order of precedence: the `domain` argument; the row's own `domain` field (as in the
    official `total_dataset.json`); the domain named in the file name (`rm-bench-chat.json`,
    `safety-refuse_filtered.json`, ...: one of `RM_BENCH_DOMAINS`). When none applies the rows get no domain.
    """
    rows = _with_fields(read_records(path), RM_BENCH_FIELDS, path)
    if domain is not None:
        if not check_str("domain", domain):
            raise ValueError("domain: expected a non-empty str, got ''")
        return [{**row, "domain": domain} for row in rows]
    inferred = rm_bench_domain_from_name(path)
    if inferred is None:
        return rows
    return [row if "domain" in row else {**row, "domain": inferred} for row in rows]


def load_judgebench(path: str | os.PathLike) -> list[dict]:
    """JudgeBench rows (`pair_id`, `source`, `question`, `response_A`, `response_B`, `label`) from JSONL."""
    return _with_fields(read_records(path), JUDGEBENCH_FIELDS, path)


def rm_bench_domain_from_name(path: str | os.PathLike) -> str | None:
    """The RM-Bench domain a file name names (`rm-bench-safety-refuse.json` -> `safety-refuse`), or None."""
    found = {match.replace("_", "-") for match in _DOMAIN_IN_NAME.findall(Path(path).name.lower())}
    if len(found) > 1:
        raise ValueError(f"path: expected a file name naming at most one RM-Bench domain (or pass domain=), "
                         f"got {Path(path).name!r}, which names several RM-Bench domains {sorted(found)}")
    return found.pop() if found else None


def _with_fields(records: list[dict], fields: tuple[str, ...], path) -> list[dict]:
    for index, record in enumerate(records):
        missing = [field for field in fields if field not in record]
        if missing:
            raise ValueError(f"{path}, record {index}: expected the fields {list(fields)}, got {sorted(record)}, "
                             f"which lacks {missing}")
    return records
