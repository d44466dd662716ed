"""Where a scan's results go as they are computed: a long table, a Parquet file, or a summary.

:func:`lmmcore.scan.scan` hands every task's :class:`~lmmcore.scan_tasks.ScanPiece`
(a chunk of markers x a block of traits) to a *sink* as soon as it is done,
and never holds all of them itself. A sink has three methods:

``start(genotypes, names, effect_names, refit)``
    once, before the first piece (the scan's genotypes, phenotype names in
    request order, effect names and whether the exact scan runs);
``add(piece)``
    for every piece, in task order;
``add_table(table)``
    for results that arrive as a long table (a table computed elsewhere);
``finish() -> DataFrame``
    the sink's table: the long table (:class:`TableSink`), the summary
    (:class:`MaxSink`, :class:`PeaksSink`), or an empty long table
    (:class:`ParquetSink`, whose rows are in its file).

Sinks
-----
:class:`TableSink`
    The long table of :attr:`lmmcore.scan.ScanResult.table`: one row per
    (phenotype, marker), phenotypes in request order, markers in genome
    order. Holds every row (``T x m``): for small and medium scans.
:class:`ParquetSink`
    The same columns and dtypes, written to a Parquet file (pyarrow) in
    row groups of about :data:`ROW_GROUP_ROWS` rows as pieces arrive. Row
    order: the order of computation, i.e. kinship group (chromosome, with
    LOCO kinships), missingness pattern, trait block, marker chunk, and
    inside a chunk phenotype, then marker (patterns that share one
    decomposition, :mod:`lmmcore.pattern_dummies`: trait block, marker
    chunk, then pattern); sort by phenotype and marker position for the
    table's order. With ``x_chr`` the autosomes' rows come
    first in that order, then the X part's (held until X is done).
:class:`MaxSink`
    R/qtl2's ``scan1max(..., by_chr = TRUE)`` with the position of the
    maximum (``max_scan1``): one row per phenotype x chromosome with
    ``phenotype, chr, pos, marker, lod`` (the first marker on ties;
    chromosomes without a LOD left out). Holds ``T x chromosomes`` values.
:class:`PeaksSink`
    :func:`lmmcore.peaks.find_peaks` of the table, with its options. Holds a
    chromosome's LOD per trait until the chromosome is complete for the
    trait, then keeps its peaks only.
:class:`TeeSink`
    Several sinks fed the same pieces (e.g. Parquet and peaks).
:class:`PartSink`
    Not an output: hands the pieces of a scan of some chromosomes (a part
    of a scan with ``x_chr``, with its own genotype columns) on to the sink
    of the whole scan, translated into the whole scan's markers and effect
    columns: the autosomes' as they arrive, X's when X is done.

Every sink also keeps :attr:`ScanSink.stats` (rows, flagged rows, the highest
LOD), for the CLI's summary line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .genotypes import Genotypes
from .scan_tasks import ScanPiece

__all__ = [
    "ScanSink",
    "TableSink",
    "ParquetSink",
    "MaxSink",
    "PeaksSink",
    "TeeSink",
    "PartSink",
    "SinkStats",
    "long_columns",
    "piece_frame",
    "sort_long_table",
    "MAX_COLUMNS",
    "ROW_GROUP_ROWS",
]

#: Rows per Parquet row group (written when this many have arrived).
ROW_GROUP_ROWS = 1 << 18

#: The columns of :class:`MaxSink`'s table.
MAX_COLUMNS = ("phenotype", "chr", "pos", "marker", "lod")

REFIT_COLUMNS = ("h2_ml", "loglik_ml", "lrt", "lod_lrt", "p_lrt", "h2_reml", "loglik_reml")


def long_columns(effect_names: Sequence[str], refit: bool) -> list[str]:
    """The columns of the long table, in order."""
    cols = ["phenotype", "marker", "chr", "pos", "n", "df", "h2", "lod", "p_value"]
    cols += [f"beta_{e}" for e in effect_names] + [f"se_{e}" for e in effect_names]
    if refit:
        cols += list(REFIT_COLUMNS) + [f"beta_wald_{e}" for e in effect_names]
        cols += [f"se_wald_{e}" for e in effect_names] + ["wald", "p_wald"]
    return cols + ["flag"]


def piece_frame(piece: ScanPiece, genotypes: Genotypes, effect_names: Sequence[str], refit: bool,
                order: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The long-table rows of one piece: phenotype by phenotype, markers in the piece's order.

    With ``order`` (phenotype -> request position) two helper columns
    ``_p, _m`` (phenotype position, marker index) are added for sorting.
    """
    mk = piece.markers
    m, P = len(mk), len(piece.phenotypes)
    fx, ex = piece.fixed, piece.exact

    def per_trait(values: np.ndarray) -> np.ndarray:  # (m, P) -> phenotype-major rows
        return np.ascontiguousarray(values.T).reshape(m * P)

    cols: dict[str, object] = {
        "phenotype": np.repeat(np.asarray(piece.phenotypes, dtype=object), m),
        "marker": np.tile(np.asarray(genotypes.markers, dtype=object)[mk], P),
        "chr": np.tile(np.asarray(genotypes.chromosome, dtype=object)[mk], P),
        "pos": np.tile(np.asarray(genotypes.position, dtype=float)[mk], P),
        "n": np.full(m * P, piece.n, dtype=np.int64),
        "df": np.tile(np.asarray(piece.df, dtype=np.int64), P),
        "h2": np.repeat(np.asarray(piece.h2, dtype=float), m),
        "lod": per_trait(fx.lod),
        "p_value": per_trait(fx.p_value),
    }
    for a, e in enumerate(effect_names):
        cols[f"beta_{e}"] = per_trait(fx.beta[:, :, a])
    for a, e in enumerate(effect_names):
        cols[f"se_{e}"] = per_trait(fx.se[:, :, a])
    if refit:
        for key in REFIT_COLUMNS:
            cols[key] = per_trait(getattr(ex, key))
        for a, e in enumerate(effect_names):
            cols[f"beta_wald_{e}"] = per_trait(ex.beta_wald[:, :, a])
        for a, e in enumerate(effect_names):
            cols[f"se_wald_{e}"] = per_trait(ex.se_wald[:, :, a])
        cols["wald"] = per_trait(ex.wald)
        cols["p_wald"] = per_trait(ex.p_wald)
    cols["flag"] = np.tile(np.asarray(piece.flag, dtype=object), P)
    if order is not None:
        cols["_p"] = np.repeat(np.asarray([order[nm] for nm in piece.phenotypes], dtype=np.int64), m)
        cols["_m"] = np.tile(np.asarray(mk, dtype=np.int64), P)
    return pd.DataFrame(cols)


