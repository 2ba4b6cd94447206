"""Rich tables of a scorer's result, laid out as each benchmark's own leaderboard lays it out."""
from rich.table import Table

from adajudge.eval.judgebench import CATEGORIES
from adajudge.eval.rewardbench import SECTIONS


def result_tables(benchmark: str, result: dict, *, title: str = "") -> list[Table]:
    """Tables for `result` as returned by `score_<benchmark>`; `benchmark`: rewardbench, rm-bench or judgebench."""
    if benchmark not in _TABLES:
        raise ValueError(f"benchmark must be one of {sorted(_TABLES)}, got {benchmark!r}")
    return _TABLES[benchmark](result, title)


def _rewardbench(result: dict, title: str) -> list[Table]:
    sections = Table(title=f"RewardBench {title}".strip())
    for column in ("Score", *SECTIONS):
        sections.add_column(column, justify="right")
    sections.add_row(_pct(result["overall"]), *(_pct(result.get(section)) for section in SECTIONS))
    subsets = Table(title="RewardBench subsets")
    subsets.add_column("subset")
    subsets.add_column("accuracy", justify="right")
    subsets.add_column("pairs", justify="right")
    for subset, accuracy in result["subsets"].items():
        subsets.add_row(subset, _pct(accuracy), str(result["counts"][subset]))
    return [sections, subsets]


def _rm_bench(result: dict, title: str) -> list[Table]:
    table = Table(title=f"RM-Bench {title}".strip())
    for column in ("domain", "hard", "normal", "easy", "avg", "rows"):
        table.add_column(column, justify="left" if column == "domain" else "right")
    for domain, scores in result.get("domains", {}).items():
        table.add_row(domain, *_rm_bench_cells(scores), str(result["counts"][domain]))
    table.add_row("all rows", *_rm_bench_cells(result), str(result["counts"]["overall"]), style="bold")
    if "domains" in result:
        table.caption = "all rows: hard / normal / easy over the pooled rows; avg = mean of the domains' avg"
    return [table]


def _rm_bench_cells(scores: dict) -> list[str]:
    return [_pct(scores[key]) for key in ("hard", "normal", "easy", "overall")]


def _judgebench(result: dict, title: str) -> list[Table]:
    table = Table(title=f"JudgeBench {title}".strip())
    table.add_column("category")
    table.add_column("accuracy", justify="right")
    table.add_column("pairs", justify="right")
    for category in (*CATEGORIES, "overall"):
        if category in result:
            table.add_row(category, _pct(result[category]), str(result["counts"][category]),
                          style="bold" if category == "overall" else None)
    return [table]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


_TABLES = {"rewardbench": _rewardbench, "rm-bench": _rm_bench, "judgebench": _judgebench}
