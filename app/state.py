"""The dashboard's state: what is loaded, what is chosen, and what follows from it.

:class:`ExplorerState` is a :class:`param.Parameterized` object that holds the
user's choices (data set, phenotype, ML or REML, covariates, the h2 being
probed, the step of Brent's search) and serves the derived results. It imports
neither panel nor holoviews, so it can be driven and tested without a browser.
Every number comes from :mod:`lmmcore`; this module only selects, caches and
reshapes.

Caching
-------
Each state keeps its own eigendecomposition cache (a dict passed as
``cache=`` to :func:`lmmcore.fit_phenotypes` and :func:`lmmcore.profile_table`)
and memoises the fits of every phenotype per (method, covariates) choice, so
switching phenotype is a look-up and switching ML/REML re-uses the
decomposition. Both are replaced when a new data set is installed.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import param

from lmmcore import (
    CI_DROP,
    Eigendecomposition,
    FitResult,
    LMMData,
    LMMInputError,
    LMMWarning,
    RotatedData,
    design_matrix,
    fit_phenotypes,
    pattern_decomposition,
    profile_loglik,
    profile_table,
    results_table,
    rotate,
    solve_wls,
)
from lmmcore.wls import variance_factors

from .data import (
    UPLOAD_KINDS,
    align_tables,
    display_name,
    example_files,
    example_folder,
    load_example,
    parse_upload,
)
from .warning_capture import collect_warnings

__all__ = [
    "METHODS",
    "H2_CURVE",
    "PreparedData",
    "PendingJob",
    "BrentFrame",
    "Rotation",
    "Probe",
    "ExplorerState",
    "prepare_data",
    "build_pending",
]

#: Method keys and their labels.
METHODS: dict[str, str] = {"reml": "REML", "ml": "ML"}

#: The h2 values at which the profile curve is drawn.
H2_CURVE = np.linspace(0.0, 1.0, 201)

#: Points of the dense curve drawn inside one Brent bracket.
ZOOM_POINTS = 121

_MIN_OBSERVED = 3


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class PreparedData:
    """A data set ready to install: aligned, checked, decomposed and fitted once.

    Attributes
    ----------
    data : LMMData
        With unusable phenotype columns removed.
    label : str
        Where the data came from (shown to the user).
    cache : dict
        Eigendecompositions by missingness pattern (filled by the first fit).
    fits : dict
        ``{(method, use_covariates): {phenotype: FitResult}}`` computed so far.
    messages : tuple of str
        Warnings for the user (individuals or phenotypes dropped, ...).
    """

    data: LMMData
    label: str
    cache: dict
    fits: dict
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingJob:
    """Uploaded tables waiting to be aligned (a snapshot, safe to hand to a worker thread)."""

    tables: dict[str, pd.DataFrame]
    names: dict[str, str]
    messages: tuple[str, ...] = ()
    generation: int = 0


def _usable_phenotypes(data: LMMData) -> tuple[LMMData, list[str]]:
    """Drop phenotype columns that cannot be fitted (too few values, constant); say which."""
    keep, messages = [], []
    for name in data.phenotypes.columns:
        values = data.phenotypes[name].to_numpy(dtype=float)
        observed = values[np.isfinite(values)]
        if observed.size < _MIN_OBSERVED:
            messages.append(
                f"phenotype '{name}' has {observed.size} observed value(s) among the aligned "
                f"individuals (at least {_MIN_OBSERVED} are needed); it is not shown: add observations or remove it"
            )
        elif np.all(observed == observed[0]):
            messages.append(
                f"phenotype '{name}' is constant ({observed[0]:g}); it has no variance to split and is not "
                "shown: remove it"
            )
        else:
            keep.append(name)
    if not keep:
        source = data.sources.get("phenotypes", "the phenotype file")
        raise LMMInputError(f"{source}: no phenotype column can be fitted; " + "; ".join(messages))
    if len(keep) == data.phenotypes.shape[1]:
        return data, messages
    return replace(data, phenotypes=data.phenotypes[keep]), messages


def _fit_all(data: LMMData, method: str, use_covariates: bool, cache: dict) -> tuple[dict[str, FitResult], list[str]]:
    """Fit every phenotype with ``lmmcore.fit_phenotypes``; collect its warnings."""
    used = data if use_covariates else replace(data, covariates=None)
    with collect_warnings() as caught:
        fits = fit_phenotypes(used, method=method, cache=cache)
    messages = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, LMMWarning)))
    return {f.phenotype: f for f in fits}, messages


def prepare_data(
    data: LMMData,
    label: str,
    messages: tuple[str, ...] | list[str] = (),
    method: str = "reml",
) -> PreparedData:
    """Check a data set and fit all its phenotypes once (this fills the decomposition cache).

    Pure: it touches no state, so it may run in a worker thread.

    Raises
    ------
    LMMInputError
        If no phenotype can be fitted or the engine rejects the data.
    """
    data, dropped = _usable_phenotypes(data)
    cache: dict = {}
    use_cov = data.covariates is not None
    fits, fit_messages = _fit_all(data, method, use_cov, cache)
    return PreparedData(
        data=data,
        label=label,
        cache=cache,
        fits={(method, use_cov): fits},
        messages=tuple(dict.fromkeys([*messages, *dropped, *fit_messages])),
    )


def build_pending(job: PendingJob, method: str = "reml") -> PreparedData:
    """Align uploaded tables and prepare them (pure; may run in a worker thread)."""
    covar = job.tables.get("covariates")
    sources = {k: v for k, v in job.names.items()}
    data, messages = align_tables(job.tables["kinship"], job.tables["phenotypes"], covar, sources)
    names = ", ".join(job.names[k] for k in ("phenotypes", "kinship", "covariates") if k in job.names)
    return prepare_data(data, f"uploaded: {names}", [*job.messages, *messages], method)


# --------------------------------------------------------------------------- derived results


@dataclass(frozen=True)
class BrentFrame:
    """What the Brent player shows at one step.

    Frame 0 is the grid over [0, 1] that brackets the maxima; every later frame
    adds one evaluation of Brent's search, in the order the engine made them.

    Attributes
    ----------
    index, n_frames : int
    grid_h2, grid_loglik : ndarray
        The grid evaluations.
    h2, loglik : ndarray
        Brent evaluations made so far (frames 1..index).
    steps : tuple of str
        ``"start"``, ``"parabolic"`` or ``"golden"`` for each of them.
    current : dict or None
        The newest evaluation (``h2, loglik, step, search, bracket_low,
        bracket_high``); None at frame 0.
    search_bracket : tuple of float
        The bracket from the grid in which the current search runs.
    table : DataFrame
        The iterations so far, newest first.
    final_h2, final_loglik : float
        The engine's answer (shown on the last frame).
    """

    index: int
    n_frames: int
    grid_h2: np.ndarray
    grid_loglik: np.ndarray
    h2: np.ndarray
    loglik: np.ndarray
    steps: tuple[str, ...]
    current: dict | None
    search_bracket: tuple[float, float]
    table: pd.DataFrame
    final_h2: float
    final_loglik: float

    @property
    def is_last(self) -> bool:
        return self.index == self.n_frames - 1


@dataclass(frozen=True)
class Rotation:
    """One phenotype rotated into the eigenbasis of its kinship (for the walkthrough).

    Attributes
    ----------
    phenotype : str
    ids : tuple of str
        The individuals with an observed value.
    y : ndarray
        The phenotype before rotation.
    eig : Eigendecomposition
        Of the kinship of those individuals (shared with the fit's cache).
    rot : RotatedData
        ``y* = U'y``, ``X* = U'X``, ``d``.
    coef_names : tuple of str
    """

    phenotype: str
    ids: tuple[str, ...]
    y: np.ndarray
    eig: Eigendecomposition
    rot: RotatedData
    coef_names: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """The weighted least squares solution at one h2 (the walkthrough's slider).

    Attributes
    ----------
    h2 : float
    singular : bool
        True at h2 = 1 when K has zero eigenvalues: the covariance is singular
        and the log-likelihood is minus infinity.
    weights : ndarray
        ``w_i = 1 / (h2 d_i + 1 - h2)`` (NaN when singular).
    beta : ndarray
    sigma2, rss, loglik : float
    fitted, residuals : ndarray
        ``X* b(h2)`` and ``y* - X* b(h2)`` in the rotated space.
    """

    h2: float
    singular: bool
    weights: np.ndarray
    beta: np.ndarray
    sigma2: float
    rss: float
    loglik: float
    fitted: np.ndarray
    residuals: np.ndarray


class ExplorerState(param.Parameterized):
    """Everything one dashboard session knows.

    Parameters are the user's choices; methods return results derived from
    them (memoised). Messages for the user go to :attr:`notice`, which the
    views turn into notifications.
    """

    dataset = param.ClassSelector(class_=LMMData, default=None, allow_None=True, doc="The aligned data in use.")
    source_label = param.String(default="no data loaded", doc="Where the data came from.")
    messages = param.List(default=[], item_type=str, doc="Warnings about the data in use.")
    phenotype = param.Selector(default=None, objects=[], allow_None=True, doc="The phenotype shown.")
    method = param.Selector(default="reml", objects=list(METHODS), doc="Maximum likelihood or REML.")
    use_covariates = param.Boolean(default=True, doc="Include the covariates (an intercept is always fitted).")
    overlay = param.Boolean(default=False, doc="Also draw the profile of the other method.")
    h2_probe = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="The h2 of the walkthrough.")
    step = param.Integer(default=0, bounds=(0, None), doc="Frame of the Brent player.")
    pending = param.Dict(default={}, doc="Uploaded files not yet in use: kind -> file name.")
    notice = param.Dict(default=None, allow_None=True, doc="Latest message: level, text, serial.")
    busy = param.Boolean(default=False, doc="Files are being read or fitted (views show a loading indicator).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._cache: dict = {}
        self._fits: dict[tuple[str, bool], dict[str, FitResult]] = {}
        self._profiles: dict[tuple, pd.DataFrame] = {}
        self._rotations: dict[tuple, Rotation] = {}
        self._staged: dict[str, tuple[str, pd.DataFrame, list[str]]] = {}
        self._generation = 0  # counts staged uploads: only the newest set is installed
        self._busy_count = 0
        self._serial = itertools.count(1)
        self.param.watch(self._reset_step, ["phenotype", "method", "use_covariates", "dataset"])

    # ------------------------------------------------------------------ loading

    @classmethod
    def with_example(cls, folder=None, **params: Any) -> "ExplorerState":
        """A state with the example data set loaded (or empty, with a notice, if it is missing)."""
        state = cls(**params)
        state.load_example(folder)
        return state

    def load_example(self, folder=None) -> bool:
        """Load the bundled example (``assets/``); return whether it worked."""
        files = example_files(folder)
        if files is None:
            self._notify(
                "warning",
                f"the example data set is not available (no pheno.csv and kinship.csv in the folder "
                f"'{example_folder(folder).name}'); upload your own files",
            )
            return False
        try:
            data, messages = load_example(files)
            prepared = prepare_data(data, f"example data ({files.folder.name}/)", messages, self.method)
        except LMMInputError as exc:
            self._notify("error", str(exc))
            return False
        self._staged.clear()
        self.pending = {}
        self.install(prepared)
        return True

    def load_data(self, data: LMMData, label: str = "data") -> bool:
        """Use an aligned :class:`~lmmcore.io.LMMData`; return whether it worked."""
        try:
            prepared = prepare_data(data, label, (), self.method)
        except LMMInputError as exc:
            self._notify("error", str(exc))
            return False
        self.install(prepared)
        return True

    def install(self, prepared: PreparedData) -> None:
        """Make a prepared data set the current one (fast: everything is computed)."""
        names = [str(c) for c in prepared.data.phenotypes.columns]
        self._cache = prepared.cache
        self._fits = dict(prepared.fits)
        self._profiles.clear()
        self._rotations.clear()
        keep = self.phenotype if self.phenotype in names else names[0]
        # widen the choices first so that no widget bound to ``phenotype`` resets it
        # to a name of the new data while the old data are still in place
        self.param.phenotype.objects = list(dict.fromkeys([*self.param.phenotype.objects, *names]))
        self.param.update(
            dataset=prepared.data,
            source_label=prepared.label,
            messages=list(prepared.messages),
            phenotype=keep,
            use_covariates=prepared.data.covariates is not None,
            step=0,
        )
        self.param.phenotype.objects = names
        for text in prepared.messages:
            self._notify("warning", text)

    # uploads: parse one file at a time; align once phenotypes and kinship are there

    def receive_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """Parse an uploaded file and, when the set is complete, load it.

        A bad file raises nothing: it sends an error notice and leaves the
        loaded data set (and the earlier uploads) as they were.

        Parameters
        ----------
        kind : {"phenotypes", "kinship", "covariates"}
        filename : str
            As reported by the browser (shown in messages only).
        content : bytes

        Returns
        -------
        bool
            True when a new data set was installed.
        """
        try:
            table, messages = parse_upload(kind, filename, content)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self._upload_failed(kind, filename, exc)
            return False
        self.stage_upload(kind, filename, table, messages)
        job = self.pending_job()
        if job is None:
            return False
        try:
            prepared = build_pending(job, self.method)
        except Exception as exc:  # noqa: BLE001
            self._upload_failed(kind, filename, exc)
            return False
        self.install(prepared)
        return True

    async def areceive_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_upload` with the reading and fitting in a worker thread.

        The server's event loop stays free meanwhile (other sessions and this
        page keep responding) and :attr:`busy` is True, which the views show
        as a loading indicator. Parameters change only on the calling
        (event-loop) thread. When files arrive in quick succession, only the
        set staged last is installed.
        """
        self._busy_count += 1
        self.busy = True
        try:
            try:
                table, messages = await asyncio.to_thread(parse_upload, kind, filename, content)
            except Exception as exc:  # noqa: BLE001
                self._upload_failed(kind, filename, exc)
                return False
            self.stage_upload(kind, filename, table, messages)
            job = self.pending_job()
            if job is None:
                return False
            try:
                prepared = await asyncio.to_thread(build_pending, job, self.method)
            except Exception as exc:  # noqa: BLE001
                self._upload_failed(kind, filename, exc)
                return False
            if job.generation != self._generation:
                return False  # another file arrived meanwhile; its (newer) set is installed instead
            self.install(prepared)
            return True
        finally:
            self._busy_count -= 1
            self.busy = self._busy_count > 0

    def _upload_failed(self, kind: str, filename: str | None, exc: Exception) -> None:
        """Report a failed upload; nothing else changes."""
        if isinstance(exc, LMMInputError):
            text = str(exc)
        elif isinstance(exc, MemoryError):
            text = f"the {kind} file '{display_name(filename)}' is too large for the memory of this server"
        else:
            text = (
                f"the {kind} file '{display_name(filename)}' could not be used "
                f"({type(exc).__name__}: {exc}); the data loaded before are still in use"
            )
        self._notify("error", text)

    def stage_upload(self, kind: str, filename: str | None, table: pd.DataFrame, messages: list[str]) -> None:
        """Keep a parsed upload until the other files arrive."""
        if kind not in UPLOAD_KINDS:
            raise ValueError(f"unknown upload kind {kind!r}")
        self._staged[kind] = (display_name(filename), table, list(messages))
        self._generation += 1
        self.pending = {k: v[0] for k, v in self._staged.items()}
        missing = [k for k in ("phenotypes", "kinship") if k not in self._staged]
        if missing:
            self._notify(
                "info",
                f"received {kind} file '{display_name(filename)}'; now upload the {' and '.join(missing)} file",
            )

    def pending_job(self) -> PendingJob | None:
        """A snapshot of the staged uploads, or None while phenotypes or kinship is missing."""
        if not {"phenotypes", "kinship"} <= set(self._staged):
            return None
        return PendingJob(
            tables={k: v[1] for k, v in self._staged.items()},
            names={k: v[0] for k, v in self._staged.items()},
            messages=tuple(m for v in self._staged.values() for m in v[2]),
            generation=self._generation,
        )

    def notify(self, level: str, text: str) -> None:
        """Send a message to the user (``level``: info, warning or error)."""
        self._notify(level, text)

    def _notify(self, level: str, text: str) -> None:
        self.notice = {"level": level, "text": text, "serial": next(self._serial)}

    def _reset_step(self, *_events) -> None:
        self.step = 0

    # ------------------------------------------------------------------ results

    @property
    def phenotypes(self) -> list[str]:
        """The phenotypes that can be shown."""
        return list(self.param.phenotype.objects)

    @property
    def has_covariates(self) -> bool:
        return self.dataset is not None and self.dataset.covariates is not None

    def _used_data(self, use_covariates: bool) -> LMMData:
        return self.dataset if use_covariates else replace(self.dataset, covariates=None)

    def fits(self, method: str | None = None, use_covariates: bool | None = None) -> dict[str, FitResult]:
        """Fits of every phenotype (memoised per method and covariate choice).

        Returns an empty dict when no data are loaded or the engine refuses
        the fit (the reason goes to :attr:`notice`).
        """
        if self.dataset is None:
            return {}
        method = method or self.method
        use_cov = self.use_covariates if use_covariates is None else use_covariates
        use_cov = bool(use_cov and self.has_covariates)
        key = (method, use_cov)
        if key not in self._fits:
            try:
                fits, messages = _fit_all(self.dataset, method, use_cov, self._cache)
            except LMMInputError as exc:
                self._notify("error", str(exc))
                return {}
            self._fits[key] = fits
            for text in messages:
                self._notify("warning", text)
        return self._fits[key]

    @property
    def fit(self) -> FitResult | None:
        """The fit of the current phenotype by the current method."""
        return self.fits().get(self.phenotype)

    def fit_for(self, method: str) -> FitResult | None:
        """The current phenotype fitted by ``method``."""
        return self.fits(method).get(self.phenotype)

    def profile(self, method: str | None = None, h2=None) -> pd.DataFrame:
        """The current phenotype's profile log-likelihood (columns ``h2``, ``loglik``).

        From :func:`lmmcore.profile_table` on :data:`H2_CURVE` (or ``h2``);
        h2 values where it is minus infinity (h2 = 1 with a singular K) are kept.
        """
        if self.dataset is None or self.phenotype is None:
            return pd.DataFrame({"h2": [], "loglik": []})
        method = method or self.method
        use_cov = bool(self.use_covariates and self.has_covariates)
        grid = H2_CURVE if h2 is None else np.asarray(h2, dtype=float)
        key = (self.phenotype, method, use_cov, grid.size, float(grid[0]), float(grid[-1]))
        if key not in self._profiles:
            table = profile_table(
                self._used_data(use_cov), [self.phenotype], grid, method=method, cache=self._cache
            )
            self._profiles[key] = table[["h2", "loglik"]].reset_index(drop=True)
        return self._profiles[key]

    def results_frame(self) -> pd.DataFrame:
        """All phenotypes' results for the current method (the columns of ``lmmcore fit --out``)."""
        fits = self.fits()
        if not fits:
            return pd.DataFrame()
        return results_table([fits[p] for p in self.phenotypes if p in fits])

    def fit_rows(self, fit: FitResult | None = None) -> list[tuple[str, str, str]]:
        """The current fit as (quantity, value, note) rows for the results table."""
        fit = fit or self.fit
        if fit is None:
            return []
        se = f"{fit.h2_se:.4f}" if np.isfinite(fit.h2_se) else "not defined"
        rows = [
            ("phenotype", fit.phenotype, f"{fit.n} individuals, {fit.p} fixed-effect coefficient(s)"),
            ("method", METHODS[fit.method], "restricted" if fit.method == "reml" else "maximum likelihood"),
            ("h2", f"{fit.h2:.4f}", "heritability, unitless; " + ("on the boundary" if fit.boundary else "interior")),
            ("SE of h2", se, fit.h2_se_note or "from the curvature of the profile"),
            (
                "95% CI of h2",
                f"[{fit.h2_ci_low:.4f}, {fit.h2_ci_high:.4f}]",
                f"log-likelihood within {CI_DROP:.2f} of its maximum",
            ),
            ("sigma2_g", f"{fit.sigma2_g:.6g}", "genetic variance (phenotype units squared)"),
            ("sigma2_e", f"{fit.sigma2_e:.6g}", "residual variance (phenotype units squared)"),
        ]
        for name, (b, s) in fit.coefficients().items():
            rows.append((f"beta: {name}", f"{b:.6g}", f"SE {s:.4g}"))
        rows += [
            ("log-likelihood", f"{fit.loglik:.4f}", f"{METHODS[fit.method]}, at the optimum, all constants included"),
            ("log-likelihood at h2 = 0", f"{fit.loglik_h2_zero:.4f}", "no genetic variance"),
            ("LRT of h2 = 0", f"{fit.lrt_h2_zero:.4f}", "2 (L(h2) - L(0))"),
            ("p-value", f"{fit.p_h2_zero:.3g}", "50:50 mixture of chi-square(0) and chi-square(1)"),
            ("search", fit.message, f"{fit.n_evals} evaluations of the profile"),
        ]
        return rows

    # Brent's search, frame by frame

    @property
    def n_frames(self) -> int:
        """Frames of the Brent player: the grid, then one per Brent evaluation."""
        fit = self.fit
        if fit is None:
            return 1
        return 1 + int(sum(s != "grid" for s in fit.trace.step))

    def brent_frame(self, index: int | None = None) -> BrentFrame | None:
        """The Brent player's picture at frame ``index`` (default: :attr:`step`)."""
        fit = self.fit
        if fit is None:
            return None
        trace = fit.trace
        steps = np.asarray(trace.step)
        grid = steps == "grid"
        n_frames = 1 + int((~grid).sum())
        index = int(np.clip(self.step if index is None else index, 0, n_frames - 1))
        brent = np.flatnonzero(~grid)[:index]
        rows = []
        for k, i in enumerate(brent, start=1):
            rows.append(
                {
                    "#": k,
                    "search": int(trace.search[i]) + 1,
                    "step": str(steps[i]),
                    "h2": float(trace.h2[i]),
                    "log-likelihood": float(trace.loglik[i]),
                    "bracket low": float(trace.bracket_low[i]),
                    "bracket high": float(trace.bracket_high[i]),
                    "bracket width": float(trace.bracket_high[i] - trace.bracket_low[i]),
                }
            )
        table = pd.DataFrame(
            rows[::-1],
            columns=["#", "search", "step", "h2", "log-likelihood", "bracket low", "bracket high", "bracket width"],
        )
        current = None
        if len(brent):
            i = brent[-1]
            current = {
                "h2": float(trace.h2[i]),
                "loglik": float(trace.loglik[i]),
                "step": str(steps[i]),
                "search": int(trace.search[i]),
                "bracket_low": float(trace.bracket_low[i]),
                "bracket_high": float(trace.bracket_high[i]),
            }
            search = int(trace.search[i])
        else:
            search = 0
        starts = np.flatnonzero((steps == "start") & (trace.search == search))
        if starts.size:
            s = starts[0]
            search_bracket = (float(trace.bracket_low[s]), float(trace.bracket_high[s]))
        else:  # pragma: no cover - every fit has at least one search
            search_bracket = (0.0, 1.0)
        return BrentFrame(
            index=index,
            n_frames=n_frames,
            grid_h2=trace.h2[grid],
            grid_loglik=trace.loglik[grid],
            h2=trace.h2[brent],
            loglik=trace.loglik[brent],
            steps=tuple(str(s) for s in steps[brent]),
            current=current,
            search_bracket=search_bracket,
            table=table,
            final_h2=fit.h2,
            final_loglik=fit.loglik,
        )

    # the algorithm, step by step

    def rotation(self) -> Rotation | None:
        """The current phenotype rotated into the eigenbasis (memoised).

        The decomposition is the one the fit used (looked up in the session's
        cache by missingness pattern), so nothing is decomposed twice.
        """
        if self.dataset is None or self.phenotype is None:
            return None
        use_cov = bool(self.use_covariates and self.has_covariates)
        key = (self.phenotype, use_cov)
        if key in self._rotations:
            return self._rotations[key]
        data = self.dataset
        column = data.phenotypes[self.phenotype]
        observed = column.notna().to_numpy()
        eig = pattern_decomposition(data.kinship, observed, self._cache)
        covar = data.covariates.loc[observed] if use_cov else None
        design = design_matrix(covar, int(observed.sum()), warn=False)  # the fit has reported them
        y = column.to_numpy(dtype=float)[observed]
        rot = rotate(eig, y, design.matrix)
        ids = tuple(np.asarray(data.ids, dtype=object)[observed])
        result = Rotation(self.phenotype, ids, y, eig, rot, design.names)
        self._rotations[key] = result
        return result

    def probe(self, h2: float | None = None) -> Probe | None:
        """Weights, weighted least squares fit and log-likelihood at ``h2`` (default :attr:`h2_probe`)."""
        rotation = self.rotation()
        if rotation is None:
            return None
        h = float(self.h2_probe if h2 is None else h2)
        rot = rotation.rot
        loglik = float(profile_loglik(rot, [h], self.method)[0, 0])
        factors = variance_factors(np.array([h]), rot.d)[0]
        if np.any(factors <= 0):
            nan = np.full(rot.n, np.nan)
            return Probe(h, True, nan, np.full(rot.p, np.nan), np.nan, np.nan, loglik, nan, nan)
        sol = solve_wls(rot, [h], self.method)
        beta = sol.beta[0, 0]
        fitted = rot.X @ beta
        return Probe(
            h2=h,
            singular=False,
            weights=1.0 / factors,
            beta=beta,
            sigma2=float(sol.sigma2[0, 0]),
            rss=float(sol.rss[0, 0]),
            loglik=loglik,
            fitted=fitted,
            residuals=rot.y[:, 0] - fitted,
        )

    def data_summary(self) -> dict[str, Any]:
        """What is loaded: n, phenotypes (with observed counts), covariates, drops."""
        data = self.dataset
        if data is None:
            return {}
        return {
            "source": self.source_label,
            "n": data.n,
            "phenotypes": {str(c): int(data.phenotypes[c].notna().sum()) for c in data.phenotypes.columns},
            "covariates": [] if data.covariates is None else [str(c) for c in data.covariates.columns],
            "dropped": dict(data.dropped),
            "n_dropped": data.n_dropped,
            "files": dict(data.sources),
        }