def sort_long_table(table: pd.DataFrame, names: Sequence[str], genotypes: Genotypes) -> pd.DataFrame:
    """Rows in the long table's order: phenotypes as in ``names``, markers in genome order."""
    p = pd.Index(list(names)).get_indexer(table["phenotype"])
    mk = pd.Index(list(genotypes.markers)).get_indexer(table["marker"])
    key = p.astype(np.int64) * (len(genotypes.markers) + 1) + mk
    return table.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


@dataclass
class SinkStats:
    """Running facts of a scan's rows: how many, how many flagged, the highest LOD and where."""

    rows: int = 0
    flagged: int = 0
    best_lod: float = -math.inf
    best_phenotype: str = ""
    best_marker: str = ""
    best_chr: str = ""

    def add(self, piece: ScanPiece, genotypes: Genotypes) -> None:
        m, P = len(piece.markers), len(piece.phenotypes)
        self.rows += m * P
        self.flagged += int(np.count_nonzero(np.asarray(piece.flag) != "")) * P
        lod = piece.fixed.lod
        if m and P and np.isfinite(lod).any():
            j, t = np.unravel_index(np.nanargmax(lod), lod.shape)
            if lod[j, t] > self.best_lod:
                mk = int(piece.markers[j])
                self.best_lod, self.best_phenotype = float(lod[j, t]), piece.phenotypes[t]
                self.best_marker, self.best_chr = str(genotypes.markers[mk]), str(genotypes.chromosome[mk])

    def add_table(self, table: pd.DataFrame) -> None:
        self.rows += len(table)
        self.flagged += int((table["flag"].fillna("") != "").sum())
        if table["lod"].notna().any():
            row = table.loc[table["lod"].idxmax()]
            if row["lod"] > self.best_lod:
                self.best_lod, self.best_phenotype = float(row["lod"]), str(row["phenotype"])
                self.best_marker, self.best_chr = str(row["marker"]), str(row["chr"])


