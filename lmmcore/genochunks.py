"""Marker chunks read where they are used: a worker's own reading of the genotype source.

A scan on a cluster (:mod:`lmmcore.distributed`) sends each worker the
indices of its markers, not the markers: the worker reads them from the file
the client read (PLINK ``.bed`` through bed-reader's slicing, lmmcore's HDF5
genotype file through h5py's partial reads). Genotypes held only in memory
(read from CSV, computed by the HMM) have no file to read; their chunk travels
with the task.

:func:`chunk_source` describes the source of a :class:`~lmmcore.genotypes.Genotypes`
record (a small, picklable object: the file, the file row of every
individual and the file column of every marker); :meth:`ChunkSource.read`
gives the chunk's values, exactly as the record holds them
(``genotypes.data[:, markers]``); :meth:`ChunkSource.record` wraps them as a
:class:`~lmmcore.genotypes.Genotypes` of those markers.

Identity with the client's copy
-------------------------------
A chunk read by a worker must be the chunk the client would have used: the
file may have changed since the client read it, or the record may have been
edited in memory. Each task therefore carries a digest of the client's chunk
(:func:`chunk_digest`, BLAKE2b of the float64 values, NaN made canonical);
a worker whose reading differs raises :class:`ChunkMismatch`, and the client
sends that chunk itself. PLINK's missing genotypes are replaced by the
marker's mean over every individual of the file, as
:func:`lmmcore.genotypes.read_plink` does (the same function), so a chunk
read on a worker equals the client's column for column.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import reporting
from .genotypes import Genotypes

__all__ = ["ChunkMismatch", "ChunkSource", "FileChunks", "MemoryChunks", "chunk_digest", "chunk_source"]


class ChunkMismatch(RuntimeError):
    """A worker read a chunk that differs from the client's (the client then sends it)."""


def chunk_digest(values: np.ndarray) -> bytes:
    """BLAKE2b (16 bytes) of the float64 values and their shape; every NaN counts as the same value."""
    a = np.ascontiguousarray(values, dtype=np.float64)
    nan = np.isnan(a)
    if nan.any():
        a = np.where(nan, np.nan, a)
    h = hashlib.blake2b(memoryview(a).cast("B"), digest_size=16)
    h.update(repr(a.shape).encode())
    return h.digest()


@dataclass(frozen=True, eq=False)
class ChunkSource:
    """What a worker needs to rebuild any chunk of one :class:`Genotypes` record.

    Attributes
    ----------
    ids, markers, chromosome : tuple of str
    position : ndarray
    kind : {"dosage", "genoprobs"}
    genotype_names : tuple of str or None
    genotypes_by_chr : dict or None
    source : str
        The record's ``source`` (for messages).
    alleles, allele_map : tuple of str and ndarray, or None
        The record's map to allele probabilities.
    """

    ids: tuple[str, ...]
    markers: tuple[str, ...]
    chromosome: tuple[str, ...]
    position: np.ndarray
    kind: str
    genotype_names: tuple[str, ...] | None
    genotypes_by_chr: dict | None
    source: str
    alleles: tuple[str, ...] | None = None
    allele_map: np.ndarray | None = None

    #: Whether workers read the file (False: the client sends every chunk).
    reads_file = False

    def read(self, markers: np.ndarray, payload: np.ndarray | None = None) -> np.ndarray:
        """The values ``genotypes.data[:, markers]`` (``payload`` when the client sent them)."""
        if payload is None:
            raise ChunkMismatch(f"no file to read the markers of {self.source or 'the genotypes'} from")
        return payload

    def record(self, markers: np.ndarray, values: np.ndarray) -> Genotypes:
        """A :class:`Genotypes` of the chunk's markers (every individual) holding ``values``."""
        idx = np.asarray(markers)
        fields = dict(ids=self.ids, markers=tuple(self.markers[k] for k in idx),
                      chromosome=tuple(self.chromosome[k] for k in idx), position=self.position[idx],
                      source=self.source)
        if self.kind == "dosage":
            return Genotypes(dosage=values, **fields)
        by_chr = None
        if self.genotypes_by_chr is not None:
            by_chr = {c: v for c, v in self.genotypes_by_chr.items() if c in set(fields["chromosome"])}
        return Genotypes(probs=values, genotype_names=self.genotype_names, genotypes_by_chr=by_chr,
                         alleles=self.alleles, allele_map=self.allele_map, **fields)


