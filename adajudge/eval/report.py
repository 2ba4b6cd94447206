"""What `adajudge eval` shows: rich tables of a scorer's result, laid out as each benchmark's own leaderboard
lays it out, every accuracy with its 95% interval, and the notes a reader needs to judge the numbers (chance
level, what the columns mean, how the intervals were made, when a headline is not the official one).

Column names are the result's keys (RM-Bench's `avg`, as its own results tables name the mean).
"""
from rich.table import Table

from adajudge.eval.intervals import BOOTSTRAP_NOTE, WILSON_NOTE
from adajudge.eval.judgebench import CATEGORIES
from adajudge.eval.rewardbench import SECTIONS
from adajudge.eval.rm_bench import DOMAINS, SCORES
from adajudge.validation import check_choice

# Expected score of a reward model whose rewards are random (ties never happen), and of a pairwise judge that
# always answers and picks at random, under each benchmark's rule *(ours: derived from the official rules)*.
CHANCE = {
    "rewardbench": {"model": 50.0, "judge": 50.0},
    "rm-bench": {"model": 50.0},
    # JudgeBench's judge rule needs both games to agree with the label: 1/2 x 1/2.
    "judgebench": {"model": 50.0, "judge": 25.0},
}

RM_BENCH_COLUMNS = ("RM-Bench compares 3 styles of each answer (concise, detailed, detailed with markdown): "
                    "hard = the chosen answer in a plainer style than the rejected one, normal = the same style, "
                    "easy = the chosen answer in a richer style; avg = the mean of the three")


def result_tables(benchmark: str, result: dict, *, title: str = "") -> list[Table]:
    """Tables for `result` as returned by `score_<benchmark>`; `benchmark`: rewardbench, rm-bench or judgebench."""
    return _TABLES[check_choice("benchmark", benchmark, sorted(_TABLES))](result, title)


def result_notes(benchmark: str, result: dict, *, judge: bool = False) -> list[str]:
    """The sentences printed under the tables, one per line: chance level, what RM-Bench's columns mean, the
    interval method, and a warning when RM-Bench's headline averages fewer than its four domains."""
    check_choice("benchmark", benchmark, sorted(_TABLES))
    scorer = "judge" if judge else "model"
    chance = CHANCE[benchmark][scorer]
    who = ("a judge that picks at random" if judge else "random rewards")
    notes = [f"chance: {chance:.0f} ({who}; ties count as wrong)"]
    if benchmark == "judgebench" and judge:
        notes[0] += "; a pair counts only when both orders agree with the label"
    if benchmark == "rm-bench":
        notes.append(RM_BENCH_COLUMNS)
        present = list(result.get("domains", {}))
        if len(present) < len(DOMAINS):
            covered = ", ".join(present) if present else "rows without a domain"
            notes.append(f"warning: the headline averages {len(present)} of RM-Bench's {len(DOMAINS)} domains "
                         f"({covered}); the official avg averages chat, math, code and safety, so this is not "
                         "comparable to it")
    notes.append("95% intervals: " + _interval_note(benchmark, judge))
    return notes


def _interval_note(benchmark: str, judge: bool) -> str:
    if benchmark == "judgebench":
        return WILSON_NOTE
    if benchmark == "rm-bench":
        return BOOTSTRAP_NOTE.format(stratum="domain")
    bootstrap = BOOTSTRAP_NOTE.format(stratum="subset")
    return bootstrap if judge else f"subsets: {WILSON_NOTE}; sections and overall: {bootstrap}"


def _cell(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if interval is None else f"{value:.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"


def _rewardbench(result: dict, title: str) -> list[Table]:
    ci = result.get("ci95", {})
    sections = Table(title=f"RewardBench {title}".strip())
    for column in ("overall", *SECTIONS):
        sections.add_column(column, justify="right")
    sections.add_row(*(_cell(result.get(key), ci.get(key)) for key in ("overall", *SECTIONS)))
    subsets = Table(title="RewardBench subsets")
    subsets.add_column("subset")
    subsets.add_column("accuracy [95% CI]", justify="right")
    subsets.add_column("pairs", justify="right")
    if "no_verdict" in result:
        subsets.add_column("no verdict", justify="right")
    for subset, accuracy in result["subsets"].items():
        missing = [str(result["no_verdict"][subset])] if "no_verdict" in result else []
        subsets.add_row(subset, _cell(accuracy, ci.get("subsets", {}).get(subset)), str(result["counts"][subset]),
                        *missing)
    return [sections, subsets]


def _rm_bench(result: dict, title: str) -> list[Table]:
    table = Table(title=f"RM-Bench {title}, accuracy [95% CI]".strip())
    for column in ("domain", *SCORES, "rows"):
        table.add_column(column, justify="left" if column == "domain" else "right")
    for domain, scores in result.get("domains", {}).items():
        table.add_row(domain, *_rm_bench_cells(scores), str(result["counts"][domain]))
    if "domains" in result:
        table.add_row("all rows pooled", *_rm_bench_cells(result["pooled"]), str(result["counts"]["all"]))
        table.add_row("mean of domains (headline)", *_rm_bench_cells(result), str(result["counts"]["all"]),
                      style="bold")
    else:
        table.add_row("all rows", *_rm_bench_cells(result), str(result["counts"]["all"]), style="bold")
    return [table]


def _rm_bench_cells(scores: dict) -> list[str]:
    return [_cell(scores[key], scores.get("ci95", {}).get(key)) for key in SCORES]


def _judgebench(result: dict, title: str) -> list[Table]:
    ci = result.get("ci95", {})
    table = Table(title=f"JudgeBench {title}".strip())
    table.add_column("category")
    table.add_column("accuracy [95% CI]", justify="right")
    table.add_column("pairs", justify="right")
    for category in (*CATEGORIES, "overall"):
        if category in result:
            table.add_row(category, _cell(result[category], ci.get(category)), str(result["counts"][category]),
                          style="bold" if category == "overall" else None)
    return [table]


_TABLES = {"rewardbench": _rewardbench, "rm-bench": _rm_bench, "judgebench": _judgebench}