class ScanSink:
    """The base of the sinks: remembers the scan's layout and keeps :class:`SinkStats`.

    ``kind`` says what :meth:`finish` returns: ``"table"`` (the long table,
    possibly empty when the rows went to a file) or ``"summary"``.
    """

    kind = "table"
    #: Whether the sink uses the effects and standard errors (the scan skips them otherwise).
    needs_effects = True

    def __init__(self):
        self.stats = SinkStats()
        self.genotypes: Genotypes | None = None
        self.names: tuple[str, ...] = ()
        self.effect_names: tuple[str, ...] = ()
        self.refit = False

    def start(self, genotypes: Genotypes, names: Sequence[str], effect_names: Sequence[str], refit: bool) -> None:
        self.genotypes, self.names = genotypes, tuple(names)
        self.effect_names, self.refit = tuple(effect_names), bool(refit)

    def add(self, piece: ScanPiece) -> None:
        self.stats.add(piece, self.genotypes)

    def add_table(self, table: pd.DataFrame) -> None:
        self.stats.add_table(table)

    def finish(self) -> pd.DataFrame:
        raise NotImplementedError

    def empty_table(self) -> pd.DataFrame:
        """A long table with no rows (the columns, for a result that keeps none)."""
        return pd.DataFrame({c: [] for c in long_columns(self.effect_names, self.refit)})


class TableSink(ScanSink):
    """The whole long table in memory (the default; ``T x m`` rows)."""

    def __init__(self):
        super().__init__()
        self.frames: list[pd.DataFrame] = []

    def add(self, piece: ScanPiece) -> None:
        super().add(piece)
        order = {nm: k for k, nm in enumerate(self.names)}
        self.frames.append(piece_frame(piece, self.genotypes, self.effect_names, self.refit, order))

    def add_table(self, table: pd.DataFrame) -> None:
        super().add_table(table)
        self.frames.append(table)

    def finish(self) -> pd.DataFrame:
        if not self.frames:
            return self.empty_table()
        if not any("_p" in f for f in self.frames):  # long tables only: as they came
            table = pd.concat(self.frames, ignore_index=True)
        else:  # pieces (and long tables, e.g. the X part): phenotypes in request order, markers in genome order
            frames = [f if "_p" in f else self._keyed(f) for f in self.frames]
            table = pd.concat(frames, ignore_index=True)
            table = table.sort_values(["_p", "_m"], kind="stable").drop(columns=["_p", "_m"])
            table = table.reset_index(drop=True)
        self.frames = []
        table["df"] = table["df"].astype(int)
        table["n"] = table["n"].astype(int)
        return table

    def _keyed(self, table: pd.DataFrame) -> pd.DataFrame:
        """A long table with the sort keys of :func:`piece_frame` (phenotype position, marker index)."""
        return table.assign(_p=pd.Index(list(self.names)).get_indexer(table["phenotype"]),
                            _m=pd.Index(list(self.genotypes.markers)).get_indexer(table["marker"]))


