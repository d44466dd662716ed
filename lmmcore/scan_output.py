"""The output flags of ``lmmcore scan``: ``--format csv|parquet``, ``--summary peaks|max``, ``--memory``.

Turns the flags into a sink of :mod:`lmmcore.scan_sink` before the scan
(so that an output file that exists without ``--force`` stops the command
before any work) and writes what the sink kept afterwards.

* ``--format csv`` (the default unless ``--out`` ends in ``.parquet``/``.pq``):
  the long CSV, as before (the whole table is built in memory).
* ``--format parquet``: the long table's columns and dtypes in a Parquet file,
  written in row groups while the scan runs (row order: see
  :mod:`lmmcore.scan_sink`).
* ``--summary max``: one row per phenotype x chromosome (R/qtl2's
  ``scan1max(by_chr = TRUE)`` with ``max_scan1``'s position);
  ``--summary peaks``: :func:`lmmcore.peaks.find_peaks` with the peak options.
  Only the summary is written to ``--out`` (CSV, or Parquet by the format).
"""

from __future__ import annotations

import argparse
import re

from .errors import LMMInputError

__all__ = ["add_output_arguments", "executor_from_args", "output_format", "make_sink", "close_sink", "write_summary", "parse_memory"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(text: str) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GiB`` or a plain number of bytes (argparse type)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtb]?)(i?b)?\s*", str(text), flags=re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a memory size; write e.g. 512M or 2G")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1 << 20:
        raise argparse.ArgumentTypeError(f"'{text}' is below 1 MiB; give at least 1M")
    return int(value)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--format``, ``--summary`` and ``--memory`` to the scan parser."""
    parser.add_argument("--format", choices=["csv", "parquet"], default=None, type=str.lower,
                        help="format of --out: csv (long table, default) or parquet (the same columns, written "
                             "as the scan runs; default when --out ends in .parquet or .pq)")
    parser.add_argument("--summary", choices=["peaks", "max"], default=None, type=str.lower,
                        help="write only a summary to --out instead of every phenotype x marker row: 'max' (each "
                             "phenotype's highest LOD on each chromosome: phenotype, chr, pos, marker, lod, as "
                             "R/qtl2's scan1max(by_chr=TRUE)) or 'peaks' (find_peaks with the peak options "
                             "below); memory holds about one chromosome's LOD per phenotype")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="run N blocks of markers x phenotypes at a time on threads, and everything on one BLAS "
                             "thread (default: one block at a time, the BLAS library's own threads); results are "
                             "the same to rounding. Faster on a machine shared with other jobs")
    parser.add_argument("--memory", type=parse_memory, default=None, metavar="SIZE",
                        help="memory one block of markers x phenotypes may use, e.g. 512M or 4G (default: "
                             "a quarter of the available memory, at most 1G)")


def executor_from_args(args):
    """The executor of ``--threads N`` (None: the default, one task at a time)."""
    if args.threads is None:
        return None
    if args.threads < 1:
        raise LMMInputError(f"--threads is {args.threads}; give 1 or more")
    from .scan_tasks import thread_executor

    return thread_executor(args.threads)


def output_format(args) -> str:
    """``csv`` or ``parquet``: ``--format``, else the suffix of ``--out``."""
    if args.format:
        return args.format
    return "parquet" if str(args.out).lower().endswith((".parquet", ".pq")) else "csv"


def make_sink(args):
    """The sink of the flags (None: the default long table), and the peaks sink of ``--peaks-out`` if any.

    Returns
    -------
    sink : ScanSink or None
        What :func:`lmmcore.scan.scan` feeds.
    peaks : PeaksSink or None
        With ``--peaks-out`` and a sink that keeps no table: the peaks, found
        as the scan runs.
    """
    fmt = output_format(args)
    if args.summary and args.peaks_out:
        raise LMMInputError("--summary writes its table to --out; drop --peaks-out (use --summary peaks)")
    if args.summary == "max":
        from .scan_sink import MaxSink

        return MaxSink(args.lod_column), None
    if args.summary == "peaks":
        return _peaks_sink(args), None
    if fmt == "parquet":
        from .scan_sink import ParquetSink, TeeSink  # not for the default table: it imports the scan (and SciPy)

        sink = ParquetSink(args.out, force=args.force)
        if args.peaks_out:
            peaks = _peaks_sink(args)
            return TeeSink(sink, peaks), peaks
        return sink, None
    return None, None


def _peaks_sink(args):
    from .scan_sink import PeaksSink

    drop, prob = args.drop, args.prob
    if drop is None and prob is None:
        drop = 1.5
    return PeaksSink(args.threshold, args.peakdrop, drop=drop, prob=prob,
                     expand_to_markers=args.expand_to_markers, lod_column=args.lod_column)


def close_sink(sink, ok: bool) -> None:
    """Put a Parquet file in place (``ok``) or remove its temporary file."""
    from .scan_sink import ParquetSink, TeeSink

    for s in (sink.sinks if isinstance(sink, TeeSink) else (sink,)):
        if isinstance(s, ParquetSink):
            s.close(ok)


def write_summary(table, args) -> None:
    """Write a summary table to ``--out`` as CSV or Parquet."""
    from .io import atomic_output, write_csv_atomic

    if output_format(args) == "parquet":
        with atomic_output(args.out, force=args.force) as tmp:
            table.to_parquet(tmp, index=False)
    else:
        write_csv_atomic(table, args.out, force=args.force)
