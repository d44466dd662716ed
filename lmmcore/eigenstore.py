"""Decompose once, reuse everywhere: kinships and their eigendecompositions in binary files.

``lmmcore eigen ... --out K.eig`` saves ``K = U diag(d) U'`` (one kinship, or
one per chromosome for leave-one-chromosome-out) so that ``fit``, ``scan``,
``effects`` and ``fit1`` given ``--eigen K.eig`` neither parse a kinship CSV
nor decompose it again (GEMMA's ``-d``/``-u``). ``lmmcore kinship --out
K.h5`` stores the kinship itself in binary (read back by ``--kinship K.h5``).

Both are HDF5 files (h5py), read whole (a few n x n arrays).

Layout of an eigen file (format ``lmmcore-eigen``, version 1)
--------------------------------------------------------------
``/`` attributes
    ``format = "lmmcore-eigen"``, ``version = 1``, ``mode`` (``"overall"`` or
    ``"loco"``), ``labels`` (``"all"`` for one kinship, else the chromosome
    each kinship leaves out, in order).
``/ids``
    The individual IDs (UTF-8), the order of the rows of every ``U``.
``/eigen/<i>/values``, ``/eigen/<i>/vectors``
    ``d`` (ascending, non-negative, rounding noise set to exactly 0, as
    :func:`lmmcore.eigen.decompose_kinship` returns it) and ``U`` (columns)
    of kinship ``i``; attributes ``label``, ``sha256`` (of the kinship, see
    :func:`kinship_hash`), ``n_zero``, ``n_clipped_negative``.

Layout of a kinship file (format ``lmmcore-kinship``, version 1): the same
root attributes and ``/ids``, and ``/kinship/<i>/matrix`` (n x n float64)
with attributes ``label`` and ``sha256``.

Notes
-----
The saved decomposition is the one of the *full* set of IDs. A phenotype
observed on exactly those individuals (the usual case) uses it as saved, so
results are bit-identical to decomposing the kinship again. A phenotype
observed on a subset S needs the eigendecomposition of ``K_SS``, which is not
a sub-block of ``U``: the kinship is recovered as ``K = U diag(d) U'`` (one
matrix product), restricted to S and decomposed again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .eigen import Eigendecomposition, decompose_kinship, validate_kinship_matrix
from .errors import LMMInputError
from .genostore import open_h5, text
from .io import atomic_output

__all__ = [
    "EIGEN_FORMAT",
    "KINSHIP_FORMAT",
    "SavedEigen",
    "decompose_kinships",
    "is_binary_kinship",
    "kinship_hash",
    "load_data_with_eigen",
    "read_eigen",
    "read_kinship_h5",
    "seed_cache",
    "write_eigen",
    "write_kinship_h5",
]

EIGEN_FORMAT = "lmmcore-eigen"
KINSHIP_FORMAT = "lmmcore-kinship"
VERSION = 1

#: File-name endings that make ``--kinship FILE`` a binary kinship.
BINARY_SUFFIXES = (".h5", ".hdf5")


def is_binary_kinship(path) -> bool:
    """Whether ``path`` names a binary (HDF5) kinship file, by its extension."""
    return str(path).lower().endswith(BINARY_SUFFIXES)


def kinship_hash(kinship: np.ndarray, ids: Sequence[str]) -> str:
    """SHA-256 (hex) of a kinship and its IDs.

    Notes
    -----
    The digest covers the IDs (UTF-8, each followed by a NUL byte), the shape,
    then the float64 values in row-major order, little-endian: the same
    matrix with the same IDs in the same order always has the same hash.
    """
    K = np.ascontiguousarray(kinship, dtype="<f8")
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode("utf-8") + b"\0")
    h.update(repr(K.shape).encode())
    h.update(memoryview(K).cast("B"))
    return h.hexdigest()


@dataclass(frozen=True)
class SavedEigen:
    """The eigendecomposition(s) of one kinship or of LOCO kinships, with their IDs.

    Attributes
    ----------
    ids : tuple of str
        Row order of every eigenvector matrix.
    mode : {"overall", "loco"}
    decompositions : dict of str to Eigendecomposition
        By label: ``"all"`` for one kinship, else the chromosome left out.
    hashes : dict of str to str
        :func:`kinship_hash` of each kinship (with ``ids``).
    source : str
        The file read (for messages), or ``""``.
    """

    ids: tuple[str, ...]
    mode: str
    decompositions: dict
    hashes: dict
    source: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.decompositions)

    @property
    def name(self) -> str:
        return f"eigen file '{self.source}'" if self.source else "the saved eigendecomposition"

    def decomposition(self, label: str = "all") -> Eigendecomposition:
        """The decomposition of kinship ``label``."""
        if label not in self.decompositions:
            raise LMMInputError(
                f"{self.name} has no kinship for '{label}' (it has: {', '.join(self.labels)}); "
                "make it again with 'lmmcore eigen' from the same genotypes"
            )
        return self.decompositions[label]

    def kinship(self, label: str = "all") -> np.ndarray:
        """``U diag(d) U'``, the kinship recovered (symmetrised), in the order of :attr:`ids`.

        Equal to the kinship that was decomposed up to rounding (a few ulps);
        used only where a subset of the individuals needs its own decomposition.
        """
        eig = self.decomposition(label)
        U = eig.vectors
        K = (U * eig.values) @ U.T
        return (K + K.T) * 0.5

    def check_kinship(self, kinship: np.ndarray, ids: Sequence[str], label: str = "all",
                      what: str = "the kinship") -> np.ndarray:
        """``kinship`` reordered to :attr:`ids`, after checking its IDs and hash.

        Raises
        ------
        LMMInputError
            Other IDs, or another matrix (the hash differs).
        """
        K = self.align_ids(np.asarray(kinship, dtype=float), ids, what)
        if kinship_hash(K, self.ids) != self.hashes.get(label):
            where = "" if label == "all" else f" (chromosome '{label}')"
            raise LMMInputError(
                f"{what}{where} is not the kinship that {self.name} was made from (their sha256 hashes "
                "differ); make the eigen file again with 'lmmcore eigen' from this kinship, or leave one out"
            )
        return K

    def align_ids(self, matrix: np.ndarray, ids: Sequence[str], what: str) -> np.ndarray:
        """A square ``matrix`` labelled by ``ids``, reordered to :attr:`ids`; other IDs are an error."""
        ids = [str(i) for i in ids]
        if ids == list(self.ids):
            return matrix
        index = {v: k for k, v in enumerate(ids)}
        missing = [i for i in self.ids if i not in index]
        extra = sorted(set(ids) - set(self.ids))
        if missing or extra or len(ids) != len(self.ids):
            example = (f"'{missing[0]}' is in {self.name} but not in {what}" if missing
                       else f"'{extra[0]}' is in {what} but not in {self.name}")
            raise LMMInputError(
                f"{what} and {self.name} have different individuals ({example}); they must have the same "
                "IDs: make the eigen file again with 'lmmcore eigen' from this kinship"
            )
        order = np.array([index[i] for i in self.ids])
        return matrix[np.ix_(order, order)]


def decompose_kinships(kinships, ids: Sequence[str]) -> SavedEigen:
    """Eigendecompose one kinship or ``{chromosome: kinship}`` (LOCO) for :func:`write_eigen`.

    Parameters
    ----------
    kinships : ndarray or mapping of str to ndarray
        In the order of ``ids`` (validated: square, finite, symmetric, PSD).
    ids : sequence of str

    Returns
    -------
    SavedEigen
    """
    ids = tuple(str(i) for i in ids)
    mats = ({str(c): k for c, k in kinships.items()} if isinstance(kinships, Mapping)
            else {"all": kinships})
    decs, hashes = {}, {}
    for label, K in mats.items():
        K = np.asarray(K, dtype=float)
        what = "the kinship" if label == "all" else f"the LOCO kinship of chromosome '{label}'"
        if K.shape != (len(ids), len(ids)):
            raise LMMInputError(f"{what} is {K.shape[0]} x {K.shape[-1]} but there are {len(ids)} IDs")
        validate_kinship_matrix(K, what)
        decs[label] = decompose_kinship(K, check=False)
        hashes[label] = kinship_hash(K, ids)
    mode = "overall" if list(mats) == ["all"] else "loco"
    return SavedEigen(ids, mode, decs, hashes)


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise LMMInputError("reading or writing binary kinship files needs h5py; install it with "
                            "'pip install h5py'") from None
    return h5py


def write_eigen(saved: SavedEigen, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a :class:`SavedEigen` to an HDF5 file (layout in the module docstring).

    Written through :func:`lmmcore.io.atomic_output`: an existing file is
    replaced only with ``force``, a failed write leaves no partial file.
    """
    h5py = _h5py()
    string = h5py.string_dtype()
    with atomic_output(path, force=force) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=EIGEN_FORMAT, version=VERSION, mode=saved.mode)
        f.attrs["labels"] = np.array(saved.labels, dtype=object)
        f.create_dataset("ids", data=np.array(saved.ids, dtype=object), dtype=string)
        for i, (label, eig) in enumerate(saved.decompositions.items()):
            g = f.create_group(f"eigen/{i}")
            g.attrs.update(label=label, sha256=saved.hashes[label], n_zero=eig.n_zero,
                           n_clipped_negative=eig.n_clipped_negative)
            g.create_dataset("values", data=np.asarray(eig.values, dtype=float))
            g.create_dataset("vectors", data=np.asarray(eig.vectors, dtype=float))
    return Path(path)