class ParquetSink(ScanSink):
    """The long table's rows written to a Parquet file in row groups as they arrive.

    Parameters
    ----------
    path : str or Path
        The file; written through a temporary file beside it, renamed when
        :meth:`close` is called after a successful scan (use as a context
        manager: ``with ParquetSink(path) as sink: scan(..., sink=sink)``).
    force : bool
        Replace an existing file.
    """

    def __init__(self, path, *, force: bool = False):
        super().__init__()
        from contextlib import ExitStack

        from .io import atomic_output

        try:
            import pyarrow  # noqa: F401  (pyflakes: checked here, used on the first row group)
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            from .errors import LMMInputError

            raise LMMInputError("Parquet output needs pyarrow: pip install pyarrow") from None
        self._stack = ExitStack()
        self.path = path
        self._tmp = self._stack.enter_context(atomic_output(path, force=force))
        self._writer = None
        self._schema = None
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close(exc is None, exc_type, exc, tb)
        return False

    def add(self, piece: ScanPiece) -> None:
        super().add(piece)
        self._push(piece_frame(piece, self.genotypes, self.effect_names, self.refit))

    def add_table(self, table: pd.DataFrame) -> None:
        super().add_table(table)
        self._push(table)

    def _push(self, frame: pd.DataFrame) -> None:
        self._buffer.append(frame)
        self._buffered += len(frame)
        if self._buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        frame = pd.concat(self._buffer, ignore_index=True) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        if self._schema is None:
            self._schema = pa.Schema.from_pandas(frame, preserve_index=False)
            self._writer = pq.ParquetWriter(str(self._tmp), self._schema)
        self._writer.write_table(pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False),
                                 row_group_size=ROW_GROUP_ROWS)

    def finish(self) -> pd.DataFrame:
        if self._writer is None and not self._buffer:
            self._buffer.append(self.empty_table().astype({"n": np.int64, "df": np.int64}))
        self._flush()
        return self.empty_table()

    def close(self, ok: bool = True, *exc_info) -> None:
        """Close the file: renamed into place when ``ok``, else removed."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if ok:
            self._stack.close()
        else:
            self._stack.__exit__(*(exc_info or (RuntimeError, RuntimeError("scan failed"), None)))


class MaxSink(ScanSink):
    """Each phenotype's largest LOD on each chromosome (R/qtl2's ``scan1max(by_chr = TRUE)``, ``max_scan1``).

    Parameters
    ----------
    lod_column : {"lod", "lod_lrt"}
        The fixed-h2 LOD, or the exact scan's (with ``refit``).
    """

    kind = "summary"
    needs_effects = False

    def __init__(self, lod_column: str = "lod"):
        super().__init__()
        self.lod_column = lod_column

    def start(self, genotypes, names, effect_names, refit) -> None:
        super().start(genotypes, names, effect_names, refit)
        _check_lod_column(self.lod_column, refit)
        self.chr_code, self.chromosomes = pd.factorize(pd.Index(list(genotypes.chromosome), dtype=object))
        self.best = np.full((len(names), len(self.chromosomes)), -np.inf)
        self.where = np.full((len(names), len(self.chromosomes)), -1, dtype=np.int64)
        self.extra: list[pd.DataFrame] = []

    def add(self, piece: ScanPiece) -> None:
        super().add(piece)
        lod = piece_lod(piece, self.lod_column)
        lod = np.where(np.isnan(lod), -np.inf, lod)
        mk = np.asarray(piece.markers)
        codes = self.chr_code[mk]
        target = np.asarray(piece.target)
        for c in np.unique(codes):
            sel = np.flatnonzero(codes == c)
            sub = lod[sel]
            j = np.argmax(sub, axis=0)  # the first marker of a tie
            val = sub[j, np.arange(sub.shape[1])]
            idx = mk[sel][j]
            old, old_idx = self.best[target, c], self.where[target, c]
            better = np.isfinite(val) & ((val > old) | ((val == old) & (idx < old_idx)))
            self.best[target[better], c] = val[better]
            self.where[target[better], c] = idx[better]

    def add_table(self, table: pd.DataFrame) -> None:
        super().add_table(table)
        self.extra.append(max_by_chromosome(table, self.lod_column))

    def finish(self) -> pd.DataFrame:
        t, c = np.nonzero(self.where >= 0)  # phenotype-major, chromosomes in genome order
        idx = self.where[t, c]
        g = self.genotypes
        out = pd.DataFrame({
            "phenotype": np.asarray(self.names, dtype=object)[t],
            "chr": np.asarray(g.chromosome, dtype=object)[idx],
            "pos": np.asarray(g.position, dtype=float)[idx],
            "marker": np.asarray(g.markers, dtype=object)[idx],
            "lod": self.best[t, c],
        })
        if self.extra:  # (an empty frame in the concatenation would turn the text columns into objects)
            frames = ([out] if len(out) else []) + self.extra
            out = _ordered(pd.concat(frames, ignore_index=True), self.names, self.chromosomes)
        return out.rename(columns={"lod": self.lod_column}) if self.lod_column != "lod" else out


def max_by_chromosome(table: pd.DataFrame, lod_column: str = "lod") -> pd.DataFrame:
    """:class:`MaxSink`'s table from a long table (rows without a LOD left out)."""
    ok = table[table[lod_column].notna()]
    best = ok.loc[ok.groupby(["phenotype", "chr"], sort=False)[lod_column].idxmax()]
    out = best[["phenotype", "chr", "pos", "marker", lod_column]].rename(columns={lod_column: "lod"})
    return out.reset_index(drop=True)


