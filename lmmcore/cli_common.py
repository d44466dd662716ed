"""What the ``lmmcore`` subcommands share: the parser, argument types, and the way messages reach stderr.

:mod:`lmmcore.cli` (``fit``, ``simulate``, the entry point) and
:mod:`lmmcore.scan_cli` (``kinship``, ``scan``) both import this module and
not each other's, so the command line has no import cycle.
"""

from __future__ import annotations

import argparse
import sys

from .errors import LMMWarning

__all__ = ["PROG", "Console", "Parser", "add_output_flags", "int_at_least", "positive_float", "say"]

PROG = "lmmcore"


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as exit status 2 and one line (no traceback)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_output_flags(parser: argparse.ArgumentParser, force: str, quiet: str) -> None:
    """``--force`` (replace existing output files) and ``--quiet`` (nothing on stderr but warnings and errors)."""
    parser.add_argument("--force", action="store_true", help=force)
    parser.add_argument("--quiet", action="store_true", help=quiet)


class Console:
    """The command line's receiver of the engine's messages: stderr, each message once.

    Called with a message (as :func:`lmmcore.errors.reporting` calls its
    receiver), it prints ``lmmcore: warning: <message>`` unless the same text
    was printed before; ``--quiet`` does not silence warnings.

    ``pending`` is the list that ``warnings.catch_warnings(record=True)``
    fills in :func:`lmmcore.cli.main` (the bridge for modules that still
    issue ``warnings.warn(..., LMMWarning)``): :meth:`relay` prints its
    LMMWarnings, and every other output relays first, so messages keep
    their order.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.pending: list | None = None

    def __call__(self, message: str) -> None:
        self.relay()
        self._warn(str(message))

    def relay(self) -> None:
        """Print the LMMWarnings recorded since the last call (other warnings are dropped)."""
        if not self.pending:
            return
        recorded = list(self.pending)
        self.pending.clear()
        for item in recorded:
            if issubclass(item.category, LMMWarning):
                self._warn(str(item.message))

    def _warn(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)


def say(args, message: str) -> None:
    """Print a progress or summary line on stderr, unless ``--quiet``."""
    console = getattr(args, "console", None)
    if console is not None:
        console.relay()
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)
