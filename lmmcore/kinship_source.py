"""Where a scan's kinships come from: one matrix, one per chromosome, or computed from the genotypes.

A genome scan needs, for every group of markers, the kinship it is tested
against: one overall kinship for all markers, or for each chromosome the
kinship of the other chromosomes (leave one chromosome out, LOCO). They come
from the genotypes (:mod:`lmmcore.kinship`), from a matrix the caller gives,
or from a mapping ``{chromosome: matrix}`` (e.g. read from a file).
:func:`kinship_source` turns any of these into a :class:`KinshipSource`
that hands out one matrix at a time.

LOCO kinships computed here are lazy (:class:`LocoKinship`): with ``M``
markers in all and ``M_c`` on chromosome c (polymorphic ones, for dosages),

    K_{-c} = (M K - M_c K_c) / (M - M_c),

so the overall kinship is formed once and each chromosome's own kinship
when it is scanned; memory holds two n x n matrices rather than one per
chromosome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .eigen import Eigendecomposition, validate_kinship_matrix
from .eigenstore import SavedEigen
from .errors import LMMInputError
from .genotypes import Genotypes
from .kinship import Kinship, kinship_from_dosages, kinship_from_genoprobs, used_markers
from .markers import as_slice, impute_mean

__all__ = ["DecomposedKinship", "KinshipSource", "LocoKinship", "SavedEigenSource", "kinship_source", "kinship_data"]


class KinshipSource:
    """The kinship of every group of markers, one group at a time.

    ``mode`` is ``"overall"`` (one group, label ``"all"``) or ``"loco"`` (a
    group per chromosome). ``ids`` labels the rows of every matrix.
    """

    def __init__(self, mode: str, ids, getter: Callable[[str], np.ndarray], chromosomes=None):
        self.mode = mode
        self.ids = tuple(str(i) for i in ids)
        self._get = getter
        self._chromosomes = chromosomes

    def groups(self, genotypes: Genotypes) -> list[tuple[str, np.ndarray]]:
        """``(label, marker indices)`` of every group, in genome order."""
        chrom = np.asarray(genotypes.chromosome, dtype=object)
        if self.mode == "overall":
            return [("all", np.arange(genotypes.n_markers))]
        out = []
        for c in genotypes.chromosomes:
            if self._chromosomes is not None and c not in self._chromosomes:
                raise LMMInputError(
                    f"the LOCO kinships have no matrix for chromosome '{c}'; give one for every "
                    "chromosome of the genotypes (have: " + ", ".join(map(str, self._chromosomes)) + ")"
                )
            out.append((c, np.flatnonzero(chrom == c)))
        return out

    def matrix(self, label: str) -> np.ndarray:
        """The kinship of group ``label`` (rows in the order of :attr:`ids`)."""
        return self._get(label)

    def decomposition(self, label: str):
        """A saved eigendecomposition of the kinship of group ``label`` (all of :attr:`ids`), or None."""
        return None


class SavedEigenSource(KinshipSource):
    """Kinships from a saved eigendecomposition (:class:`lmmcore.eigenstore.SavedEigen`).

    :meth:`decomposition` hands out the saved ``U, d`` (used as they are for
    the individuals of the file, in its order); :meth:`matrix` recovers
    ``K = U diag(d) U'`` for a scan whose individuals are a subset (their
    sub-kinship is decomposed again).
    """

    def __init__(self, saved: SavedEigen):
        chromosomes = None if saved.mode == "overall" else saved.labels
        super().__init__(saved.mode, saved.ids, saved.kinship, chromosomes=chromosomes)
        self.saved = saved

    def decomposition(self, label: str):
        return self.saved.decomposition(label)


@dataclass(frozen=True, eq=False)
class DecomposedKinship:
    """One overall kinship with its eigendecomposition, computed already.

    ``lmmcore scan --kinship FILE`` decomposes the file's kinship while it
    imports (:mod:`lmmcore.kinship_csv`); the scan then uses ``eig`` where it
    would have called ``decompose_kinship(matrix, check=False)`` itself (the
    phenotypes observed on all of the kinship's individuals, in its order),
    and decomposes sub-kinships as usual.

    Attributes
    ----------
    kinship : DataFrame, ndarray or Kinship
        What :func:`kinship_source` accepts as one matrix.
    eig : Eigendecomposition
        ``decompose_kinship(matrix, check=False)`` of that matrix.
    """

    kinship: Any
    eig: Eigendecomposition


class _DecomposedSource(KinshipSource):
    """An overall kinship whose decomposition (of all of :attr:`ids`, in order) is known."""

    def __init__(self, ids, matrix: np.ndarray, eig: Eigendecomposition):
        super().__init__("overall", ids, lambda _label: matrix)
        self._eig = eig

    def decomposition(self, label: str):
        return self._eig


def kinship_source(kinship, genotypes: Genotypes, kind: str) -> KinshipSource:
    """A :class:`KinshipSource` from what :func:`lmmcore.scan.scan` accepts as ``kinship``.

    ``"overall"`` or ``"loco"`` (computed from ``genotypes``; ``kind`` for
    dosages), a matrix (ndarray in the order of ``genotypes.ids``, labelled
    DataFrame or :class:`~lmmcore.kinship.Kinship`), or a mapping
    ``{chromosome: matrix}`` of LOCO kinships, or a
    :class:`~lmmcore.eigenstore.SavedEigen` (saved decompositions, reused),
    or a :class:`DecomposedKinship` (one matrix and its decomposition).
    """
    if isinstance(kinship, SavedEigen):
        return SavedEigenSource(kinship)
    if isinstance(kinship, DecomposedKinship):
        ids, K = _matrix_with_ids(kinship.kinship, genotypes.ids, "the kinship matrix")
        if kinship.eig.vectors.shape[0] != K.shape[0]:
            raise LMMInputError(f"the decomposition is of {kinship.eig.vectors.shape[0]} individuals but the "
                                f"kinship has {K.shape[0]}")
        return _DecomposedSource(ids, K, kinship.eig)
    if isinstance(kinship, str):
        key = kinship.strip().lower()
        if key == "overall":
            K = _kinship_of(genotypes, kinship_data(genotypes), kind)
            return KinshipSource("overall", genotypes.ids, lambda _label: K)
        if key == "loco":
            lazy = LocoKinship(genotypes, kind)
            return KinshipSource("loco", genotypes.ids, lazy.matrix)
        raise LMMInputError(
            f"kinship '{kinship}' is not understood; use 'loco', 'overall', a matrix or a "
            "mapping from chromosome to matrix"
        )
    if isinstance(kinship, Mapping):
        if not kinship:
            raise LMMInputError("the LOCO kinship mapping is empty")
        mats = {}
        ids0 = None
        for c, obj in kinship.items():
            ids, K = _matrix_with_ids(obj, genotypes.ids, f"the LOCO kinship of chromosome '{c}'")
            if ids0 is None:
                ids0 = ids
            elif ids != ids0:
                index = pd.Index(ids).get_indexer(list(ids0))
                if (index < 0).any():
                    raise LMMInputError(
                        f"the LOCO kinship of chromosome '{c}' lacks individual "
                        f"'{ids0[int(np.flatnonzero(index < 0)[0])]}' that the others have"
                    )
                K = K[np.ix_(index, index)]
            mats[str(c)] = K
        return KinshipSource("loco", ids0, lambda label: mats[label], chromosomes=tuple(mats))
    ids, K = _matrix_with_ids(kinship, genotypes.ids, "the kinship matrix")
    return KinshipSource("overall", ids, lambda _label: K)


def _matrix_with_ids(obj, default_ids, what: str):
    """(ids, square matrix) from an ndarray, labelled DataFrame or Kinship."""
    if isinstance(obj, Kinship):
        ids, K = obj.ids, np.asarray(obj.matrix, dtype=float)
    elif isinstance(obj, pd.DataFrame):
        ids = tuple(str(i) for i in obj.index)
        cols = [str(c) for c in obj.columns]
        if list(ids) != cols:
            if sorted(ids) != sorted(cols):
                raise LMMInputError(f"{what}: the column labels are not the same IDs as the row labels")
            obj = obj.copy()
            obj.columns = cols
            obj = obj.loc[:, list(ids)]
        K = obj.to_numpy(dtype=float)
    else:
        K = np.asarray(obj, dtype=float)
        ids = tuple(default_ids)
        if K.ndim == 2 and K.shape[0] != len(ids):
            raise LMMInputError(
                f"{what} is {K.shape[0]} x {K.shape[1]} but there are {len(ids)} genotyped individuals; "
                "an unlabelled kinship must list them in the order of the genotypes (or give a "
                "DataFrame labelled by ID)"
            )
    validate_kinship_matrix(K, what)
    return tuple(ids), K


def kinship_data(genotypes: Genotypes) -> np.ndarray:
    """Genotype data for the kinship: missing values replaced by their marker's mean.

    A marker with nothing observed stays NaN: the kinship functions skip it
    (with a message that counts such markers).
    """
    data = genotypes.data
    missing = np.isnan(data)
    if not missing.any():
        return data
    if genotypes.kind == "genoprobs":
        empty = missing.all(axis=(0, 2))
        partial = missing & ~empty[None, :, None]
    else:
        empty = missing.all(axis=0)
        partial = missing & ~empty[None, :]
    if not partial.any():
        return data
    n = data.shape[0]
    filled, _, _ = impute_mean(data.reshape(n, -1), partial.reshape(n, -1))
    return filled.reshape(data.shape)


def _kinship_of(genotypes: Genotypes, data: np.ndarray, kind: str, quiet: bool = False) -> np.ndarray:
    """The kinship of ``data`` (the genotypes' values, or some of their markers)."""
    silent = (lambda _message: None) if quiet else None
    if genotypes.kind == "genoprobs":
        return kinship_from_genoprobs(data, genotypes.genotype_names, allele_map=genotypes.allele_matrix()[1],
                                      report=silent)
    return kinship_from_dosages(data, kind, report=silent)


class LocoKinship:
    """Leave-one-chromosome-out kinships computed from genotypes, one chromosome at a time.

    ``K_{-c} = (M K - M_c K_c) / (M - M_c)`` (module docstring), with the
    markers counted as the kinship functions count them
    (:func:`lmmcore.kinship.used_markers`).
    """

    def __init__(self, genotypes: Genotypes, kind: str):
        self.genotypes = genotypes
        self.kind = kind
        self.data = kinship_data(genotypes)
        chrom = np.asarray(genotypes.chromosome, dtype=object)
        self.members = {c: np.flatnonzero(chrom == c) for c in genotypes.chromosomes}
        if len(self.members) < 2:
            raise LMMInputError(
                f"all markers are on chromosome '{genotypes.chromosomes[0]}'; leave-one-chromosome-out "
                "kinships need markers on at least two chromosomes (use kinship='overall')"
            )
        self.used = used_markers(self.data)
        self.total_used = int(self.used.sum())
        self.K = _kinship_of(genotypes, self.data, kind)

    def matrix(self, chromosome: str) -> np.ndarray:
        """``K_{-c}`` for chromosome ``c``."""
        idx = self.members[chromosome]
        m_c = int(self.used[idx].sum())
        rest = self.total_used - m_c
        if rest == 0:
            raise LMMInputError(
                f"every informative marker is on chromosome '{chromosome}', so the kinship without it "
                "has no markers; use kinship='overall'"
            )
        if m_c == 0:
            return self.K
        K_c = _kinship_of(self.genotypes, self.data[:, as_slice(idx)], self.kind, quiet=True)
        out = (self.total_used * self.K - m_c * K_c) / rest
        return (out + out.T) * 0.5