def _ordered(table: pd.DataFrame, names, chromosomes) -> pd.DataFrame:
    p = pd.Index(list(names)).get_indexer(table["phenotype"])
    c = pd.Index(list(chromosomes)).get_indexer(table["chr"])
    return table.iloc[np.lexsort((c, p))].reset_index(drop=True)


def piece_lod(piece: ScanPiece, lod_column: str) -> np.ndarray:
    """The (m, P) LODs of a piece: ``lod`` or the exact scan's ``lod_lrt``."""
    return piece.fixed.lod if lod_column == "lod" else piece.exact.lod_lrt


def _check_lod_column(lod_column: str, refit: bool) -> None:
    from .errors import LMMInputError

    if lod_column not in ("lod", "lod_lrt"):
        raise LMMInputError(f"the summary's LOD column is '{lod_column}'; it must be lod or lod_lrt")
    if lod_column == "lod_lrt" and not refit:
        raise LMMInputError("the summary's LOD column lod_lrt needs the exact scan (--refit)")


class PeaksSink(ScanSink):
    """:func:`lmmcore.peaks.find_peaks` of the scan, computed chromosome by chromosome as pieces arrive.

    Parameters
    ----------
    threshold, peakdrop, drop, prob, expand_to_markers, lod_column
        As :func:`lmmcore.peaks.find_peaks`.

    Notes
    -----
    The LODs of a (chromosome, trait block) are kept until every marker of
    the chromosome has arrived for those traits; their peaks are then found
    and the LODs dropped. The tasks of a group run chunk after chunk in
    genome order, so at most about one chromosome per trait is held.
    """

    kind = "summary"
    needs_effects = False

    def __init__(self, threshold=3.0, peakdrop: float = math.inf, drop: float | None = None,
                 prob: float | None = None, expand_to_markers: bool = False, lod_column: str = "lod"):
        super().__init__()
        self.options = dict(threshold=threshold, peakdrop=peakdrop, drop=drop, prob=prob,
                            expand_to_markers=expand_to_markers, lod_column="lod")
        self.lod_column = lod_column
        self.found: list[pd.DataFrame] = []
        self.open: dict = {}
        self.result: pd.DataFrame | None = None

    def start(self, genotypes, names, effect_names, refit) -> None:
        super().start(genotypes, names, effect_names, refit)
        _check_lod_column(self.lod_column, refit)
        chrom = pd.Index(list(genotypes.chromosome), dtype=object)
        self.chr_code, self.chromosomes = pd.factorize(chrom)
        self.chr_markers = [np.flatnonzero(self.chr_code == c) for c in range(len(self.chromosomes))]
        self.slot = np.empty(len(chrom), dtype=np.int64)  # a marker's place on its chromosome
        for idx in self.chr_markers:
            self.slot[idx] = np.arange(idx.size)

    def add(self, piece: ScanPiece) -> None:
        super().add(piece)
        lod = piece_lod(piece, self.lod_column)
        mk = np.asarray(piece.markers)
        codes = self.chr_code[mk]
        for c in np.unique(codes):
            sel = np.flatnonzero(codes == c)
            key = (int(c), tuple(piece.target))
            if key not in self.open:
                size = self.chr_markers[c].size
                self.open[key] = [np.full((size, len(piece.target)), np.nan), np.zeros(size, dtype=bool)]
            buf, seen = self.open[key]
            buf[self.slot[mk[sel]]] = lod[sel]
            seen[self.slot[mk[sel]]] = True
            if seen.all():
                self._flush(key)

    def _flush(self, key) -> None:
        c, target = key
        buf, _ = self.open.pop(key)
        idx = self.chr_markers[c]
        g = self.genotypes
        names = [self.names[t] for t in target]
        table = pd.DataFrame({
            "phenotype": np.repeat(np.asarray(names, dtype=object), idx.size),
            "marker": np.tile(np.asarray(g.markers, dtype=object)[idx], len(names)),
            "chr": np.tile(np.asarray(g.chromosome, dtype=object)[idx], len(names)),
            "pos": np.tile(np.asarray(g.position, dtype=float)[idx], len(names)),
            "lod": np.ascontiguousarray(buf.T).reshape(-1),
        })
        self._find(table)

    def _find(self, table: pd.DataFrame) -> None:
        from .errors import reporting
        from .peaks import find_peaks

        table = table[table["lod"].notna()]  # as find_peaks does (without a message per chromosome)
        if table.empty:
            return
        with reporting(lambda _message: None):
            found = find_peaks(table, **self.options)
        if len(found):  # (an empty frame has object columns, which would change the dtypes of the rest)
            self.found.append(found)

    def add_table(self, table: pd.DataFrame) -> None:
        super().add_table(table)
        self._find(table[["phenotype", "marker", "chr", "pos", self.lod_column]].rename(
            columns={self.lod_column: "lod"}))

    def finish(self) -> pd.DataFrame:
        from .peaks import PEAK_COLUMNS

        for key in list(self.open):  # markers that never arrived (none in a complete scan)
            self._flush(key)
        if not self.found:
            out = pd.DataFrame({c: [] for c in PEAK_COLUMNS})
            self.result = out.rename(columns={"lod": self.lod_column}) if self.lod_column != "lod" else out
            return self.result
        out = pd.concat(self.found, ignore_index=True)
        p = pd.Index(list(self.names)).get_indexer(out["phenotype"])
        c = pd.Index(list(self.chromosomes)).get_indexer(out["chr"])
        out = out.iloc[np.lexsort((c, p))].reset_index(drop=True)  # stable: positions stay in order
        self.result = out.rename(columns={"lod": self.lod_column}) if self.lod_column != "lod" else out
        return self.result


