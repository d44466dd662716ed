"""What the heritability tabs show, computed from one fit: Brent's frames, the rotation, a probe, the model.

Pure functions and frozen records (no state, no panel). Every number comes
from :mod:`lmmcore`'s public functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmmcore import (
    Eigendecomposition,
    FitResult,
    LMMData,
    PatternCache,
    RotatedData,
    prepare_pattern,
    profile_loglik,
    solve_wls,
)

__all__ = [
    "BrentFrame",
    "Probe",
    "Rotation",
    "brent_frame",
    "n_frames",
    "make_rotation",
    "probe",
]


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


def n_frames(fit: FitResult | None) -> int:
    """Frames of the Brent player: the grid, then one per Brent evaluation."""
    if fit is None:
        return 1
    return 1 + int(sum(s != "grid" for s in fit.trace.step))


def brent_frame(fit: FitResult, index: int) -> BrentFrame:
    """The Brent player's picture of ``fit``'s search at frame ``index`` (clipped to the frames there are)."""
    trace = fit.trace
    steps = np.asarray(trace.step)
    grid = steps == "grid"
    n_frames = 1 + int((~grid).sum())
    index = int(np.clip(index, 0, n_frames - 1))
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


def make_rotation(data: LMMData, phenotype: str, cache: PatternCache, kinship_scale: str = "as-is") -> Rotation:
    """``phenotype`` of ``data`` (as fitted: transformed, with or without covariates) rotated into the eigenbasis.

    From :func:`lmmcore.prepare_pattern`, the engine's per-pattern pipeline:
    the decomposition comes from ``cache`` (the fit filled it), so nothing is
    decomposed twice, and the rotation is kept there for the profile curve.
    The eigenvalues are those of the scaled kinship ``c K`` that the fit used.
    """
    model = prepare_pattern(data, phenotype, kinship_scale=kinship_scale, cache=cache,
                            design_messages=False)  # the fit has reported the design's messages
    eig = model.eig
    if model.kinship_scale != 1.0:
        eig = replace(eig, values=eig.values * model.kinship_scale)
    return Rotation(phenotype, model.ids, model.y[:, 0], eig, model.rot, model.design.names)


def probe(rotation: Rotation, h2: float, method: str) -> Probe:
    """Weights, weighted least squares fit and log-likelihood of ``rotation`` at ``h2``.

    Notes
    -----
    ``w_i = 1 / (h2 d_i + 1 - h2)``; at h2 = 1 with a zero eigenvalue the
    covariance is singular and the log-likelihood is minus infinity.
    """
    h = float(h2)
    rot = rotation.rot
    loglik = float(profile_loglik(rot, [h], method)[0, 0])
    factors = h * rot.d + 1.0 - h
    if np.any(factors <= 0):
        nan = np.full(rot.n, np.nan)
        return Probe(h, True, nan, np.full(rot.p, np.nan), np.nan, np.nan, loglik, nan, nan)
    sol = solve_wls(rot, [h], method)
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
