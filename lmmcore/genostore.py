"""Genotypes in a binary file: HDF5 (through h5py), one dataset per chromosome.

Genotype probabilities of Diversity Outbred mice at 10^4 to 10^5 markers are
gigabytes as CSV, and parsing that text is most of a scan's time. This module
stores a :class:`~lmmcore.genotypes.Genotypes` record in an HDF5 file (the
extension ``.h5`` or ``.hdf5`` selects it wherever ``--genoprobs`` is read)
and reads it back, whole or for some chromosomes only.

Layout (format ``lmmcore-genotypes``, version 1)
------------------------------------------------
``/`` attributes
    ``format = "lmmcore-genotypes"``, ``version = 1``, ``kind`` (``"genoprobs"``
    or ``"dosage"``), ``source`` (where the genotypes came from),
    ``chromosomes`` (their names, in genome order).
``/ids``
    The individual IDs (UTF-8 strings), one per row of every array.
``/chr/<name>/markers``, ``/chr/<name>/position``
    Marker names and positions (cM for genetic maps) of one chromosome, in
    order.
``/chr/<name>/probs`` with ``/chr/<name>/genotypes``
    Genotype probabilities ``(n, markers, genotypes)`` of that chromosome
    with its own genotype names (R/qtl2's per-chromosome arrays: the X
    chromosome of an F2 has ``SS, SB, BS, BB, SY, BY`` where the autosomes
    have ``SS, SB, BB``); or ``/chr/<name>/dosage`` ``(n, markers)``.
``/chr/<name>/alleles`` with ``/chr/<name>/allele_map``
    When the genotypes carry their cross type's map to allele probabilities
    (:attr:`~lmmcore.genotypes.Genotypes.allele_map`): the alleles of that
    chromosome and the ``(genotypes, alleles)`` map. Files without them
    (written before they existed) read the map from the genotype names.

Arrays are float64 (as computed) unless ``dtype="float32"`` is asked for,
chunked by blocks of markers so that a reader of a few markers or of one
chromosome touches only those chunks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .allele_map import union_allele_map
from .errors import LMMInputError
from .genotypes import Genotypes, sort_chromosomes
from .io import atomic_output

__all__ = ["BINARY_SUFFIXES", "is_binary_genotypes", "open_h5", "read_genotypes_h5", "write_genotypes_h5"]

#: File-name endings that select this format.
BINARY_SUFFIXES = (".h5", ".hdf5")

FORMAT = "lmmcore-genotypes"
VERSION = 1

#: Markers per HDF5 chunk along the marker axis.
_CHUNK_MARKERS = 64


def is_binary_genotypes(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a binary genotype file (by its extension)."""
    return str(path).lower().endswith(BINARY_SUFFIXES)


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise LMMInputError(
            "Reading or writing .h5 genotype files needs h5py; install it with 'pip install h5py'."
        ) from None
    return h5py