class TeeSink(ScanSink):
    """Feeds every piece to several sinks; ``finish`` returns the first one's table."""

    def __init__(self, *sinks: ScanSink):
        super().__init__()
        self.sinks = sinks
        self.kind = sinks[0].kind
        self.needs_effects = any(s.needs_effects for s in sinks)

    def start(self, genotypes, names, effect_names, refit) -> None:
        super().start(genotypes, names, effect_names, refit)
        for s in self.sinks:
            s.start(genotypes, names, effect_names, refit)

    def add(self, piece: ScanPiece) -> None:
        super().add(piece)
        for s in self.sinks:
            s.add(piece)

    def add_table(self, table: pd.DataFrame) -> None:
        super().add_table(table)
        for s in self.sinks:
            s.add_table(table)

    def finish(self) -> pd.DataFrame:
        tables = [s.finish() for s in self.sinks]
        return tables[0]


class PartSink(ScanSink):
    """The pieces of a scan of some of the chromosomes, handed on to the sink of the whole scan.

    A scan with ``x_chr`` scans the autosomes as a part of their own
    (:func:`lmmcore.xchr.select_chromosomes`: their markers only, their
    genotype columns only), so its pieces index the part's markers and
    effect columns. Each piece is translated into the layout that ``sink``
    was started with -- markers as indices of the whole genotypes, effects
    and standard errors on the whole scan's effect columns, NaN for a
    genotype the part does not have (as :func:`lmmcore.xchr.merge_part_tables`
    fills a part's table) -- and passed on at once, so that the part's rows
    cost no more than a piece; or, with ``hold``, kept until :meth:`release`.

    Parameters
    ----------
    sink : ScanSink
        The whole scan's sink, already started with the whole genotypes and
        effect names (which include the part's).
    hold : bool
        Keep the translated pieces until :meth:`release` instead (the X
        part, whose flags need all of its pieces).

    Notes
    -----
    :meth:`finish` returns the part's empty table and does not finish
    ``sink``, which goes on to take the other parts. Held pieces are
    arrays, ``(m, P)`` per statistic and ``(m, P, q)`` per effect for m
    markers, P traits and q effect columns (none for a sink that needs no
    effects): a fraction of the size of their long-table rows. The part
    needs the effects exactly when ``sink`` does (``needs_effects``): a
    summary's LODs then come from the LOD-only kernel, as in a scan without
    X (equal to the table's to rounding, ~1e-14 relative).
    """

    def __init__(self, sink: ScanSink, hold: bool = False):
        super().__init__()
        self.sink = sink
        self.needs_effects = sink.needs_effects
        self.held: list[ScanPiece] | None = [] if hold else None
        self.markers = np.zeros(0, dtype=np.int64)
        self.columns: list[int] = []

    def start(self, genotypes, names, effect_names, refit) -> None:
        super().start(genotypes, names, effect_names, refit)
        whole = self.sink
        if tuple(names) != whole.names or bool(refit) != whole.refit:
            raise ValueError("a part of a scan must scan the phenotypes of the whole scan, with the same tests")
        self.markers = pd.Index(list(whole.genotypes.markers)).get_indexer(list(genotypes.markers))
        if (self.markers < 0).any():
            raise ValueError("a part of a scan has markers that the whole scan's genotypes do not have")
        self.columns = [whole.effect_names.index(e) for e in effect_names]

    def add(self, piece: ScanPiece) -> None:
        if self.held is None:
            self.sink.add(self._lift(piece))
        else:
            self.held.append(self._lift(piece))

    def release(self, fix=None) -> None:
        """Hand the held pieces on, in the order they came, after ``fix(pieces) -> pieces`` if given."""
        pieces, self.held = self.held or [], []
        if fix is not None:
            pieces = fix(pieces)
        pieces.reverse()
        while pieces:  # each piece is dropped here once the sink has it
            self.sink.add(pieces.pop())

    def add_table(self, table: pd.DataFrame) -> None:
        raise TypeError("a PartSink takes a part's pieces; give a long table to the whole scan's sink")

    def finish(self) -> pd.DataFrame:
        return self.empty_table()

    def _lift(self, piece: ScanPiece) -> ScanPiece:
        """``piece`` in the whole scan's markers and effect columns."""
        keep = self.sink.needs_effects
        fixed = replace(piece.fixed, beta=self._effects(piece.fixed.beta, keep),
                        se=self._effects(piece.fixed.se, keep))
        exact = piece.exact
        if exact is not None:
            exact = replace(exact, beta_wald=self._effects(exact.beta_wald, keep),
                            se_wald=self._effects(exact.se_wald, keep))
        return replace(piece, markers=self.markers[np.asarray(piece.markers)], fixed=fixed, exact=exact)

    def _effects(self, values: np.ndarray | None, keep: bool) -> np.ndarray | None:
        """(m, P, q_part) values on the whole scan's q columns (NaN where the part has none)."""
        if values is None or not keep:
            return None
        q = len(self.sink.effect_names)
        if self.columns == list(range(q)):
            return values
        out = np.full(values.shape[:2] + (q,), np.nan)
        out[:, :, self.columns] = values
        return out