@dataclass(frozen=True, eq=False)
class MemoryChunks(ChunkSource):
    """Genotypes with no file behind them: every chunk travels with its task."""


@dataclass(frozen=True, eq=False)
class FileChunks(ChunkSource):
    """Genotypes that a worker reads from their file (PLINK ``.bed`` or lmmcore ``.h5``).

    Attributes
    ----------
    path : str
        The ``.bed`` or ``.h5`` file, as the client names it (workers must
        see it at the same path: a shared file system).
    format : {"plink", "h5"}
    rows : ndarray of int
        File row of each individual of the record.
    columns : ndarray of int
        PLINK: the file column of each marker. HDF5: the marker's index
        within its chromosome's dataset.
    file_shape : tuple of int
        PLINK: individuals and markers in the file.
    genotype_map : dict
        HDF5 probabilities: for each chromosome, the position in
        ``genotype_names`` of each of its stored genotypes.
    """

    path: str = ""
    format: str = "plink"
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    columns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    file_shape: tuple[int, int] = (0, 0)
    genotype_map: dict = field(default_factory=dict)

    reads_file = True

    def read(self, markers: np.ndarray, payload: np.ndarray | None = None) -> np.ndarray:
        if payload is not None:
            return payload
        idx = np.asarray(markers)
        if self.format == "plink":
            return self._read_plink(idx)
        return self._read_h5(idx)

    def _read_plink(self, idx: np.ndarray) -> np.ndarray:
        from bed_reader import open_bed

        from .genotypes import _impute_means

        cols = self.columns[idx]
        with open_bed(self.path, count_A1=True, iid_count=self.file_shape[0], sid_count=self.file_shape[1]) as bed:
            values = bed.read(index=np.s_[:, cols], dtype="float64", order="C")
        # the marker's mean over every individual of the file, as read_plink does (its messages were said)
        with reporting(lambda _message: None):
            _impute_means(values, None, [self.markers[k] for k in idx], self.path)
        return values if _is_identity(self.rows, values.shape[0]) else values[self.rows]

    def _read_h5(self, idx: np.ndarray) -> np.ndarray:
        import h5py

        chrom = np.asarray(self.chromosome, dtype=object)[idx]
        n = len(self.ids)
        if self.kind == "dosage":
            out = np.empty((n, idx.size))
        else:
            out = np.zeros((n, idx.size, len(self.genotype_names)))
        with h5py.File(self.path, "r") as f:
            for c in pd.unique(chrom):
                where = np.flatnonzero(chrom == c)
                local = self.columns[idx[where]]
                order = np.argsort(local, kind="stable")  # h5py reads increasing indices
                sorted_local = local[order]
                dataset = f[f"chr/{c}/{'dosage' if self.kind == 'dosage' else 'probs'}"]
                unique, inverse = np.unique(sorted_local, return_inverse=True)
                block = np.asarray(dataset[:, unique], dtype=np.float64)[:, inverse]
                block = block[self.rows] if not _is_identity(self.rows, block.shape[0]) else block
                target = where[order]
                if self.kind == "dosage":
                    out[:, target] = block
                else:
                    out[:, target[:, None], self.genotype_map[c]] = block
        return out


def _is_identity(rows: np.ndarray, n: int) -> bool:
    return rows.size == n and bool(np.all(rows == np.arange(n)))


