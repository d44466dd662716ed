"""Many phenotypes at once: group by missingness pattern, share each eigendecomposition.

An individual with a missing value is dropped for that phenotype only. The
phenotypes that are observed on exactly the same individuals form a
*pattern*; each pattern needs one eigendecomposition of its sub-kinship and one
rotation, and all its phenotypes are then fitted together, vectorised
(R/qtl2's ``est_herit`` batches the same way; lmmlite leaves the loop to the
user).

:func:`prepare_pattern` is the per-pattern pipeline (decompose the
sub-kinship, build the design, rotate) that :func:`fit_phenotypes`,
:func:`profile_table` and the dashboard share; a :class:`PatternCache`, owned
by the caller, keeps its decompositions and rotations between calls.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from .design import Design, design_matrix
from .eigen import Eigendecomposition, RotatedData, decompose_kinship, rotate
from .errors import LMMInputError, Report, reporting
from .io import LMMData
from .likelihood import profile_loglik
from .optimize import DEFAULT_GRID, DEFAULT_TOL
from .selection import check_names

if TYPE_CHECKING:  # pragma: no cover
    from .fit import FitResult

__all__ = [
    "MissingnessPattern",
    "PatternCache",
    "PatternModel",
    "prepare_pattern",
    "check_phenotype",
    "check_fit_request",
    "pattern_decomposition",
    "missingness_patterns",
    "fit_phenotypes",
    "FIT_BLOCK",
    "profile_table",
    "kinship_scale_factor",
    "results_table",
]

ProgressCallback = Callable[[int, int, str], None]

#: At most this many phenotypes of one pattern are rotated and fitted together (vectorised): a
#: pattern with more is rotated and fitted in consecutive blocks of this many. Every value then
#: depends only on the phenotypes of its block (the rounding of a matrix product depends on its
#: shape), so a distributed fit whose tasks are whole blocks gives the in-process values byte for
#: byte; and the fit's memory is bounded by a block, not by the pattern.
FIT_BLOCK = 512


def _blocks(m: int, block: int) -> list[slice]:
    """Consecutive slices of at most ``block`` of ``m`` columns."""
    return [slice(k, min(k + block, m)) for k in range(0, m, block)]


def _join_columns(parts: list[dict[str, object]]) -> dict[str, object]:
    """The column dicts of consecutive blocks of one pattern (same keys) as one."""
    if len(parts) == 1:
        return parts[0]
    out: dict[str, object] = {}
    for key, first in parts[0].items():
        if isinstance(first, list):
            out[key] = [value for part in parts for value in part[key]]
        else:
            out[key] = np.concatenate([part[key] for part in parts])
    return out


@dataclass(frozen=True)
class MissingnessPattern:
    """Phenotypes observed on the same individuals.

    Attributes
    ----------
    observed : ndarray of bool, shape (n,)
        Which individuals are used.
    phenotypes : tuple of str
    """

    observed: np.ndarray
    phenotypes: tuple[str, ...]

    @property
    def n(self) -> int:
        return int(self.observed.sum())

    @property
    def key(self) -> bytes:
        return np.packbits(self.observed).tobytes() + self.observed.size.to_bytes(8, "little")


def missingness_patterns(phenotypes: pd.DataFrame) -> list[MissingnessPattern]:
    """Group the columns of a phenotype table by which rows are observed.

    Patterns come in order of their first phenotype's column.
    """
    observed = phenotypes.notna().to_numpy()
    if observed.shape[1] == 0:
        return []
    # one byte string per column (its observed rows, packed to bits): grouping 1-d keys is fast
    packed = np.ascontiguousarray(np.packbits(observed, axis=0).T)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    patterns = []
    for group in np.argsort(first, kind="stable"):
        cols = np.flatnonzero(inverse == group)
        names = tuple(str(phenotypes.columns[c]) for c in cols)
        patterns.append(MissingnessPattern(observed[:, cols[0]].copy(), names))
    return patterns


def kinship_scale_factor(kinship: np.ndarray, scale: float | str = 1.0) -> float:
    """The factor c such that the fitted kinship is ``c K``.

    Parameters
    ----------
    kinship : ndarray
    scale : float or {"as-is", "diag", "gower"}
        A positive number (``2`` gives R/qtl2's ``2 K`` convention for a
        kinship from ``calc_kinship``); ``"as-is"`` is 1; ``"diag"`` makes
        the mean diagonal 1; ``"gower"`` makes ``tr(P K P) / (n - 1) = 1``
        with P the centring matrix (Gower's factor: then h2 is the share of
        the *sample* variance due to K).

    Notes
    -----
    h2 depends on the scale of K: with ``K' = c K`` the same model has
    ``h2' = h2 / (h2 + c (1 - h2))`` (see :func:`lmmcore.fit.rescale_h2`).
    The likelihood, the fitted values and the test of h2 = 0 do not change.
    """
    if isinstance(scale, str):
        key = scale.strip().lower()
        n = kinship.shape[0]
        if key in ("as-is", "asis", "none", "1"):
            return 1.0
        if key == "diag":
            return float(n / np.trace(kinship))
        if key == "gower":
            centred_trace = np.trace(kinship) - kinship.sum() / n
            if centred_trace <= 0:
                raise LMMInputError("the kinship has no variation between individuals; Gower scaling is undefined")
            return float((n - 1) / centred_trace)
        try:
            scale = float(key)
        except ValueError:
            raise LMMInputError(
                f"kinship scale '{scale}' is not understood; give a positive number, 'diag' or 'gower'"
            ) from None
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise LMMInputError(f"the kinship scale must be a positive number, not {scale}")
    return scale


def check_phenotype(
    name: str,
    values: np.ndarray,
    source: str | None = None,
    *,
    among: str = "among the aligned individuals",
    task: str = "a variance-component fit",
) -> None:
    """Raise :class:`LMMInputError` if a phenotype cannot be fitted, with a sentence that says why.

    The check every entry point makes (the fit, the genome scan, the
    dashboard, which catches the error to leave the phenotype out).

    Parameters
    ----------
    name : str
    values : ndarray
        The phenotype's values for the individuals in use; NaN = missing.
    source : str, optional
        The file (or table) to name first in the sentence.
    among : str
        Which individuals ``values`` covers, as the sentence says it.
    task : str
        What needs the observations (``"a scan"``, ...).

    Raises
    ------
    LMMInputError
        Fewer than 3 observed values, an infinite value, or no variation
        (every observed value the same).
    """
    prefix = f"{source}: " if source else ""
    values = np.asarray(values, dtype=float)
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        raise LMMInputError(
            f"{prefix}phenotype '{name}' has no observed value {among} (all "
            "missing; at least 3 are needed); remove it, or check that its IDs match the kinship's"
        )
    if observed.size < 3:
        raise LMMInputError(
            f"{prefix}phenotype '{name}' has only {observed.size} observed value(s) {among}; "
            f"{task} needs at least 3 (and more than the number of coefficients); "
            "remove it or add observations"
        )
    if not np.all(np.isfinite(observed)):
        raise LMMInputError(f"{prefix}phenotype '{name}' has infinite values; use finite numbers and NaN for missing")
    if np.all(observed == observed[0]):
        raise LMMInputError(
            f"{prefix}phenotype '{name}' is constant (every value is {observed[0]:g}); "
            "it has no variance to split; remove it"
        )


def _check_phenotypes(table: pd.DataFrame, source: str) -> None:
    """:func:`check_phenotype` of every column, the checks made on the whole table at once.

    Only a column that fails (too few values, infinite values, constant) is
    passed to :func:`check_phenotype`, which raises with its sentence; the
    first such column in order raises, as a loop would.
    """
    values = table.to_numpy(dtype=float)
    observed = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        low = np.where(observed, values, np.inf).min(axis=0, initial=np.inf)
        high = np.where(observed, values, -np.inf).max(axis=0, initial=-np.inf)
    bad = (observed.sum(axis=0) < 3) | np.isinf(values).any(axis=0) | ~(high > low)
    for j in np.flatnonzero(bad):
        check_phenotype(str(table.columns[j]), values[:, j], source)


# --------------------------------------------------------------------------- one pattern


def _kinship_fingerprint(kinship: np.ndarray) -> bytes:
    K = np.ascontiguousarray(kinship, dtype=float)
    return hashlib.blake2b(memoryview(K).cast("B"), digest_size=16).digest() + repr(K.shape).encode()


def _array_fingerprint(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a, dtype=float)
    return hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).digest() + repr(a.shape).encode()


class PatternCache:
    """What a caller keeps between fits of the same data: decompositions and rotations.

    The caller owns it (the command line makes one per run, the dashboard one
    per session) and passes it as ``cache=`` to :func:`fit_phenotypes`,
    :func:`profile_table`, :func:`prepare_pattern` and
    :func:`pattern_decomposition`. Entries are keyed by fingerprints of the
    values (kinship, pattern, design, phenotypes), so one cache can safely
    serve several data sets. ``len(cache)`` is the number of
    eigendecompositions.

    Parameters
    ----------
    decompositions : dict, optional
        An existing dict of decompositions to share (a plain dict passed as
        ``cache=`` is used this way, without a memo of rotations).
    rotations : bool
        Also keep the rotated data (``y* = U'y``, ``X* = U'X``), so that a
        profile after a fit, or the dashboard's walkthrough, rotates nothing
        again.
    """

    def __init__(self, decompositions: dict | None = None, *, rotations: bool = True) -> None:
        self.decompositions: dict = {} if decompositions is None else decompositions
        self.rotations: dict | None = {} if rotations else None

    def __len__(self) -> int:
        return len(self.decompositions)

    def __repr__(self) -> str:
        n_rot = 0 if self.rotations is None else len(self.rotations)
        return f"PatternCache({len(self)} decomposition(s), {n_rot} rotation(s))"

    def add_decomposition(self, kinship: np.ndarray, eig: Eigendecomposition,
                          observed: np.ndarray | None = None) -> None:
        """Store a decomposition made elsewhere (e.g. read by :mod:`lmmcore.eigenstore`).

        ``eig`` must be the decomposition of ``kinship`` restricted to
        ``observed`` (all individuals by default); it is keyed as
        :func:`pattern_decomposition` looks it up.
        """
        observed = np.ones(kinship.shape[0], dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
        if eig.n != int(observed.sum()):
            raise LMMInputError(f"the decomposition is of {eig.n} individuals, not {int(observed.sum())}")
        self.decompositions[(_kinship_fingerprint(kinship), MissingnessPattern(observed, ()).key)] = eig

    def clear(self) -> None:
        """Forget everything."""
        self.decompositions.clear()
        if self.rotations is not None:
            self.rotations.clear()


def _as_cache(cache: PatternCache | dict | None) -> PatternCache:
    if isinstance(cache, PatternCache):
        return cache
    if cache is None:
        return PatternCache()
    return PatternCache(cache, rotations=False)


def pattern_decomposition(
    kinship: np.ndarray,
    observed: np.ndarray,
    cache: PatternCache | dict | None = None,
    *,
    fingerprint: bytes | None = None,
    report: Report | None = None,
) -> Eigendecomposition:
    """The eigendecomposition of the kinship of the observed individuals, cached.

    Parameters
    ----------
    kinship : ndarray, shape (n, n)
    observed : ndarray of bool, shape (n,)
    cache : PatternCache or dict, optional
        Decompositions already made. Keys combine a fingerprint of the
        kinship's values with the pattern, so one cache can safely serve
        several data sets.
    fingerprint : bytes, optional
        The kinship's fingerprint, when the caller has it already (it costs
        one pass over K).
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    Eigendecomposition
    """
    with reporting(report):
        observed = np.asarray(observed, dtype=bool)
        if fingerprint is None:
            fingerprint = _kinship_fingerprint(kinship)
        store = cache.decompositions if isinstance(cache, PatternCache) else cache
        key = (fingerprint, MissingnessPattern(observed, ()).key)
        if store is not None and key in store:
            return store[key]
        sub = kinship if observed.all() else kinship[np.ix_(observed, observed)]
        eig = decompose_kinship(sub, check=False)
        if store is not None:
            store[key] = eig
        return eig


@dataclass(frozen=True)
class PatternModel:
    """One missingness pattern ready to fit: its individuals, decomposition, design and rotated data.

    Attributes
    ----------
    pattern : MissingnessPattern
        Which individuals are used, and the phenotypes (all observed on them).
    ids : tuple of str
        The IDs of those individuals.
    y : ndarray, shape (n, m)
        The phenotypes as given (before rotation).
    eig : Eigendecomposition
        Of the kinship of those individuals, as given (not scaled).
    kinship_scale : float
        The factor c of the kinship fitted, ``c K`` (``rot.d = c eig.values``).
    design : Design
    rot : RotatedData
        ``y* = U'y``, ``X* = U'X`` and ``d`` (scaled); with more phenotypes
        than ``block``, ``y*`` is rotated block by block.
    block : int
        At most this many phenotypes are fitted together (see :data:`FIT_BLOCK`).
    """

    pattern: MissingnessPattern
    ids: tuple[str, ...]
    y: np.ndarray
    eig: Eigendecomposition
    kinship_scale: float
    design: Design
    rot: RotatedData
    block: int = FIT_BLOCK

    @property
    def phenotypes(self) -> tuple[str, ...]:
        return self.pattern.phenotypes

    @property
    def observed(self) -> np.ndarray:
        return self.pattern.observed

    @property
    def n(self) -> int:
        return self.pattern.n

    def fit(self, method: str = "reml", *, tol: float = DEFAULT_TOL,
            grid: int | np.ndarray = DEFAULT_GRID) -> list[FitResult]:
        """:func:`lmmcore.fit.fit_rotated` of every phenotype of the pattern (in blocks of :attr:`block`)."""
        from .fit import fit_rotated  # here: a scan uses this module's patterns, never lmmcore.fit

        fits = []
        for rot, names in self._pieces():
            fits.extend(fit_rotated(rot, method, phenotype_names=names, coef_names=self.design.names,
                                    tol=tol, grid=grid, kinship_scale=self.kinship_scale))
        return fits

    def fit_columns(self, method: str = "reml", *, tol: float = DEFAULT_TOL,
                    grid: int | np.ndarray = DEFAULT_GRID) -> dict[str, object]:
        """:func:`lmmcore.fit.fit_columns` of every phenotype of the pattern (the table's columns)."""
        from .fit import fit_columns  # here: a scan uses this module's patterns, never lmmcore.fit

        return _join_columns([
            fit_columns(rot, method, phenotype_names=names, coef_names=self.design.names, tol=tol, grid=grid,
                        kinship_scale=self.kinship_scale)
            for rot, names in self._pieces()
        ])

    def _pieces(self) -> list[tuple[RotatedData, tuple[str, ...]]]:
        """The rotated data and names of each block of phenotypes (the whole pattern when it fits in one)."""
        m = self.rot.n_phenotypes
        if m <= self.block:
            return [(self.rot, self.phenotypes)]
        return [(self.rot.with_phenotypes(np.ascontiguousarray(self.rot.y[:, s])), self.phenotypes[s])
                for s in _blocks(m, self.block)]

    def profile(self, h2, method: str = "reml") -> np.ndarray:
        """The profile log-likelihood, shape ``(len(h2), m)`` (see :func:`lmmcore.likelihood.profile_loglik`)."""
        return profile_loglik(self.rot, h2, method)


def _prepare(data: LMMData, table: pd.DataFrame, pattern: MissingnessPattern, factor: float,
             cache: PatternCache, fingerprint: bytes, design_messages: bool, block: int = FIT_BLOCK) -> PatternModel:
    """:func:`prepare_pattern` for a pattern of ``table`` and a checked scale factor."""
    obs = pattern.observed
    try:
        eig = pattern_decomposition(data.kinship, obs, cache, fingerprint=fingerprint)
    except LMMInputError as exc:
        if "kinship" not in data.sources:
            raise
        raise LMMInputError(f"kinship file '{data.sources['kinship']}': {exc}") from None
    covar = data.covariates.loc[obs] if data.covariates is not None else None
    n = int(obs.sum())
    if design_messages:
        design = design_matrix(covar, n, data.sources.get("covariates", "the covariates"))
    else:
        design = design_matrix(covar, n, warn=False)  # the fit has reported them
    y = table.loc[obs, list(pattern.phenotypes)].to_numpy(dtype=float)
    key = None
    if cache.rotations is not None:
        key = (fingerprint, pattern.key, factor, _array_fingerprint(design.matrix), _array_fingerprint(y),
               min(block, y.shape[1]))
        rot = cache.rotations.get(key)
        if rot is not None:
            return _pattern_model(data, pattern, y, eig, factor, design, rot, block)
    scaled = replace(eig, values=eig.values * factor) if factor != 1.0 else eig
    if y.shape[1] > block:  # rotated block by block, as the fit uses them (see FIT_BLOCK)
        parts = [rotate(scaled, y[:, s], design.matrix) for s in _blocks(y.shape[1], block)]
        rot = parts[0].with_phenotypes(np.hstack([part.y for part in parts]))
    else:
        rot = rotate(scaled, y, design.matrix)
    if key is not None:
        cache.rotations[key] = rot
    return _pattern_model(data, pattern, y, eig, factor, design, rot, block)


def _pattern_model(data, pattern, y, eig, factor, design, rot, block) -> PatternModel:
    ids = tuple(np.asarray(data.ids, dtype=object)[pattern.observed])
    return PatternModel(pattern, ids, y, eig, factor, design, rot, block)


def prepare_pattern(
    data: LMMData,
    phenotypes: str | Sequence[str],
    *,
    kinship_scale: float | str = 1.0,
    cache: PatternCache | dict | None = None,
    design_messages: bool = True,
    report: Report | None = None,
) -> PatternModel:
    """Decompose, design and rotate for phenotypes observed on the same individuals.

    The per-pattern pipeline that :func:`fit_phenotypes`, :func:`profile_table`
    and the dashboard share: the kinship of the observed individuals is
    decomposed (or found in ``cache``), the design matrix built from their
    covariates and the phenotypes and covariates rotated (or found in a
    :class:`PatternCache`).

    Parameters
    ----------
    data : LMMData
    phenotypes : str or sequence of str
        Columns of ``data.phenotypes`` that are missing for the same individuals.
    kinship_scale : float or str
        See :func:`kinship_scale_factor`.
    cache : PatternCache or dict, optional
        Owned by the caller; a plain dict keeps decompositions only.
    design_messages : bool
        Report what the design matrix drops or replaces (False when the
        caller has reported it already, e.g. by a fit).
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`).

    Returns
    -------
    PatternModel

    Raises
    ------
    LMMInputError
        Unknown phenotype, phenotypes missing for different individuals, no
        observed value, or a kinship or covariates the engine cannot use.
    """
    with reporting(report):
        names = [phenotypes] if isinstance(phenotypes, str) else [str(p) for p in phenotypes]
        source = data.sources.get("phenotypes", "phenotypes")
        if not names:
            raise LMMInputError(f"{source}: no phenotype named")
        check_names(names, data.phenotypes.columns, _pheno_label(data))
        table = data.phenotypes[names]
        patterns = missingness_patterns(table)
        if len(patterns) != 1:
            raise LMMInputError(
                f"{source}: the phenotypes {', '.join(names)} are missing for different individuals; "
                "prepare each missingness pattern on its own (see missingness_patterns)"
            )
        if patterns[0].n == 0:
            raise LMMInputError(f"{source}: phenotype '{names[0]}' has no observed value")
        factor = kinship_scale_factor(data.kinship, kinship_scale)
        return _prepare(data, table, patterns[0], factor, _as_cache(cache),
                        _kinship_fingerprint(data.kinship), design_messages)


def _pheno_label(data: LMMData) -> str | None:
    """``phenotype file 'p.csv'`` for messages about the phenotypes' columns (None when unnamed)."""
    name = data.sources.get("phenotypes")
    return f"phenotype file '{name}'" if name else None


# --------------------------------------------------------------------------- many phenotypes


def fit_phenotypes(
    data: LMMData,
    phenotypes: Sequence[str] | None = None,
    *,
    method: str = "reml",
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float | str = 1.0,
    cache: PatternCache | dict | None = None,
    block: int = FIT_BLOCK,
    progress: ProgressCallback | None = None,
    report: Report | None = None,
) -> list[FitResult]:
    """Fit every requested phenotype of an aligned data set.

    Parameters
    ----------
    data : LMMData
        From :func:`lmmcore.io.load_data` or :func:`lmmcore.io.align`.
    phenotypes : sequence of str, optional
        Column names; all by default.
    method : {"reml", "ml"}
    tol : float
        Absolute tolerance on h2.
    grid : int or array_like
        Grid used to bracket local maxima.
    kinship_scale : float or str
        See :func:`kinship_scale_factor`.
    cache : PatternCache or dict, optional
        Eigendecompositions (and, in a :class:`PatternCache`, rotations) by
        pattern, reused between calls (the dashboard keeps one per session
        so that switching method costs no decomposition).
    block : int
        A pattern's phenotypes are rotated and fitted together in
        consecutive blocks of at most this many (:data:`FIT_BLOCK`): each
        value depends only on its own block, so a fit of whole blocks
        elsewhere (e.g. a distributed task) gives the same bytes.
    progress : callable, optional
        ``progress(done, total, description)`` after each pattern.
    report : callable, optional
        Receiver of the messages (see :func:`lmmcore.errors.reporting`);
        by default they are :class:`~lmmcore.errors.LMMWarning` warnings.

    Returns
    -------
    list of FitResult
        In the order of ``phenotypes``.
    """
    with reporting(report):
        by_name: dict[str, FitResult] = {}
        names, models = _pattern_models(data, phenotypes, method, kinship_scale, cache, progress, block)
        for model in models:
            by_name.update({f.phenotype: f for f in model.fit(method, tol=tol, grid=grid)})
        return [by_name[name] for name in names]


def _pattern_models(data: LMMData, phenotypes, method: str, kinship_scale, cache, progress, block: int):
    """Check a fit's request: the phenotype names and a generator of each pattern's :class:`PatternModel`.

    The models are prepared one at a time, in order; ``progress`` is called
    when the caller, having fitted a model, asks for the next.
    """
    method, names, table = check_fit_request(data, phenotypes, method, block)
    factor = kinship_scale_factor(data.kinship, kinship_scale)
    cache = _as_cache(cache)
    patterns = missingness_patterns(table)
    fingerprint = _kinship_fingerprint(data.kinship)

    def models():
        for i, pattern in enumerate(patterns):
            yield _prepare(data, table, pattern, factor, cache, fingerprint, design_messages=True, block=block)
            if progress is not None:
                progress(i + 1, len(patterns), f"{len(pattern.phenotypes)} phenotype(s) on {pattern.n} individuals")

    return names, models()


def check_fit_request(data: LMMData, phenotypes, method: str, block: int) -> tuple[str, list[str], pd.DataFrame]:
    """The checks of a fit's request, in process or on a cluster: ``(method, names, table of those phenotypes)``.

    The method is ML or REML; the names exist (nearest names suggested),
    are not empty and not repeated; ``block`` is positive; every selected
    phenotype passes :func:`check_phenotype`.
    """
    method = str(method).lower()
    if method not in ("ml", "reml"):
        raise LMMInputError(f"method must be 'reml' or 'ml', not '{method}'")
    table = data.phenotypes
    source = data.sources.get("phenotypes", "phenotypes")
    names = list(table.columns) if phenotypes is None else [str(p) for p in phenotypes]
    check_names(names, table.columns, _pheno_label(data))
    if not names:
        raise LMMInputError(f"{source}: no phenotype to fit")
    if int(block) < 1:
        raise ValueError(f"block must be a positive number of phenotypes, not {block}")
    _refuse_repeated(names, source)
    table = table[names]
    _check_phenotypes(table, source)
    return method, names, table


def _refuse_repeated(names: Sequence[str], source: str) -> None:
    """A phenotype named twice in a selection is an input error (``table[names]`` would hold it twice)."""
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise LMMInputError(
            f"{source}: phenotype '{twice[0]}' is named more than once in the selection; name each phenotype once"
        )


def profile_table(
    data: LMMData,
    phenotypes: Sequence[str] | None = None,
    h2=None,
    *,
    method: str = "reml",
    kinship_scale: float | str = 1.0,
    cache: PatternCache | dict | None = None,
    report: Report | None = None,
) -> pd.DataFrame:
    """The profile log-likelihood of each phenotype on a grid of h2 (long format).

    Columns ``phenotype, method, h2, loglik``; ``h2`` defaults to 101 equally
    spaced values from 0 to 1. Reuses the eigendecompositions in ``cache``
    (and, in a :class:`PatternCache`, the rotations of an earlier
    :func:`fit_phenotypes` of the same phenotypes).
    """
    with reporting(report):
        method = str(method).lower()
        h2 = np.linspace(0.0, 1.0, 101) if h2 is None else np.asarray(h2, dtype=float)
        table = data.phenotypes if phenotypes is None else data.phenotypes[list(phenotypes)]
        factor = kinship_scale_factor(data.kinship, kinship_scale)
        cache = _as_cache(cache)
        frames = []
        fingerprint = _kinship_fingerprint(data.kinship)
        for pattern in missingness_patterns(table):
            model = _prepare(data, table, pattern, factor, cache, fingerprint, design_messages=False)
            ll = model.profile(h2, method)
            for j, name in enumerate(pattern.phenotypes):
                frames.append(pd.DataFrame({"phenotype": name, "method": method, "h2": h2, "loglik": ll[:, j]}))
        out = pd.concat(frames, ignore_index=True)
        order = {name: i for i, name in enumerate(table.columns)}
        return out.sort_values(["phenotype", "h2"], key=lambda s: s.map(order) if s.name == "phenotype" else s,
                               kind="stable").reset_index(drop=True)


def results_table(fits: Sequence[FitResult]) -> pd.DataFrame:
    """One row per fit with the columns of ``lmmcore fit --out``."""
    return pd.DataFrame([f.to_row() for f in fits])
