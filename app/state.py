"""The dashboard's state: what is loaded, what is chosen, and what follows from it.

:class:`ExplorerState` is a :class:`param.Parameterized` object that holds the
user's choices (data set, phenotype, ML or REML, covariates, kinship scale,
phenotype transform, the h2 being probed, the step of Brent's search) and
serves the derived results. It imports neither panel nor holoviews, so it can
be driven and tested without a browser. Every number comes from
:mod:`lmmcore`; the pieces live in their own modules (:mod:`app.prepare`
fits a data set, :mod:`app.frames` reshapes one fit for the teaching tabs,
:mod:`app.model` describes the design, :mod:`app.diagnostics` the residuals);
this module selects and caches.

Caching
-------
Each state keeps its own :class:`lmmcore.PatternCache` (eigendecompositions
and rotations, passed as ``cache=`` to :func:`lmmcore.fit_phenotypes`,
:func:`lmmcore.profile_table` and :func:`lmmcore.prepare_pattern`) and
memoises the fits of every phenotype per :class:`~app.prepare.FitOptions`
(method, covariates, kinship scale, transform), so switching phenotype is a
look-up, switching ML/REML re-uses the decomposition and the rotation, and
the walkthrough and the profile curve share one rotation. Both are replaced
when a new data set is installed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import param

from lmmcore import CI_DROP, FitResult, LMMData, LMMInputError, PatternCache, profile_table, results_table

from .base import SessionState, run_now
from .data import UPLOAD_KINDS, display_name, example_files, example_folder, parse_upload, read_example
from .diagnostics import Diagnostics, residual_diagnostics
from .frames import BrentFrame, Probe, Rotation, brent_frame, make_rotation, n_frames, probe
from .model import ModelDescription, describe_model
from .prepare import (
    METHODS,
    FitOptions,
    PendingJob,
    PreparedData,
    build_pending,
    fit_all,
    model_data,
    prepare_data,
)
from .transforms import KINSHIP_SCALES, TRANSFORMS, boundary_note

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

#: The h2 values at which the profile curve is drawn.
H2_CURVE = np.linspace(0.0, 1.0, 201)

#: Points of the dense curve drawn inside one Brent bracket.
ZOOM_POINTS = 121

#: Columns of the side-by-side ML/REML table, for each method.
_BOTH_COLUMNS = ("h2", "h2_se", "h2_ci_low", "h2_ci_high", "loglik", "p_h2_zero", "boundary")


class ExplorerState(SessionState):
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
    kinship_scale = param.Selector(default="as-is", objects=list(KINSHIP_SCALES), doc=(
        "The kinship fitted: as given, 2 K (R/qtl2's convention), mean diagonal 1, or Gower's scaling "
        "(as the command line's --kinship-scale)."))
    transform = param.Selector(default="none", objects=list(TRANSFORMS), doc=(
        "Applied to every phenotype before fitting: none, natural log, or rank-based inverse normal."))
    overlay = param.Boolean(default=False, doc="Also draw the profile of the other method.")
    h2_probe = param.Number(default=0.5, bounds=(0.0, 1.0), step=0.01, doc="The h2 of the walkthrough.")
    step = param.Integer(default=0, bounds=(0, None), doc="Frame of the Brent player.")
    pending = param.Dict(default={}, doc="Uploaded files not yet in use: kind -> file name.")
    view_reset = param.Event(doc="Triggered by :meth:`reset_view` (plots go back to their full ranges).")
    cross = param.Parameter(default=None, doc=(
        "The :class:`~app.cross_data.CrossData` the data in use came from (None unless a cross was uploaded)."))

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._cache = PatternCache()
        self._fits: dict[FitOptions, dict[str, FitResult]] = {}
        self._models: dict[FitOptions, tuple[LMMData, dict[str, str]]] = {}
        self._profiles: dict[tuple, pd.DataFrame] = {}
        self._rotations: dict[tuple, Rotation] = {}
        self._diagnostics: dict[tuple, Diagnostics] = {}
        self._staged: dict[str, tuple[str, pd.DataFrame, list[str]]] = {}
        self._tables: dict[str, pd.DataFrame] = {}
        self._names: dict[str, str] = {}
        self._generation = 0  # counts staged uploads: only the newest set is installed
        self._step_after_switch = 0  # the Brent frame a switch of phenotype or method shows
        self.param.watch(self._reset_step,
                         ["phenotype", "method", "use_covariates", "dataset", "kinship_scale", "transform"])

    # ------------------------------------------------------------------ choices

    def options(self, method: str | None = None, use_covariates: bool | None = None) -> FitOptions:
        """The current fit options (``method``, ``use_covariates`` overridden when given)."""
        use_cov = self.use_covariates if use_covariates is None else use_covariates
        return FitOptions(
            method=method or self.method,
            use_covariates=bool(use_cov and self.has_covariates),
            kinship_scale=self.kinship_scale,
            transform=self.transform,
        )

    def reset_view(self) -> None:
        """Every choice back to its default (the data and the phenotype stay)."""
        self.param.update(
            method="reml",
            use_covariates=self.has_covariates,
            kinship_scale="as-is",
            transform="none",
            overlay=False,
            h2_probe=0.5,
            step=0,
        )
        self.param.trigger("view_reset")

    def _reset_step(self, *_events) -> None:
        self.step = self._step_after_switch

    def show_step(self, step: int, **choices: Any) -> None:
        """Switch to ``choices`` (method, phenotype, ...) and show Brent frame ``step`` of the new search.

        The step goes straight to ``step`` rather than through 0 (a switch
        otherwise restarts the player), so that a browser's player never
        sees the intermediate frame.
        """
        self._step_after_switch = step
        try:
            self.param.update(**choices)
        finally:
            self._step_after_switch = 0
        self.step = step

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
            self.notify(
                "warning",
                f"the example data set is not available (no pheno.csv and kinship.csv in the folder "
                f"'{example_folder(folder).name}'); upload your own files",
            )
            return False
        try:
            tables, names, messages = read_example(files)
        except LMMInputError as exc:
            self.notify("error", str(exc))
            return False
        job = PendingJob(tables, names, tuple(messages), self._generation, f"example data ({files.folder.name}/)")
        if not run_now(self._build_and_install(job, False, self._failed)):
            return False
        self._staged.clear()
        self.pending = {}
        return True

    def load_data(self, data: LMMData, label: str = "data") -> bool:
        """Use an aligned :class:`~lmmcore.io.LMMData`; return whether it worked."""
        try:
            prepared = prepare_data(data, label, (), self.options(use_covariates=True),
                                    {"phenotypes": data.phenotypes, "covariates": data.covariates},
                                    dict(data.sources))
        except LMMInputError as exc:
            self.notify("error", str(exc))
            return False
        self.install(prepared)
        return True

    def install(self, prepared: PreparedData) -> None:
        """Make a prepared data set the current one (fast: everything is computed).

        Messages already shown for the data replaced are not shown again; the
        new ones go out as one notice, which also clears the earlier ones.
        """
        names = [str(c) for c in prepared.data.phenotypes.columns]
        self._cache = prepared.cache
        self._fits = dict(prepared.fits)
        self._models.clear()
        self._profiles.clear()
        self._rotations.clear()
        self._diagnostics.clear()
        self._tables = {k: v for k, v in prepared.tables.items() if v is not None}
        self._names = dict(prepared.names)
        shown_before = set(self.messages)
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
            cross=None,
        )
        self.param.phenotype.objects = names
        new = [text for text in prepared.messages if text not in shown_before]
        self.notify_all("warning", new, clear=True, about="about the data (also listed under Data)")

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
        return run_now(self._receive_upload(kind, filename, content, threaded=False))

    async def areceive_upload(self, kind: str, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_upload` with the reading and fitting in a worker thread.

        The server's event loop stays free meanwhile (other sessions and this
        page keep responding) and :attr:`busy` is True, which the views show
        as a loading indicator. Parameters change only on the calling
        (event-loop) thread. When files arrive in quick succession, only the
        set staged last is installed.
        """
        return await self._receive_upload(kind, filename, content, threaded=True)

    async def _receive_upload(self, kind: str, filename: str | None, content: bytes, threaded: bool) -> bool:
        def failed(exc: Exception) -> None:
            self._upload_failed(kind, filename, exc)

        with self.working():
            try:
                table, messages = await self._run(threaded, parse_upload, kind, filename, content)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                failed(exc)
                return False
            self.stage_upload(kind, filename, table, messages)
            job = self.pending_job()
            if job is None:
                return False
            return await self._build_and_install(job, threaded, failed)

    async def _build_and_install(self, job: PendingJob, threaded: bool, failed) -> bool:
        try:
            prepared = await self._run(threaded, build_pending, job, self.options(use_covariates=True))
        except Exception as exc:  # noqa: BLE001
            failed(exc)
            return False
        if job.generation != self._generation:
            return False  # another file arrived meanwhile; its (newer) set is installed instead
        self.install(prepared)
        return True

    def receive_cross_upload(self, filename: str | None, content: bytes) -> bool:
        """Use an uploaded R/qtl2 cross zip as the data (see :func:`app.cross_data.prepare_cross`).

        Phenotypes and covariates from the cross, the kinship from its allele
        probabilities (the HMM runs here). A bad file sends an error notice
        naming it, and the data in use stay. Returns whether the cross is in use.
        """
        return run_now(self._receive_cross(filename, content, threaded=False))

    async def areceive_cross_upload(self, filename: str | None, content: bytes) -> bool:
        """:meth:`receive_cross_upload` with reading, the HMM and the fits in a worker thread (:attr:`busy` meanwhile)."""
        return await self._receive_cross(filename, content, threaded=True)

    async def _receive_cross(self, filename: str | None, content: bytes, threaded: bool) -> bool:
        from .cross_data import prepare_cross

        self._generation += 1
        generation = self._generation
        with self.working():
            try:
                prepared, data = await self._run(threaded, prepare_cross, filename, content,
                                                 self.options(use_covariates=True), generation)
            except LMMInputError as exc:
                self.notify("error", f"{str(exc).rstrip().rstrip('.')}; the data loaded before are still in use")
                return False
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                self._upload_failed("cross", filename, exc)
                return False
        if generation != self._generation:
            return False  # another upload arrived meanwhile
        self.install(prepared)
        self.cross = data
        return True

    def use_kinship(self, kinship: pd.DataFrame, name: str) -> bool:
        """Fit the phenotypes in use with another kinship (labelled by ID), e.g. one computed from genotypes.

        The phenotype and covariate tables as read (before alignment) are
        aligned again with ``kinship``; nothing changes if that fails.
        """
        return run_now(self._use_kinship(kinship, name, threaded=False))

    async def ause_kinship(self, kinship: pd.DataFrame, name: str) -> bool:
        """:meth:`use_kinship` with the alignment and the fits in a worker thread."""
        return await self._use_kinship(kinship, name, threaded=True)

    async def _use_kinship(self, kinship: pd.DataFrame, name: str, threaded: bool) -> bool:
        if "phenotypes" not in self._tables:
            self.notify("error", "load phenotypes first (the example or your own files), then use this kinship")
            return False

        def failed(exc: Exception) -> None:
            text = str(exc) if isinstance(exc, LMMInputError) else f"{type(exc).__name__}: {exc}"
            self.notify("error", f"the kinship '{name}' could not be used: {text}; the data in use have not changed")

        tables = {**self._tables, "kinship": kinship}
        names = {**self._names, "kinship": name}
        shown = ", ".join(names[k] for k in ("phenotypes", "kinship", "covariates") if k in names)
        job = PendingJob(tables, names, (), self._generation, f"{shown}")
        with self.working():
            return await self._build_and_install(job, threaded, failed)

    def _failed(self, exc: Exception) -> None:
        self.notify("error", str(exc) if isinstance(exc, LMMInputError) else f"{type(exc).__name__}: {exc}")

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
        self.notify("error", text)

    def stage_upload(self, kind: str, filename: str | None, table: pd.DataFrame, messages: list[str]) -> None:
        """Keep a parsed upload until the other files arrive."""
        if kind not in UPLOAD_KINDS:
            raise ValueError(f"unknown upload kind {kind!r}")
        self._staged[kind] = (display_name(filename), table, list(messages))
        self._generation += 1
        self.pending = {k: v[0] for k, v in self._staged.items()}
        missing = [k for k in ("phenotypes", "kinship") if k not in self._staged]
        if missing:
            self.notify(
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

    # ------------------------------------------------------------------ results

    @property
    def phenotypes(self) -> list[str]:
        """The phenotypes that can be shown."""
        return list(self.param.phenotype.objects)

    @property
    def has_covariates(self) -> bool:
        return self.dataset is not None and self.dataset.covariates is not None

    def _model(self, options: FitOptions) -> tuple[LMMData, dict[str, str]]:
        """The data as fitted with ``options`` and the transform applied to each phenotype (memoised)."""
        key = replace(options, method="reml")
        if key not in self._models:
            data, applied, _ = model_data(self.dataset, key)
            self._models[key] = (data, applied)
        return self._models[key]

    def model_data(self) -> LMMData | None:
        """The data as the current fit sees them (phenotypes transformed, covariates as chosen)."""
        return None if self.dataset is None else self._model(self.options())[0]

    def transform_of(self, phenotype: str | None = None) -> str:
        """The transform applied to ``phenotype`` (default: the current one), as outputs name it."""
        if self.dataset is None:
            return TRANSFORMS["none"]
        applied = self._model(self.options())[1]
        return TRANSFORMS[applied.get(phenotype or self.phenotype, "none")]

    def fits(self, method: str | None = None, use_covariates: bool | None = None) -> dict[str, FitResult]:
        """Fits of every phenotype (memoised per :class:`~app.prepare.FitOptions`).

        Returns an empty dict when no data are loaded or the engine refuses
        the fit (the reason goes to :attr:`notice`).
        """
        if self.dataset is None:
            return {}
        key = self.options(method, use_covariates)
        if key not in self._fits:
            try:
                fits, messages = fit_all(self.dataset, key, self._cache)
            except LMMInputError as exc:
                self.notify("error", str(exc))
                return {}
            self._fits[key] = fits
            self.notify_all("warning", [m for m in messages if m not in self.messages], about="about this fit")
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
        options = self.options(method)
        grid = H2_CURVE if h2 is None else np.asarray(h2, dtype=float)
        key = (self.phenotype, options, grid.size, float(grid[0]), float(grid[-1]))
        if key not in self._profiles:
            table = profile_table(self._model(options)[0], [self.phenotype], grid, method=options.method,
                                  kinship_scale=options.kinship_scale, cache=self._cache)
            self._profiles[key] = table[["h2", "loglik"]].reset_index(drop=True)
        return self._profiles[key]

    def results_frame(self, method: str | None = None) -> pd.DataFrame:
        """All phenotypes' results (the columns of ``lmmcore fit --out``, then ``transform``)."""
        fits = self.fits(method)
        if not fits:
            return pd.DataFrame()
        table = results_table([fits[p] for p in self.phenotypes if p in fits])
        table["transform"] = [self.transform_of(p) for p in table["phenotype"]]
        return table

    def results_side_by_side(self) -> pd.DataFrame:
        """ML and REML for every phenotype in one table.

        Columns ``phenotype, n, transform`` and, for each of ``h2, h2_se,
        h2_ci_low, h2_ci_high, loglik, p_h2_zero, boundary``, a ``_reml`` and
        an ``_ml`` column.
        """
        reml, ml = self.results_frame("reml"), self.results_frame("ml")
        if reml.empty or ml.empty:
            return pd.DataFrame()
        left = reml[["phenotype", "n", "transform", *_BOTH_COLUMNS]].rename(
            columns={c: f"{c}_reml" for c in _BOTH_COLUMNS})
        right = ml[["phenotype", *_BOTH_COLUMNS]].rename(columns={c: f"{c}_ml" for c in _BOTH_COLUMNS})
        both = left.merge(right, on="phenotype", how="inner", sort=False)
        ordered = ["phenotype", "n", "transform"] + [f"{c}_{m}" for c in _BOTH_COLUMNS for m in ("reml", "ml")]
        return both[ordered]

    def fit_row(self, fit: FitResult | None = None) -> dict[str, object]:
        """The current fit as one CSV row (``lmmcore fit --out`` columns, then ``transform``)."""
        fit = fit or self.fit
        if fit is None:
            return {}
        return {**fit.to_row(), "transform": self.transform_of(fit.phenotype)}

    def boundary_note(self) -> str:
        """A note when many traits sit at h2 = 1 (empty otherwise); see :func:`app.transforms.boundary_note`."""
        fits = self.fits()
        return boundary_note([f.h2 for f in fits.values()], self.kinship_scale, self.transform) if fits else ""

    def model_description(self) -> ModelDescription | None:
        """The fixed effects of the current phenotype's model as fitted (see :mod:`app.model`)."""
        if self.dataset is None:
            return None
        return describe_model(self.dataset, self.phenotype, bool(self.use_covariates and self.has_covariates))

    def fit_rows(self, fit: FitResult | None = None) -> list[tuple[str, str, str]]:
        """The current fit as (quantity, value, note) rows for the results table."""
        fit = fit or self.fit
        if fit is None:
            return []
        se = f"{fit.h2_se:.4f}" if np.isfinite(fit.h2_se) else "not defined"
        scale = KINSHIP_SCALES[self.kinship_scale]
        rows = [
            ("phenotype", fit.phenotype, f"{fit.n} individuals, {fit.p} fixed-effect coefficient(s)"),
            ("transform", self.transform_of(fit.phenotype), "applied to the phenotype before fitting"),
            ("method", METHODS[fit.method], "restricted" if fit.method == "reml" else "maximum likelihood"),
            ("kinship scale", f"{fit.kinship_scale:.6g}", f"{scale}: the kinship fitted is this factor times K"),
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
        return n_frames(self.fit)

    def brent_frame(self, index: int | None = None) -> BrentFrame | None:
        """The Brent player's picture at frame ``index`` (default: :attr:`step`)."""
        fit = self.fit
        if fit is None:
            return None
        return brent_frame(fit, self.step if index is None else index)

    # the algorithm, step by step

    def rotation(self) -> Rotation | None:
        """The current phenotype rotated into the eigenbasis (memoised; see :func:`app.frames.make_rotation`)."""
        if self.dataset is None or self.phenotype is None:
            return None
        options = replace(self.options(), method="reml")
        key = (self.phenotype, options)
        if key not in self._rotations:
            self._rotations[key] = make_rotation(self._model(options)[0], self.phenotype, self._cache,
                                                 options.kinship_scale)
        return self._rotations[key]

    def probe(self, h2: float | None = None) -> Probe | None:
        """Weights, weighted least squares fit and log-likelihood at ``h2`` (default :attr:`h2_probe`)."""
        rotation = self.rotation()
        if rotation is None:
            return None
        return probe(rotation, float(self.h2_probe if h2 is None else h2), self.method)

    def diagnostics(self) -> Diagnostics | None:
        """Standardised rotated residuals of the current fit at its optimum (see :mod:`app.diagnostics`)."""
        fit, rotation = self.fit, self.rotation()
        if fit is None or rotation is None:
            return None
        key = (self.phenotype, self.options())
        if key not in self._diagnostics:
            self._diagnostics[key] = residual_diagnostics(rotation, fit)
        return self._diagnostics[key]

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
