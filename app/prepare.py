"""Data sets made ready for a session: aligned, checked, transformed and fitted once.

Pure functions (no state, no panel): they may run in a worker thread. Every
number comes from :func:`lmmcore.fit_phenotypes`; this module chooses what
to give it (:class:`FitOptions`) and collects what it reports. Each data set
gets its own :class:`lmmcore.PatternCache` (decompositions and rotations), which
the session keeps while the data set is in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from lmmcore import FitResult, LMMData, LMMInputError, PatternCache, check_phenotype, fit_phenotypes

from .data import align_tables
from .messages import engine_messages
from .transforms import KINSHIP_SCALES, TRANSFORMS, transform_phenotypes

__all__ = [
    "METHODS",
    "FitOptions",
    "PendingJob",
    "PreparedData",
    "build_pending",
    "fit_all",
    "model_data",
    "prepare_data",
    "usable_phenotypes",
]

#: Method keys and their labels.
METHODS: dict[str, str] = {"reml": "REML", "ml": "ML"}


@dataclass(frozen=True)
class FitOptions:
    """The choices a fit depends on (beyond the data): its memo key.

    Attributes
    ----------
    method : {"reml", "ml"}
    use_covariates : bool
        False: intercept only.
    kinship_scale : str
        A key of :data:`app.transforms.KINSHIP_SCALES` (given to
        :func:`lmmcore.kinship_scale_factor`).
    transform : str
        A key of :data:`app.transforms.TRANSFORMS`.
    """

    method: str = "reml"
    use_covariates: bool = True
    kinship_scale: str = "as-is"
    transform: str = "none"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, not {self.method!r}")
        if self.kinship_scale not in KINSHIP_SCALES:
            raise ValueError(f"kinship scale must be one of {list(KINSHIP_SCALES)}, not {self.kinship_scale!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {list(TRANSFORMS)}, not {self.transform!r}")


@dataclass(frozen=True)
class PreparedData:
    """A data set ready to install: aligned, checked, decomposed and fitted once.

    Attributes
    ----------
    data : LMMData
        With unusable phenotype columns removed.
    label : str
        Where the data came from (shown to the user).
    cache : PatternCache
        Eigendecompositions and rotations by missingness pattern (filled by
        the first fit).
    fits : dict
        ``{FitOptions: {phenotype: FitResult}}`` computed so far.
    messages : tuple of str
        Warnings for the user (individuals or phenotypes dropped, ...).
    tables, names : dict
        The phenotype and covariate tables before alignment and the file name
        of each table, so that the data can be aligned again with another
        kinship.
    """

    data: LMMData
    label: str
    cache: PatternCache
    fits: dict
    messages: tuple[str, ...] = ()
    tables: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PendingJob:
    """Tables waiting to be aligned (a snapshot, safe to hand to a worker thread).

    Attributes
    ----------
    tables : dict
        ``kind -> DataFrame`` for ``phenotypes``, ``kinship`` and optionally ``covariates``.
    names : dict
        ``kind -> file name`` (for messages).
    messages : tuple of str
        What the readers reported.
    generation : int
        Which set of uploads this is (only the newest is installed).
    label : str
        Where the data come from; default "uploaded: <file names>".
    """

    tables: dict[str, pd.DataFrame]
    names: dict[str, str]
    messages: tuple[str, ...] = ()
    generation: int = 0
    label: str = ""


def usable_phenotypes(data: LMMData) -> tuple[LMMData, list[str]]:
    """Drop phenotype columns that cannot be fitted (:func:`lmmcore.check_phenotype`); say which."""
    keep, reasons = [], []
    for name in data.phenotypes.columns:
        try:
            check_phenotype(str(name), data.phenotypes[name].to_numpy(dtype=float))
        except LMMInputError as exc:
            reasons.append(str(exc))
        else:
            keep.append(name)
    if not keep:
        source = data.sources.get("phenotypes", "the phenotype file")
        raise LMMInputError(f"{source}: no phenotype column can be fitted; " + "; ".join(reasons))
    messages = [f"{reason} (left out of the dashboard)" for reason in reasons]
    if len(keep) == data.phenotypes.shape[1]:
        return data, messages
    return replace(data, phenotypes=data.phenotypes[keep]), messages


def model_data(data: LMMData, options: FitOptions) -> tuple[LMMData, dict[str, str], tuple[str, ...]]:
    """The data as fitted: phenotypes transformed, covariates left out when not used.

    Returns
    -------
    data : LMMData
    applied : dict
        The transform applied to each phenotype.
    messages : tuple of str
        Why a phenotype was left untransformed.
    """
    transformed = transform_phenotypes(data.phenotypes, options.transform)
    used = replace(data, phenotypes=transformed.table) if options.transform != "none" else data
    if not options.use_covariates and used.covariates is not None:
        used = replace(used, covariates=None)
    return used, transformed.applied, transformed.messages


def fit_all(data: LMMData, options: FitOptions, cache: PatternCache) -> tuple[dict[str, FitResult], list[str]]:
    """Fit every phenotype with :func:`lmmcore.fit_phenotypes`; collect what it reports."""
    used, _, transform_messages = model_data(data, options)
    with engine_messages() as messages:
        fits = fit_phenotypes(used, method=options.method, cache=cache, kinship_scale=options.kinship_scale)
    return {f.phenotype: f for f in fits}, [*transform_messages, *messages]


def prepare_data(
    data: LMMData,
    label: str,
    messages: tuple[str, ...] | list[str] = (),
    options: FitOptions = FitOptions(),
    tables: dict | None = None,
    names: dict | None = None,
) -> PreparedData:
    """Check a data set and fit all its phenotypes once with ``options`` (this fills the decomposition cache).

    Pure: it touches no state, so it may run in a worker thread.

    Raises
    ------
    LMMInputError
        If no phenotype can be fitted or the engine rejects the data.
    """
    data, dropped = usable_phenotypes(data)
    cache = PatternCache()
    options = replace(options, use_covariates=bool(options.use_covariates and data.covariates is not None))
    fits, fit_messages = fit_all(data, options, cache)
    return PreparedData(
        data=data,
        label=label,
        cache=cache,
        fits={options: fits},
        messages=tuple(dict.fromkeys([*messages, *dropped, *fit_messages])),
        tables=dict(tables or {}),
        names=dict(names or {}),
    )


def build_pending(job: PendingJob, options: FitOptions = FitOptions()) -> PreparedData:
    """Align tables and prepare them (pure; may run in a worker thread)."""
    covar = job.tables.get("covariates")
    sources = dict(job.names)
    data, messages = align_tables(job.tables["kinship"], job.tables["phenotypes"], covar, sources)
    names = ", ".join(job.names[k] for k in ("phenotypes", "kinship", "covariates") if k in job.names)
    label = job.label or f"uploaded: {names}"
    kept = {k: v for k, v in job.tables.items() if k != "kinship"}
    return prepare_data(data, label, [*job.messages, *messages], options, kept, job.names)
