"""Input checks shared by the benchmark scorers: rows, text fields, batch size.

Every check raises `TypeError` or `ValueError` naming the argument (`rows[3]['chosen']`), what was expected
and what came, so a malformed benchmark file fails at the row that is wrong, before any model is run.
"""
from collections.abc import Iterable, Mapping


def as_rows(rows) -> list[Mapping]:
    """`rows` as a non-empty list of mappings; raises on anything else."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be a list of dicts (one per benchmark example), got {type(rows).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one example, got an empty list")
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{index}] must be a dict, got {type(row).__name__}")
    return rows


def text_field(row: Mapping, index: int, key: str) -> str:
    """`row[key]`, which must be a `str`."""
    if key not in row:
        raise ValueError(f"rows[{index}] has no {key!r} field (fields present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, str):
        raise TypeError(f"rows[{index}][{key!r}] must be a str, got {type(value).__name__}")
    return value


def text_list_field(row: Mapping, index: int, key: str, length: int) -> list[str]:
    """`row[key]`, which must be a list (or tuple) of exactly `length` strings."""
    if key not in row:
        raise ValueError(f"rows[{index}] has no {key!r} field (fields present: {sorted(row)})")
    value = row[key]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"rows[{index}][{key!r}] must be a list of {length} str, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"rows[{index}][{key!r}] must hold {length} responses, got {len(value)}")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"rows[{index}][{key!r}][{position}] must be a str, got {type(item).__name__}")
    return list(value)


def check_batch_size(batch_size) -> int:
    """`batch_size` as a positive `int` (bools refused)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be a positive int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}")
    return batch_size
