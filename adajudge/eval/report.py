"""Rich tables of a scorer's result, laid out as each benchmark's own leaderboard lays it out."""
from rich.table import Table

from adajudge.eval.judgebench import CATEGORIES
from adajudge.eval.rewardbench import SECTIONS
from adajudge.validation import check_choice


def result_tables(benchmark: str, result: dict, *, title: str = "") -> list[Table]:
    """Tables for `result` as returned by `score_<benchmark>`; `benchmark`: rewardbench, rm-bench or judgebench."""
    return _TABLES[check_choice("benchmark", benchmark, sorted(_TABLES))](result, title)


def _rewardbench(result: dict, title: str) -> list[Table]:
    sections = Table(title=f"RewardBench {title}".strip())
    for column in ("Score", *SECTIONS):
        sections.add_column(column, justify="right")
    sections.add_row(_pct(result["overall"]), *(_pct(result.get(section)) for section in SECTIONS))
    subsets = Table(title="RewardBench subsets")
    subsets.add_column("subset")
    subsets.add_column("accuracy", justify="right")
    subsets.add_column("pairs", justify="right")
    if "no_verdict" in result:
        subsets.add_column("no verdict", justify="right")
    for subset, accuracy in result["subsets"].items():
        missing = [str(result["no_verdict"][subset])] if "no_verdict" in result else []
        subsets.add_row(subset, _pct(accuracy), str(result["counts"][subset]), *missing)
    return [sections, subsets]


def _rm_bench(result: dict, title: str) -> list[Table]:
    table = Table(title=f"RM-Bench {title}".strip())
    for column in ("domain", "hard", "normal", "easy", "avg", "rows"):
        table.add_column(column, justify="left" if column == "domain" else "right")
    for domain, scores in result.get("domains", {}).items():
        table.add_row(domain, *_rm_bench_cells(scores), str(result["counts"][domain]))
    if "domains" in result:
        table.add_row("all rows pooled", *_rm_bench_cells(result["pooled"]), str(result["counts"]["overall"]))
        table.add_row("mean of domains", *_rm_bench_cells(result), str(result["counts"]["overall"]), style="bold")
        table.caption = "headline: hard / normal / easy / avg are each the mean over the domains"
    else:
        table.add_row("all rows", *_rm_bench_cells(result), str(result["counts"]["overall"]), style="bold")
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
