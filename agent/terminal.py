"""Terminal output shared by both command lines: a table read by a person or piped into a
file or another program is whole. On a terminal, rich fits it to the window, wrapping long
cells; piped, nothing is cut ('s-ad…') and nothing wraps mid-address."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

PIPED_WIDTH = 10_000  # piped output has no window: as wide as the table needs
NO_WRAP = frozenset({"address", "addresses", "MAC", "mac", "id", "sensor", "ip"})


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, soft_wrap=False)
    return Console(stderr=stderr, width=PIPED_WIDTH, soft_wrap=False)


def table(title: str, columns: tuple[str, ...]) -> Table:
    """A table whose address and MAC columns never wrap; other cells wrap (never cut)."""
    made = Table(title=title)
    for column in columns:
        if column in NO_WRAP:
            made.add_column(column, no_wrap=True)
        else:
            made.add_column(column, overflow="fold")
    return made


EXIT_CODES = ("exit codes: 0 done; 1 failed (a scan, a delivery, a database); 2 usage or "
              "configuration error (the message says which); 3 refused: a plan or command "
              "that does not verify; 130 interrupted")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("netvagt")
    except PackageNotFoundError:
        return "unknown (not installed)"


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse with the errors of a subcommand shown with that subcommand's usage (argparse
    reports an unknown option of a subcommand with the top-level usage)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        leaf = getattr(args, "_parser", parser)
        leaf.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