def _fields(genotypes: Genotypes) -> dict:
    return dict(ids=genotypes.ids, markers=genotypes.markers, chromosome=genotypes.chromosome,
                position=genotypes.position, kind=genotypes.kind, genotype_names=genotypes.genotype_names,
                genotypes_by_chr=genotypes.genotypes_by_chr, source=genotypes.source,
                alleles=genotypes.alleles, allele_map=genotypes.allele_map)


def chunk_source(genotypes: Genotypes) -> ChunkSource:
    """Where workers get the chunks of ``genotypes``: their file when it can be matched, else the client.

    The file is the record's ``source``: a PLINK ``.bed`` (with its ``.bim``
    and ``.fam``) or an lmmcore ``.h5`` genotype file. It is matched by name:
    every ID of the record must be an individual of the file, and every
    marker a marker of the file (on the same chromosome, for HDF5); the
    values are checked chunk by chunk by digest (see the module docstring).
    Anything else (CSV, a cross's HMM probabilities, a file that no longer
    matches) gives :class:`MemoryChunks`.
    """
    base = _fields(genotypes)
    path = str(genotypes.source or "")
    try:
        if path.lower().endswith(".bed") and genotypes.kind == "dosage" and os.path.isfile(path):
            return _plink_chunks(genotypes, path, base)
        if path.lower().endswith((".h5", ".hdf5")) and os.path.isfile(path):
            return _h5_chunks(genotypes, path, base)
    except (OSError, KeyError, ValueError):
        pass  # unreadable or not matching: the client sends the chunks
    return MemoryChunks(**base)


def _index_of(names: Sequence[str], wanted: Sequence[str]) -> np.ndarray | None:
    index = pd.Index(list(names)).get_indexer(list(wanted))
    return None if (index < 0).any() else index.astype(np.int64)


def _plink_chunks(genotypes: Genotypes, path: str, base: dict) -> ChunkSource:
    from bed_reader import open_bed

    with open_bed(path, count_A1=True) as bed:
        file_ids = np.asarray(bed.iid, dtype=str)
        file_markers = np.asarray(bed.sid, dtype=str)
    rows = _index_of(file_ids, genotypes.ids)
    columns = _index_of(file_markers, genotypes.markers)
    if rows is None or columns is None:
        return MemoryChunks(**base)
    return FileChunks(**base, path=os.path.abspath(path), format="plink", rows=rows, columns=columns,
                      file_shape=(file_ids.size, file_markers.size))


def _h5_chunks(genotypes: Genotypes, path: str, base: dict) -> ChunkSource:
    import h5py

    from .genostore import FORMAT, text

    with h5py.File(path, "r") as f:
        if text(f.attrs.get("format", "")) != FORMAT or str(f.attrs.get("kind")) != genotypes.kind:
            return MemoryChunks(**base)
        rows = _index_of([text(v) for v in f["ids"][()]], genotypes.ids)
        if rows is None:
            return MemoryChunks(**base)
        columns = np.empty(genotypes.n_markers, dtype=np.int64)
        chrom = np.asarray(genotypes.chromosome, dtype=object)
        genotype_map = {}
        for c in pd.unique(chrom):
            if f"chr/{c}" not in f:
                return MemoryChunks(**base)
            where = np.flatnonzero(chrom == c)
            local = _index_of([text(v) for v in f[f"chr/{c}/markers"][()]], [genotypes.markers[k] for k in where])
            if local is None:
                return MemoryChunks(**base)
            columns[where] = local
            if genotypes.kind == "genoprobs":
                own = [text(v) for v in f[f"chr/{c}/genotypes"][()]]
                if any(g not in genotypes.genotype_names for g in own):
                    return MemoryChunks(**base)
                genotype_map[c] = np.array([genotypes.genotype_names.index(g) for g in own], dtype=np.int64)
    return FileChunks(**base, path=os.path.abspath(path), format="h5", rows=rows, columns=columns,
                      genotype_map=genotype_map)
