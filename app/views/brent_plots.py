"""Drawing one step of Brent's search: the parabola through x, w, v, or the golden-section split.

Pure drawing over :class:`app.state.BrentFrame` and :class:`StepDetail` (what
the optimiser's trace records about the step: :mod:`lmmcore.optimize`); the
layers are the same for every frame, so a ``DynamicMap`` updates in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import holoviews as hv
import numpy as np
import pandas as pd

from ..state import BrentFrame
from .style import H2_LABELS, METHOD_COLOURS, OPTIMUM_COLOUR, PLOT_OPTS, STEP_COLOURS

__all__ = ["StepDetail", "BrentLayout", "step_detail", "parabola", "zoom_window", "brent_layout", "brent_plot", "PARABOLA_COLOUR", "GOLDEN"]

GOLDEN = 0.5 * (3.0 - np.sqrt(5.0))
PARABOLA_COLOUR = "#059669"
REJECTED_COLOUR = "#9ca3af"
GOLDEN_COLOUR = "#d97706"
BRACKET_COLOUR = "#fde68a"
#: Colours of the zoom's names: x, w, v and the golden-section note.
LABEL_COLOURS = {"point": "#111827", "golden": GOLDEN_COLOUR}
_H2 = hv.Dimension("h2", label="h2 (heritability, unitless)")
_L = hv.Dimension("loglik", label="profile log-likelihood")


@dataclass(frozen=True)
class StepDetail:
    """How Brent chose one step, read off the optimiser's trace (for drawing and words).

    Attributes
    ----------
    row : int
        The step's row in the trace.
    step, reason : str
        ``"parabolic"`` or ``"golden"`` (or ``"start"``); the trace's reason code.
    points : tuple of (h2, loglik)
        ``x`` (best so far), ``w``, ``v``: the three points Brent interpolated.
    vertex : float
        h2 of the vertex of their parabola (NaN when they define none).
    golden_split : float
        The golden-section point (NaN for a parabolic step).
    before : tuple of float
        The bracket before the step; ``after`` the bracket after it.
    h2, loglik : float
        The new evaluation; ``previous_h2``, ``previous_loglik`` the one before (NaN at a start).
    """

    row: int
    step: str
    reason: str
    points: tuple[tuple[float, float], ...]
    vertex: float
    golden_split: float
    before: tuple[float, float]
    after: tuple[float, float]
    h2: float
    loglik: float
    previous_h2: float
    previous_loglik: float

    @property
    def x(self) -> tuple[float, float]:
        return self.points[0] if self.points else (np.nan, np.nan)


def step_detail(trace, index: int) -> StepDetail | None:
    """The detail of Brent frame ``index`` (1 = the first evaluation after the grid); None at frame 0."""
    steps = np.asarray(trace.step)
    brent = np.flatnonzero(steps != "grid")
    if index < 1 or index > brent.size:
        return None
    row = int(brent[index - 1])
    prev = int(brent[index - 2]) if index >= 2 else -1
    same = prev >= 0 and trace.search[prev] == trace.search[row]
    after = (float(trace.bracket_low[row]), float(trace.bracket_high[row]))
    before = (float(trace.bracket_low[prev]), float(trace.bracket_high[prev])) if same else after
    points: tuple = ()
    vertex = golden = np.nan
    reason = ""
    if getattr(trace, "x_index", None) is not None and steps[row] != "start":
        rows = [int(trace.x_index[row]), int(trace.w_index[row]), int(trace.v_index[row])]
        points = tuple((float(trace.h2[k]), float(trace.loglik[k])) for k in rows if k >= 0)
        vertex, golden = float(trace.vertex[row]), float(trace.golden_split[row])
        reason = trace.reason[row]
    return StepDetail(
        row=row, step=str(steps[row]), reason=reason, points=points, vertex=vertex, golden_split=golden,
        before=before, after=after, h2=float(trace.h2[row]), loglik=float(trace.loglik[row]),
        previous_h2=float(trace.h2[prev]) if same else np.nan,
        previous_loglik=float(trace.loglik[prev]) if same else np.nan,
    )


def parabola(points, h: np.ndarray) -> np.ndarray:
    """The parabola through three (h2, loglik) points, evaluated at ``h`` (Lagrange form; NaN if undefined)."""
    if len(points) != 3:
        return np.full(np.shape(h), np.nan)
    (x0, y0), (x1, y1), (x2, y2) = points
    if len({x0, x1, x2}) < 3:
        return np.full(np.shape(h), np.nan)
    h = np.asarray(h, dtype=float)
    return (y0 * (h - x1) * (h - x2) / ((x0 - x1) * (x0 - x2))
            + y1 * (h - x0) * (h - x2) / ((x1 - x0) * (x1 - x2))
            + y2 * (h - x0) * (h - x1) / ((x2 - x0) * (x2 - x1)))


def zoom_window(frame: BrentFrame, detail: StepDetail | None) -> tuple[float, float]:
    """The h2 range of the zoom: the bracket before this step (it shrinks with the search).

    A parabola's vertex that fell just outside the bracket is kept in view (that is why the
    step was golden), within two bracket widths.
    """
    lo, hi = detail.before if detail is not None else frame.search_bracket
    width = max(hi - lo, 1e-12)
    if detail is not None and np.isfinite(detail.vertex):
        lo = min(lo, max(detail.vertex, lo - 2 * width))
        hi = max(hi, min(detail.vertex, hi + 2 * width))
    pad = 0.1 * (hi - lo)
    return max(lo - pad, -0.045), min(hi + pad, 1.045)


@dataclass(frozen=True)
class BrentLayout:
    """What one frame of the Brent plots shows, as data (x and y already shifted as drawn).

    Attributes
    ----------
    zoom : bool
    xlim, ylim : (float, float)
    xlabel, ylabel, title : str
    bracket : (float, float)
        The bracket after the step (shaded).
    profile, parabola, refused, golden_bar : (ndarray, ndarray)
        x and y of the lines: the profile, the parabola Brent took or refused,
        the larger part of the bracket that a golden-section step splits.
    split : float
        The golden-section point (a dashed line; far off screen when none).
    evaluations : DataFrame
        ``h2``, ``loglik``, ``step`` (grid, start, parabolic, golden) of every evaluation so far.
    xwv, vertex, newest, optimum : (ndarray, ndarray)
        x, w, v of this step; the parabola's vertex; the newest point; the final optimum.
    labels : DataFrame
        ``h2``, ``loglik``, ``text``, ``kind`` (point or golden).
    """

    zoom: bool
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    xlabel: str
    ylabel: str
    title: str
    bracket: tuple[float, float]
    profile: tuple[np.ndarray, np.ndarray]
    parabola: tuple[np.ndarray, np.ndarray]
    refused: tuple[np.ndarray, np.ndarray]
    golden_bar: tuple[np.ndarray, np.ndarray]
    split: float
    evaluations: pd.DataFrame
    xwv: tuple[np.ndarray, np.ndarray]
    vertex: tuple[np.ndarray, np.ndarray]
    newest: tuple[np.ndarray, np.ndarray]
    optimum: tuple[np.ndarray, np.ndarray]
    labels: pd.DataFrame


def _nothing() -> BrentFrame:
    none = np.zeros(0)
    return BrentFrame(0, 1, none, none, none, none, (), None, (0.0, 1.0), pd.DataFrame(), np.nan, np.nan)


def brent_layout(frame: BrentFrame | None, curve: pd.DataFrame | None, detail: StepDetail | None = None, *,
                 zoom: bool) -> BrentLayout:
    """Where everything of one frame of Brent's search goes (drawn by :func:`brent_plot` or
    :class:`app.views.brent_figure.BrentFigure`).

    Parameters
    ----------
    frame : BrentFrame
    curve : DataFrame
        ``h2``, ``loglik``: the full curve, or a dense curve over :func:`zoom_window` when ``zoom``.
    detail : StepDetail, optional
        The newest step: its parabola through x, w, v and vertex (solid green when Brent took it,
        dashed grey when it refused it), or its golden-section split of the bracket.
    zoom : bool
        Show :func:`zoom_window`, with the log-likelihood relative to the best point so far
        (late steps differ only in the 7th digit).

    Notes
    -----
    In the zoom, once the bracket is narrower than 1e-3, h2 is drawn relative
    to the best point so far, ``x`` (the axis says by how much), so that the
    last steps stay distinguishable.
    """
    if frame is None:
        frame, curve, detail = _nothing(), pd.DataFrame({"h2": [], "loglik": []}), None
    curve = curve[np.isfinite(curve["loglik"].to_numpy())]
    xlim = zoom_window(frame, detail) if zoom else (-0.045, 1.045)
    width = xlim[1] - xlim[0]
    # in the zoom, h2 relative to x once the bracket is narrow, and L relative to L(x)
    x0 = detail.x[0] if (zoom and detail is not None and detail.points and width < 1e-3) else 0.0
    y0 = 0.0
    if zoom:
        if detail is not None and detail.points:
            y0 = detail.x[1]
        elif frame.current is not None:
            y0 = frame.current["loglik"]
        elif len(curve):
            y0 = float(curve["loglik"].max())

    def X(h):
        return np.asarray(h, dtype=float) - x0

    def Y(v):
        return np.asarray(v, dtype=float) - y0

    def inside(h):
        h = np.asarray(h, dtype=float)
        return (h >= xlim[0]) & (h <= xlim[1])

    xlabel = f"h2 − {x0:.7f}" if x0 else H2_LABELS["xlabel"]
    ylabel = "L(h2) − L(best so far)" if zoom else H2_LABELS["ylabel"]
    after = detail.after if detail is not None else (
        (frame.current["bracket_low"], frame.current["bracket_high"]) if frame.current else frame.search_bracket)
    bracket = (float(X(after[0])), float(X(after[1])))
    profile = (X(curve["h2"]), Y(curve["loglik"]))
    # the parabola through x, w, v: taken (solid) or refused (dashed)
    used, refused = (np.zeros(0), np.zeros(0)), (np.zeros(0), np.zeros(0))
    vertex_pt, labels = [], []
    if detail is not None and len(detail.points) == 3 and np.isfinite(detail.vertex):
        hs = [p[0] for p in detail.points] + [detail.vertex]
        pad = 0.3 * (max(hs) - min(hs))
        a, b = max(min(hs) - pad, xlim[0]), min(max(hs) + pad, xlim[1])
        grid = np.linspace(a, b, 160)
        values = parabola(detail.points, grid)
        if detail.step == "parabolic":
            used = (X(grid), Y(values))
        else:
            refused = (X(grid), Y(values))
        top = float(parabola(detail.points, [detail.vertex])[0])
        if inside(detail.vertex):
            vertex_pt = [(float(X(detail.vertex)), float(Y(top)))]
    # y-range: what is visible, with the step's points
    grid_ok = inside(frame.grid_h2) & np.isfinite(frame.grid_loglik)
    step_pts = [p[1] for p in vertex_pt] if zoom else []
    if detail is not None:
        step_pts += [float(Y(ll)) for h, ll in detail.points if inside(h)]
        if inside(detail.h2):
            step_pts.append(float(Y(detail.loglik)))
    ys = [Y(curve.loc[inside(curve["h2"].to_numpy()), "loglik"].to_numpy()), Y(frame.grid_loglik[grid_ok])]
    ys += [np.array(step_pts, dtype=float)]
    ys = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.zeros(0)
    if ys.size == 0:
        ys = np.array([0.0, 1.0])
    top = float(ys.max())
    bottom = float(ys.min()) if zoom else max(float(ys.min()), top - 40.0)
    span = max(top - bottom, 1e-12 if zoom else 1e-9)
    # golden section: the larger part of the bracket, from x, and the point 0.382 of the way in
    golden_bar, split = (np.zeros(0), np.zeros(0)), -1e9
    if detail is not None and detail.step == "golden" and detail.points and np.isfinite(detail.golden_split):
        lo, hi = detail.before
        xb = detail.x[0]
        far = lo if xb >= 0.5 * (lo + hi) else hi
        level = bottom - 0.02 * span  # a bar under the curve: x to the far end of the larger part
        golden_bar = (X([xb, far]), np.array([level, level]))
        split = float(X(detail.golden_split))
        if zoom:
            labels.append((split, level + 0.01 * span, " 0.382 of the larger part", "golden"))
    # every evaluation so far, coloured by kind
    keep = inside(frame.h2)
    kinds = np.concatenate([np.full(int(grid_ok.sum()), "grid"), np.asarray(frame.steps)[keep].astype(str)])
    points = pd.DataFrame({
        "h2": X(np.concatenate([frame.grid_h2[grid_ok], frame.h2[keep]])),
        "loglik": Y(np.concatenate([frame.grid_loglik[grid_ok], frame.loglik[keep]])),
        "step": kinds,
    })
    # x, w, v of this step, named
    xwv = []
    if detail is not None:
        for name, (h, ll) in zip("xwv", detail.points):
            if inside(h):
                xwv.append((float(X(h)), float(Y(ll))))
                if zoom:
                    labels.append((float(X(h)), float(Y(ll)), f" {name}", "point"))
    cur = frame.current
    cur_pts = [(float(X(cur["h2"])), float(Y(cur["loglik"])))] if cur is not None and inside(cur["h2"]) else []
    final = [(float(X(frame.final_h2)), float(Y(frame.final_loglik)))] if (
        frame.is_last and np.isfinite(frame.final_h2) and inside(frame.final_h2)) else []
    labels += [(np.nan, np.nan, "", "point"), (np.nan, np.nan, "", "golden")]
    return BrentLayout(
        zoom=zoom,
        xlim=(xlim[0] - x0, xlim[1] - x0),
        ylim=(bottom - 0.1 * span, top + 0.14 * span),
        xlabel=xlabel,
        ylabel=ylabel,
        title="zoom: the bracket" if zoom else "all of h2 in [0, 1]",
        bracket=bracket,
        profile=profile,
        parabola=used,
        refused=refused,
        golden_bar=golden_bar,
        split=split,
        evaluations=points,
        xwv=_xy(xwv),
        vertex=_xy(vertex_pt),
        newest=_xy(cur_pts),
        optimum=_xy(final),
        labels=pd.DataFrame(labels, columns=["h2", "loglik", "text", "kind"]),
    )


def _xy(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def brent_plot(frame: BrentFrame | None, curve: pd.DataFrame | None, detail: StepDetail | None = None, *,
               zoom: bool) -> hv.Overlay:
    """One frame of Brent's search over the profile curve, with how this step was chosen.

    The HoloViews drawing of :func:`brent_layout` (same parameters; for
    notebooks and exports: the dashboard draws the layout with
    :class:`app.views.brent_figure.BrentFigure`).
    """
    lay = brent_layout(frame, curve, detail, zoom=zoom)
    hdim = hv.Dimension("h2", label=lay.xlabel)
    ldim = hv.Dimension("loglik", label=lay.ylabel)
    layers = [
        hv.VSpan(*lay.bracket, label="bracket").opts(color=BRACKET_COLOUR, alpha=0.55),
        hv.Curve(lay.profile, hdim, ldim, label="profile").opts(color=METHOD_COLOURS["reml"], alpha=0.45,
                                                                 line_width=2),
        hv.Curve(lay.parabola, hdim, ldim, label="parabola").opts(color=PARABOLA_COLOUR, line_width=2.5),
        hv.Curve(lay.refused, hdim, ldim, label="refused parabola").opts(color=REJECTED_COLOUR, line_width=2,
                                                                         line_dash="dashed"),
        hv.Curve(lay.golden_bar, hdim, ldim, label="larger part").opts(color=GOLDEN_COLOUR, line_width=5,
                                                                       alpha=0.6),
        hv.VLine(lay.split).opts(color=GOLDEN_COLOUR, line_width=2, line_dash="dashed"),
        hv.Scatter(lay.evaluations, hdim, [ldim, "step"], label="evaluations").opts(
            color="step", cmap=STEP_COLOURS, size=8),
        hv.Scatter(lay.xwv, hdim, ldim, label="x w v").opts(color="white", line_color="#111827", line_width=2,
                                                            size=11, marker="square"),
        hv.Scatter(lay.vertex, hdim, ldim, label="vertex").opts(color=PARABOLA_COLOUR, marker="diamond", size=16,
                                                                line_color="white"),
        hv.Scatter(lay.newest, hdim, ldim, label="newest point").opts(
            color=OPTIMUM_COLOUR, line_color=OPTIMUM_COLOUR, line_width=3, size=18, fill_alpha=0),
        hv.Scatter(lay.optimum, hdim, ldim, label="optimum").opts(color=OPTIMUM_COLOUR, size=14, marker="star"),
        # both colour categories always present: a single one would be sent as a constant and break later frames
        hv.Labels(lay.labels, [hdim, ldim], ["text", "kind"], label="names").opts(
            text_color="kind", cmap=LABEL_COLOURS, text_align="left", text_baseline="bottom",
            text_font_size="11pt"),
    ]
    # every layer framewise, so that ranges follow each frame of a DynamicMap
    return hv.Overlay([layer.opts(framewise=True) for layer in layers]).opts(
        **PLOT_OPTS,
        xlabel=lay.xlabel,
        ylabel=lay.ylabel,
        title=lay.title,
        xlim=lay.xlim,
        ylim=lay.ylim,
        framewise=True,
        show_legend=False,
        height=330,
    )
