"""What the ``lmmcore`` subcommands share: the parser, argument types, and the way messages reach stderr.

:mod:`lmmcore.cli` (``fit``, ``simulate``, the entry point) and
:mod:`lmmcore.scan_cli` (``kinship``, ``scan``) both import this module and
not each other's, so the command line has no import cycle.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING


if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "PROG", "Console", "Parser", "add_output_flags", "add_peak_arguments", "add_strict_ids_argument", "int_at_least",
    "non_negative", "number", "peaks_from_args", "positive_float", "probability", "progress_bar", "say",
    "x_chr_arg",
]

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
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, message: str) -> None:
        text = str(message)
        if text not in self.seen:
            self.seen.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)


def add_strict_ids_argument(parser: argparse.ArgumentParser) -> None:
    """``--strict-ids``: an individual in one input but not another is an error (default: left out with a warning)."""
    parser.add_argument("--strict-ids", action="store_true",
                        help="stop with an error when an individual is in one input file but not in another "
                             "(default: such individuals are left out with a warning); for pipelines")


def say(args, message: str) -> None:
    """Print a progress or summary line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)


def progress_bar(quiet: bool, **options):
    """A tqdm bar on stderr (``options`` are tqdm's), or None when it would not show.

    None with ``--quiet`` or when stderr is not a terminal (where tqdm's
    ``disable=None`` would hide it): then tqdm is not imported, nor its
    lock and monitor thread created.
    """
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(file=sys.stderr, leave=False, **options)


# --------------------------------------------------------------------------- #
# Argument types of the peak options
# --------------------------------------------------------------------------- #
def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError("must be a number, not nan")
    return value


def non_negative(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def probability(text: str) -> float:
    value = number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1], e.g. 0.95")
    return value


# --------------------------------------------------------------------------- #
# Peak options (lmmcore peaks, lmmcore scan --peaks-out)
# --------------------------------------------------------------------------- #
def add_peak_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Add ``--threshold --peakdrop (--drop | --prob) --expand-to-markers --lod-column``.

    For ``lmmcore scan --peaks-out`` pass ``required=False`` (the threshold
    then defaults to R/qtl2's 3 and the interval to ``--drop 1.5``).
    """
    parser.add_argument("--threshold", type=number, required=required, default=None if required else 3.0,
                        metavar="T", help="a peak's LOD must exceed T" + ("" if required else " (default 3)"))
    parser.add_argument("--peakdrop", type=non_negative, default=math.inf, metavar="D",
                        help="the LOD must fall by D between two peaks of a chromosome for both to count "
                             "(default inf: one peak per chromosome)")
    interval = parser.add_mutually_exclusive_group(required=required)
    interval.add_argument("--drop", type=non_negative, metavar="L",
                          help="LOD support interval: positions within L of the peak (e.g. 1.5)")
    interval.add_argument("--prob", type=probability, metavar="P",
                          help="Bayes credible interval of probability P (e.g. 0.95)")
    parser.add_argument("--expand-to-markers", action="store_true",
                        help="move interval ends at pseudomarkers (c1.loc28) out to the flanking markers")
    parser.add_argument("--lod-column", default="lod", metavar="NAME",
                        help="the LOD column of the scan (default lod; lod_lrt for the exact scan)")


def peaks_from_args(scan, args) -> "pandas.DataFrame":
    """:func:`lmmcore.peaks.find_peaks` of a scan (ScanResult or table) with the options of :func:`add_peak_arguments`."""
    from .peaks import find_peaks

    drop, prob = args.drop, args.prob
    if drop is None and prob is None:
        drop = 1.5
    return find_peaks(scan, args.threshold, args.peakdrop, drop=drop, prob=prob,
                      expand_to_markers=args.expand_to_markers, lod_column=args.lod_column)


def x_chr_arg(args) -> list[str]:
    """``--x-chr`` as a list, checked with ``--x-covar`` and ``--cross`` (scan, effects, fit1)."""
    from .errors import LMMInputError

    x_chr = [c.strip() for c in args.x_chr.split(",") if c.strip()] if args.x_chr else []
    if args.x_chr is not None and not x_chr:
        raise LMMInputError("--x-chr is empty; give the X chromosome's name, e.g. --x-chr X")
    if (x_chr or args.x_covar) and args.cross:
        raise LMMInputError("with --cross the X chromosome and its covariates come from the cross; drop --x-chr "
                            "and --x-covar")
    if args.x_covar and not x_chr:
        raise LMMInputError("--x-covar needs --x-chr (the chromosome it applies to)")
    return x_chr