def text(value) -> str:
    """An HDF5 string attribute or element as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def open_h5(path: str | os.PathLike, *, fmt: str, version: int, what: str, written_by: str):
    """The open HDF5 file ``path`` of lmmcore format ``fmt``, or a one-sentence :class:`LMMInputError`.

    The one check of lmmcore's binary files (genotypes, kinships, eigendecompositions): the file
    exists, is HDF5, says ``format = fmt``, and was not written by a newer lmmcore than ``version``.
    """
    h5py = _h5py()
    if not os.path.isfile(path):
        raise LMMInputError(f"The {what} {path} does not exist; check the path.")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise LMMInputError(f"{path} is not an HDF5 file; a {what} must be written by {written_by}.") from None
    if text(f.attrs.get("format", "")) != fmt:
        f.close()
        raise LMMInputError(
            f"{path} is an HDF5 file but not an {fmt} file (no format={fmt!r} attribute); write it with {written_by}."
        )
    if int(f.attrs.get("version", 0)) > version:
        found = f.attrs["version"]
        f.close()
        raise LMMInputError(f"{path} was written by a newer lmmcore (format version {found}); upgrade lmmcore to read it.")
    return f


def _chromosome_genotypes(genotypes: Genotypes, chrom: str) -> tuple[str, ...]:
    by_chr = getattr(genotypes, "genotypes_by_chr", None)
    if by_chr and chrom in by_chr:
        return tuple(by_chr[chrom])
    return tuple(genotypes.genotype_names)


def write_genotypes_h5(
    genotypes: Genotypes, path: str | os.PathLike, *, force: bool = False, dtype: str = "float64"
) -> Path:
    """Write ``genotypes`` to an HDF5 file (see the module docstring for the layout).

    Parameters
    ----------
    genotypes : Genotypes
        Probabilities or dosages.
    path : str or path-like
        Output file; ``.h5`` or ``.hdf5``.
    force : bool
        Replace an existing file; without it an existing file is an error.
    dtype : {"float64", "float32"}
        Storage type of the values (float32 halves the file; probabilities
        then carry about 7 significant digits).

    Returns
    -------
    Path
        The file written, through :func:`lmmcore.io.atomic_output` (no partial
        file on failure, permissions from the user's umask).
    """
    h5py = _h5py()
    if dtype not in ("float64", "float32"):
        raise LMMInputError(f"dtype must be 'float64' or 'float32', not {dtype!r}.")
    string = h5py.string_dtype()
    chromosome = np.asarray(genotypes.chromosome)
    chromosomes = sort_chromosomes(set(genotypes.chromosome))
    with atomic_output(path, force=force) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, version=VERSION, kind=genotypes.kind, source=genotypes.source)
        f.attrs["chromosomes"] = np.array(chromosomes, dtype=object)
        f.create_dataset("ids", data=np.array(genotypes.ids, dtype=object), dtype=string)
        for chrom in chromosomes:
            cols = np.flatnonzero(chromosome == chrom)
            g = f.create_group(f"chr/{chrom}")
            names = np.array([genotypes.markers[k] for k in cols], dtype=object)
            g.create_dataset("markers", data=names, dtype=string)
            g.create_dataset("position", data=genotypes.position[cols])
            chunk_m = max(1, min(len(cols), _CHUNK_MARKERS))
            if genotypes.probs is not None:
                own = _chromosome_genotypes(genotypes, chrom)
                which = [genotypes.genotype_names.index(name) for name in own]
                values = genotypes.probs[:, cols][:, :, which].astype(dtype, copy=False)
                g.create_dataset("genotypes", data=np.array(own, dtype=object), dtype=string)
                g.create_dataset("probs", data=values, chunks=(values.shape[0], chunk_m, values.shape[2]))
                if genotypes.allele_map is not None:
                    rows = genotypes.allele_map[which]
                    carried = np.flatnonzero(rows.any(axis=0))
                    g.create_dataset("alleles", data=np.array([genotypes.alleles[k] for k in carried],
                                                              dtype=object), dtype=string)
                    g.create_dataset("allele_map", data=rows[:, carried])
            else:
                values = genotypes.dosage[:, cols].astype(dtype, copy=False)
                g.create_dataset("dosage", data=values, chunks=(values.shape[0], chunk_m))
    return Path(path)


def _strings(dataset) -> list[str]:
    return [text(v) for v in dataset[()]]


def read_genotypes_h5(path: str | os.PathLike, *, chromosomes: Sequence[str] | None = None) -> Genotypes:
    """Read genotypes written by :func:`write_genotypes_h5`.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file.
    chromosomes : sequence of str, optional
        Read only these chromosomes (only their chunks are read).

    Returns
    -------
    Genotypes
        In genome order. For probabilities, ``genotype_names`` is the union of
        the chromosomes' genotype names (in the order they first appear) and
        a genotype that a chromosome does not have has probability 0 there.

    Raises
    ------
    LMMInputError
        If the file is not an HDF5 file of this format, or a requested
        chromosome is not in it.
    """
    path = Path(path)
    with open_h5(path, fmt=FORMAT, version=VERSION, what="genotype file",
                 written_by="'lmmcore genoprob --out FILE.h5' (or lmmcore.genostore.write_genotypes_h5)") as f:
        stored = [str(c) for c in f.attrs["chromosomes"]]
        wanted = stored if chromosomes is None else [str(c) for c in chromosomes]
        absent = [c for c in wanted if c not in stored]
        if absent:
            raise LMMInputError(
                f"{path} has no chromosome {', '.join(absent)}; it holds {', '.join(stored)}."
            )
        wanted = [c for c in stored if c in set(wanted)]
        ids = _strings(f["ids"])
        kind = str(f.attrs["kind"])
        markers: list[str] = []
        chrom_of: list[str] = []
        positions = []
        blocks = []
        by_chr: dict[str, tuple[str, ...]] = {}
        maps: dict[str, tuple[list[str], np.ndarray]] = {}
        for chrom in wanted:
            g = f[f"chr/{chrom}"]
            names = _strings(g["markers"])
            markers += names
            chrom_of += [chrom] * len(names)
            positions.append(g["position"][()])
            if kind == "genoprobs":
                by_chr[chrom] = tuple(_strings(g["genotypes"]))
                blocks.append(np.asarray(g["probs"][()], dtype=float))
                if "allele_map" in g:
                    maps[chrom] = (_strings(g["alleles"]), np.asarray(g["allele_map"][()], dtype=float))
            else:
                blocks.append(np.asarray(g["dosage"][()], dtype=float))
    position = np.concatenate(positions) if positions else np.empty(0)
    if kind != "genoprobs":
        return Genotypes(ids=ids, markers=markers, chromosome=chrom_of, position=position,
                         dosage=np.concatenate(blocks, axis=1), source=str(path))
    union: list[str] = []
    for names in by_chr.values():
        union += [name for name in names if name not in union]
    probs = np.zeros((len(ids), len(markers), len(union)))
    start = 0
    for chrom, block in zip(wanted, blocks):
        stop = start + block.shape[1]
        probs[:, start:stop, [union.index(name) for name in by_chr[chrom]]] = block
        start = stop
    extra = {}
    if len(set(by_chr.values())) > 1 and "genotypes_by_chr" in Genotypes.__dataclass_fields__:
        extra["genotypes_by_chr"] = by_chr
    if maps and len(maps) == len(wanted):
        pieces = [(c, by_chr[c], names, block) for c, (names, block) in maps.items()]
        extra["alleles"], extra["allele_map"] = union_allele_map(
            union, pieces, f"{path}: its allele maps", "write the file again with 'lmmcore genoprob'.")
    return Genotypes(ids=ids, markers=markers, chromosome=chrom_of, position=position, probs=probs,
                     genotype_names=tuple(union), source=str(path), **extra)
