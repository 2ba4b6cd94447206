"""Row checks shared by the benchmark scorers: the rows container and the text fields of each row.

Every check raises `TypeError` or `ValueError` in the library's message style (`adajudge.validation`),
naming the row and field that is wrong (`rows[3]['chosen']: expected a str, got int`), so a malformed
benchmark file fails at the row that is wrong, before any model is run.
"""
from collections.abc import Iterable, Mapping


def as_rows(rows) -> list[Mapping]:
    """`rows` as a non-empty list of mappings; raises on anything else."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise TypeError(f"rows: expected a list of dicts (one per benchmark example), got {type(rows).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows: expected at least one example, got an empty list")
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{index}]: expected a dict, got {type(row).__name__}")
    return rows


def field(row: Mapping, index: int, key: str):
    """`row[key]`; raises when the row has no such field."""
    if key not in row:
        raise ValueError(f"rows[{index}]: expected a {key!r} field, got only the fields {sorted(row)}")
    return row[key]


def text_field(row: Mapping, index: int, key: str) -> str:
    """`row[key]`, which must be a `str`."""
    value = field(row, index, key)
    if not isinstance(value, str):
        raise TypeError(f"rows[{index}][{key!r}]: expected a str, got {type(value).__name__}")
    return value


def text_list_field(row: Mapping, index: int, key: str, length: int) -> list[str]:
    """`row[key]`, which must be a list (or tuple) of exactly `length` strings."""
    value = field(row, index, key)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"rows[{index}][{key!r}]: expected a list of {length} str, got {type(value).__name__}")
    if len(value) != length:
        raise ValueError(f"rows[{index}][{key!r}]: expected a list of {length} responses, got {len(value)}")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"rows[{index}][{key!r}][{position}]: expected a str, got {type(item).__name__}")
    return list(value)
