"""Printing rich tables that a log keeps whole.

On a terminal rich fits a table to the window, folding long cells. Written to a file or a pipe (a CI log,
`adajudge eval ... > log`), rich assumes 80 columns and cuts every cell that does not fit to `mult…`;
`print_table` then gives the table the width it needs, so a log shows every name and number in full.
"""
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Print `table` on `console`: fitted to a terminal, at its natural width anywhere else."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(1_000_000), table).maximum
    # `console.print(width=...)` cannot widen past the console's own width: print through a wider console.
    Console(file=console.file, width=max(natural, console.width), no_color=console.no_color).print(table)


def print_note(console: Console, text: str, *, style: str | None = None) -> None:
    """Print a sentence on one line: no markup, no highlighting, and no wrapping in a log (a terminal wraps
    it at word boundaries)."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=not console.is_terminal)