def write_kinship_h5(kinships, ids: Sequence[str], path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write one kinship or ``{chromosome: kinship}`` (LOCO) to an HDF5 file (format ``lmmcore-kinship``)."""
    h5py = _h5py()
    string = h5py.string_dtype()
    ids = tuple(str(i) for i in ids)
    mats = ({str(c): k for c, k in kinships.items()} if isinstance(kinships, Mapping)
            else {"all": kinships})
    with atomic_output(path, force=force) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=KINSHIP_FORMAT, version=VERSION,
                       mode="overall" if list(mats) == ["all"] else "loco")
        f.attrs["labels"] = np.array(list(mats), dtype=object)
        f.create_dataset("ids", data=np.array(ids, dtype=object), dtype=string)
        for i, (label, K) in enumerate(mats.items()):
            K = np.asarray(K, dtype=float)
            g = f.create_group(f"kinship/{i}")
            g.attrs.update(label=label, sha256=kinship_hash(K, ids))
            g.create_dataset("matrix", data=K)
    return Path(path)


def _open(path, expected: str, what: str):
    """The open HDF5 file of format ``expected`` (see :func:`lmmcore.genostore.open_h5`)."""
    command = "eigen" if expected == EIGEN_FORMAT else "kinship"
    return open_h5(path, fmt=expected, version=VERSION, what=what, written_by=f"'lmmcore {command} --out'")


def read_eigen(path: str | os.PathLike) -> SavedEigen:
    """Read an eigen file written by :func:`write_eigen` (or ``lmmcore eigen``).

    Raises
    ------
    LMMInputError
        A missing file, a file that is not HDF5 or not of format
        ``lmmcore-eigen``, or arrays of the wrong shape.
    """
    with _open(path, EIGEN_FORMAT, "eigen file") as f:
        try:
            ids = tuple(text(v) for v in f["ids"][()])
            mode = text(f.attrs["mode"])
            n = len(ids)
            decs, hashes = {}, {}
            for i in range(len(f["eigen"])):
                g = f[f"eigen/{i}"]
                label = text(g.attrs["label"])
                d = np.asarray(g["values"][()], dtype=float)
                U = np.asarray(g["vectors"][()], dtype=float)
                if d.shape != (n,) or U.shape != (n, n):
                    raise LMMInputError(
                        f"eigen file '{path}': the decomposition '{label}' has {d.shape[0]} values and a "
                        f"{U.shape[0]} x {U.shape[-1]} vector matrix for {n} IDs; make the file again"
                    )
                d.setflags(write=False)
                U.setflags(write=False)
                decs[label] = Eigendecomposition(d, U, int(g.attrs["n_zero"]), int(g.attrs["n_clipped_negative"]))
                hashes[label] = text(g.attrs["sha256"])
        except KeyError as exc:
            raise LMMInputError(f"eigen file '{path}' lacks {exc}; make it again with 'lmmcore eigen'") from None
    return SavedEigen(ids, mode, decs, hashes, str(path))


def read_kinship_h5(path: str | os.PathLike):
    """Read a kinship written by :func:`write_kinship_h5`: a labelled DataFrame, or ``{chromosome: DataFrame}``.

    The same return as :func:`lmmcore.io.read_kinship_file`.
    """
    import pandas as pd

    with _open(path, KINSHIP_FORMAT, "kinship file") as f:
        try:
            ids = [text(v) for v in f["ids"][()]]
            mode = text(f.attrs["mode"])
            out = {}
            for i in range(len(f["kinship"])):
                g = f[f"kinship/{i}"]
                label = text(g.attrs["label"])
                K = np.asarray(g["matrix"][()], dtype=float)
                what = f"kinship file '{path}'" + ("" if label == "all" else f", chromosome '{label}'")
                if K.shape != (len(ids), len(ids)):
                    raise LMMInputError(f"{what} is {K.shape[0]} x {K.shape[-1]} for {len(ids)} IDs")
                validate_kinship_matrix(K, what, ids=ids)
                out[label] = pd.DataFrame(K, index=ids, columns=ids)
        except KeyError as exc:
            raise LMMInputError(f"kinship file '{path}' lacks {exc}; write it again with 'lmmcore kinship'") from None
    return out["all"] if mode == "overall" else out


# --------------------------------------------------------------------------- #
# Use by the fit (lmmcore fit --eigen)
# --------------------------------------------------------------------------- #
def load_data_with_eigen(saved: SavedEigen, pheno_path, covar_path=None, kinship_path=None, *,
                         strict_ids: bool = False):
    """:func:`lmmcore.io.load_data` with the kinship taken from a saved decomposition.

    Without ``kinship_path`` the kinship is recovered as ``U diag(d) U'`` (no
    CSV parsed); with it, the file is read and must match the saved IDs and
    hash (then its own values are used). Pass the result to
    :func:`seed_cache` so that the fit reuses the saved decomposition.
    ``strict_ids`` as for :func:`lmmcore.io.align`.
    """
    import pandas as pd

    from .io import align, display_name, read_covariates, read_kinship_file, read_phenotypes

    if saved.mode != "overall":
        raise LMMInputError(
            f"{saved.name} holds LOCO kinships (one per chromosome); a heritability fit needs one overall "
            "kinship: make it with 'lmmcore eigen' without --loco"
        )
    if kinship_path is not None:
        given = read_kinship_file(kinship_path)
        if isinstance(given, dict):
            raise LMMInputError(f"kinship file '{kinship_path}' holds LOCO kinships; 'lmmcore fit' needs one kinship")
        K = saved.check_kinship(given.to_numpy(dtype=float), given.index, what=f"kinship file '{kinship_path}'")
        sources = {"kinship": display_name(kinship_path)}
    else:
        K = saved.kinship("all")
        sources = {"kinship": str(saved.source or "eigen")}
    kin = pd.DataFrame(K, index=list(saved.ids), columns=list(saved.ids))
    P = read_phenotypes(pheno_path)
    C = read_covariates(covar_path) if covar_path is not None else None
    sources["phenotypes"] = display_name(pheno_path)
    if covar_path is not None:
        sources["covariates"] = display_name(covar_path)
    return align(kin, P, C, sources, strict_ids=strict_ids)


def seed_cache(cache, data, saved: SavedEigen) -> bool:
    """Put the saved decomposition into a :class:`~lmmcore.batch.PatternCache` for ``data``'s full set of IDs.

    Only when ``data.ids`` are exactly the saved IDs in the same order (then
    the decomposition is the one the fit would compute); returns whether it
    was seeded. Phenotypes observed on fewer individuals get their
    sub-kinship decomposed by the fit.
    """
    if tuple(data.ids) != saved.ids:
        return False
    cache.add_decomposition(data.kinship, saved.decomposition("all"))
    return True
