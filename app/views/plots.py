"""HoloViews elements built from the state's results (no numerics: only drawing).

Each function takes plain results (DataFrames, :class:`lmmcore.FitResult`,
:class:`app.state.BrentFrame`, ...) and returns a HoloViews object, so the
viewers stay thin and the drawings can be checked without a server.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import holoviews as hv

from lmmcore import CI_DROP, FitResult

from ..state import METHODS, Probe, Rotation
from .style import (
    CI_COLOUR,
    H2_DIM,
    H2_LABELS,
    LOGLIK_DIM,
    METHOD_COLOURS,
    OPTIMUM_COLOUR,
    PLOT_OPTS,
    SIDE_TOOLBAR,
)

__all__ = [
    "ProfileLayout",
    "PROFILE_COLOURS",
    "profile_layout",
    "profile_plot",
    "profile_ylim",
    "kinship_image",
    "spectrum_plot",
    "rotation_plots",
    "off_scale",
    "weights_plot",
    "contribution_plot",
    "cluster_order",
    "residual_plot",
    "probe_curve_plot",
    "heritability_errorbars",
    "empty_plot",
]

_MAX_IMAGE = 400


def _finite(df: pd.DataFrame) -> pd.DataFrame:
    return df[np.isfinite(df["loglik"].to_numpy())]


def _framewise(layers: list) -> hv.Overlay:
    """Overlay ``layers`` so that a ``DynamicMap`` recomputes axis ranges at every frame.

    HoloViews re-reads the overlay's ``xlim``/``ylim`` per frame only when
    each layer itself is ``framewise``.
    """
    return hv.Overlay([layer.opts(framewise=True) for layer in layers])


def empty_plot(message: str, height: int = 300) -> hv.Overlay:
    """A blank plot that says why it is blank."""
    return (hv.Text(0.5, 0.5, message).opts(text_font_size="12pt", text_color="#6b7280")).opts(
        xaxis=None, yaxis=None, toolbar=None, responsive=True, min_height=height, xlim=(0, 1), ylim=(0, 1)
    )


def profile_ylim(curves: list[tuple[pd.DataFrame, FitResult]]) -> tuple[float, float]:
    """A y-range that shows each maximum, its 1.92 drop and (if not too far) L(0)."""
    tops, bottoms = [], []
    for df, fit in curves:
        top = fit.loglik
        depth = max(4.0 * CI_DROP, 1.15 * (fit.loglik - fit.loglik_h2_zero))
        depth = min(depth, 60.0)
        finite = _finite(df)["loglik"]
        low = max(top - depth, float(finite.min())) if len(finite) else top - depth
        tops.append(top)
        bottoms.append(low)
    top, bottom = max(tops), min(bottoms)
    span = max(top - bottom, 1e-6)
    # room below for the label under L(0) and above for the label of the optimum
    return bottom - 0.12 * span, top + 0.14 * span


#: x-range of the h2 plots: a point at h2 = 0 or 1 is drawn whole, not cut by the frame.
H2_XLIM = (-0.045, 1.045)


#: Colours of the profile plot's points and labels, by kind.
PROFILE_COLOURS = {
    "optimum": OPTIMUM_COLOUR,
    "zero": "#111827",
    "note": "#4b5563",
    **METHOD_COLOURS,
}


def _label_spot(d: pd.DataFrame, top_h2: float, ylim: tuple[float, float], depth: float,
                side: str) -> tuple[float, float, str] | None:
    """Where to write a curve's name: beside the curve, ``depth`` of the y-range below the top.

    On the ``side`` ("right" or "left") of the curve's maximum ``top_h2`` if
    the curve reaches that depth there, else on the other side. The text is
    anchored away from the curve (to the right of a falling branch, to the left
    of a rising one) so the curve never strikes it through. Returns (h2,
    loglik, text alignment) or None.
    """
    d = _finite(d)
    if not len(d):
        return None
    span = ylim[1] - ylim[0]
    level = ylim[1] - depth * span
    for where in (side, "left" if side == "right" else "right"):
        branch = d[d["h2"] > top_h2] if where == "right" else d[d["h2"] < top_h2].iloc[::-1]
        below = branch[branch["loglik"] <= level]
        if len(below) and float(below["loglik"].iloc[0]) >= ylim[0] + 0.1 * span:
            h, ll = float(below["h2"].iloc[0]), float(below["loglik"].iloc[0])
            # the text needs room on its side, inside the frame (about 0.1 of the width)
            if where == "right" and h + 0.02 <= 0.9:
                return h + 0.02, ll + 0.02 * span, "left"
            if where == "left" and h - 0.02 >= 0.1:
                return h - 0.02, ll + 0.02 * span, "right"
    return None


@dataclass(frozen=True)
class ProfileLayout:
    """What the profile plot shows, as data: drawn by :func:`profile_plot` (HoloViews) or
    :class:`app.views.profile_figure.ProfileFigure` (one bokeh figure updated in place).

    Attributes
    ----------
    primary, second : str
        The method drawn solid with its optimum, and the other one (dashed when shown).
    curve, other : DataFrame
        Columns ``h2`` and ``loglik`` (finite values only); ``other`` may be empty.
    points : DataFrame
        Columns ``h2``, ``loglik``, ``kind`` (a key of the colour map); an
        undrawn point has ``loglik`` NaN.
    labels : DataFrame
        Columns ``h2``, ``loglik``, ``text``, ``kind``, ``align`` (bokeh's text_align).
    ci : (float, float)
        The 95% profile-likelihood interval (shaded).
    threshold, h2 : float
        The max - 1.92 line and the optimum's dotted line.
    ylim : (float, float)
    title : str
    """

    primary: str
    second: str
    curve: pd.DataFrame
    other: pd.DataFrame
    points: pd.DataFrame
    labels: pd.DataFrame
    ci: tuple[float, float]
    threshold: float
    h2: float
    ylim: tuple[float, float]
    title: str


def profile_layout(curves: list[tuple[str, pd.DataFrame, FitResult]], primary: str,
                   message: str = "") -> ProfileLayout:
    """Where everything of the profile plot goes: curves, points, labels, interval, ranges.

    Parameters
    ----------
    curves : list of (method, curve, fit)
        ``curve`` has columns ``h2`` and ``loglik``. The ``primary`` one is
        drawn solid with its optimum, interval and 1.92 drop; another (the
        other method) dashed. Empty: a blank plot showing ``message``.
    primary : str
    message : str
        Shown when there is nothing to draw.

    Notes
    -----
    Labels are placed so that they stay inside the frame and off the curves:
    a curve's name sits beside its own curve at the first depth below the
    top where the curve has room for it, away from the max - 1.92 line; the
    optimum's value at the top, on the side of its dotted line with more room.
    """
    empty = pd.DataFrame({"h2": [], "loglik": []})
    second = next(m for m in METHODS if m != primary)
    main = next((c for c in curves if c[0] == primary), None)
    other = next((c for c in curves if c[0] != primary), None) if main else None
    points: list[tuple[float, float, str]] = []  # h2, loglik, kind (a key of PROFILE_COLOURS)
    labels: list[tuple[float, float, str, str, str]] = []  # h2, loglik, text, kind, alignment
    if main is None:
        df, other_df, ylim = empty, empty, (0.0, 1.0)
        ci, threshold, h2 = (-1.0, -1.0), -1.0, -1.0
        labels.append((0.3, 0.5, message or "no data", "note", "left"))
        title = "profile log-likelihood"
    else:
        _, df, fit = main
        ylim = profile_ylim([(d, f) for _, d, f in curves])
        span = ylim[1] - ylim[0]
        threshold = fit.loglik - CI_DROP
        ci, h2 = (fit.h2_ci_low, fit.h2_ci_high), fit.h2
        other_df = _finite(other[1]) if other else empty
        l0 = fit.loglik_h2_zero
        if l0 >= ylim[0]:
            points.append((0.0, l0, "zero"))
            # under the point, unless that would leave the frame; then beside it, above
            # centred under the point (clear of the optimum's dotted line); above it if the frame ends there
            below = l0 - 0.06 * span >= ylim[0] + 0.02 * span
            y = l0 - 0.06 * span if below else l0 + 0.06 * span
            if fit.h2 < 0.05:  # the optimum's dotted line runs at h2 = 0: write beside it
                labels.append((0.02, y, "L(0)", "zero", "left"))
            else:
                labels.append((0.0, y, "L(0)", "zero", "center"))
        else:
            # below the view: kept as an undrawn (NaN) point, because a colour column with a
            # single category is sent to the browser as a constant and breaks the next frames
            points.append((0.0, np.nan, "zero"))
            labels.append((0.025, np.nan, "L(0)", "zero", "left"))
        if other:
            points.append((other[2].h2, other[2].loglik, second))
        points.append((fit.h2, fit.loglik, "optimum"))
        # the optimum's value at the top, on the side of its dotted line with more room
        right = fit.h2 <= 0.6
        labels.append((fit.h2 + (0.015 if right else -0.015), ylim[1] - 0.06 * span, f"ĥ² = {fit.h2:.3f}",
                       "optimum", "left" if right else "right"))
        # the 1.92 line's name at the end of the plot away from the optimum (where the curve is low)
        far_right = fit.h2 < 0.5
        labels.append((1.0 if far_right else 0.0, threshold + 0.035 * span, "max − 1.92", "note",
                       "right" if far_right else "left"))
        # each curve's name beside it, below the optimum's label, away from the other name
        spots = [(primary, df, fit.h2, (0.45, 0.3, 0.6), "right" if fit.h2 < 0.55 else "left")]
        if other:
            spots.append((second, other_df, other[2].h2, (0.7, 0.85, 0.58, 0.3),
                          "left" if fit.h2 < 0.55 else "right"))
        for method, d, top_h2, depths, side in spots:
            for depth in depths:  # the first depth where the curve has room for its name, off the 1.92 line
                at = _label_spot(d, top_h2, ylim, depth, side)
                if at is not None and abs(at[1] - threshold) > 0.06 * span:
                    labels.append((at[0], at[1], METHODS[method], method, at[2]))
                    break
        title = f"{fit.phenotype}: profile log-likelihood by {METHODS[primary]}"
    return ProfileLayout(
        primary=primary,
        second=second,
        curve=_finite(df),
        other=other_df,
        points=pd.DataFrame(points, columns=["h2", "loglik", "kind"]),
        labels=pd.DataFrame(labels, columns=["h2", "loglik", "text", "kind", "align"]),
        ci=(float(ci[0]), float(ci[1])),
        threshold=float(threshold),
        h2=float(h2),
        ylim=(float(ylim[0]), float(ylim[1])),
        title=title,
    )


def profile_plot(curves: list[tuple[str, pd.DataFrame, FitResult]], primary: str, message: str = "") -> hv.Overlay:
    """The profile log-likelihood over h2 with the optimum, the interval and the test of h2 = 0.

    The HoloViews drawing of :func:`profile_layout` (for notebooks and
    exports; the dashboard draws the same layout with
    :class:`app.views.profile_figure.ProfileFigure`). Curves are labelled on
    the plot rather than in a legend, which reads better on a projector.

    Parameters
    ----------
    curves, primary, message
        As for :func:`profile_layout`.
    """
    lay = profile_layout(curves, primary, message)
    layers = [
        hv.VSpan(*lay.ci).opts(color=CI_COLOUR, alpha=0.35),
        hv.HLine(lay.threshold).opts(color="#6b7280", line_dash="dashed", line_width=1.5),
        hv.VLine(lay.h2).opts(color=OPTIMUM_COLOUR, line_width=1.5, line_dash="dotted"),
        hv.Curve(lay.other, H2_DIM, LOGLIK_DIM, label="other").opts(
            color=METHOD_COLOURS[lay.second], line_width=2, line_dash="dashed"
        ),
        hv.Curve(lay.curve, H2_DIM, LOGLIK_DIM, label="selected").opts(
            color=METHOD_COLOURS[lay.primary], line_width=3),
        # colours through a categorical mapping with fixed categories: a colour column
        # with a single value would be drawn as a constant
        hv.Scatter(lay.points, H2_DIM, [LOGLIK_DIM, "kind"], label="points").opts(
            color="kind", cmap=PROFILE_COLOURS, size=11, line_color="white", tools=["hover"]
        ),
        hv.Labels(lay.labels, [H2_DIM, LOGLIK_DIM], ["text", "kind", "align"], label="labels").opts(
            text_color="kind", cmap=PROFILE_COLOURS, text_align=hv.dim("align"), text_baseline="middle",
            text_font_size="10.5pt",
        ),
    ]
    return _framewise(layers).opts(
        **PLOT_OPTS,
        **H2_LABELS,
        title=lay.title,
        xlim=H2_XLIM,
        ylim=lay.ylim,
        show_legend=False,
        framewise=True,
        height=470,
    )


def _block_mean(K: np.ndarray, size: int) -> np.ndarray:
    """Average K over blocks so that it is at most ``size`` x ``size`` (for drawing only)."""
    n = K.shape[0]
    if n <= size:
        return K
    edges = np.linspace(0, n, size + 1).astype(int)
    rows = np.add.reduceat(K, edges[:-1], axis=0) / np.diff(edges)[:, None]
    return np.add.reduceat(rows, edges[:-1], axis=1) / np.diff(edges)[None, :]


def cluster_order(kinship: np.ndarray) -> np.ndarray:
    """An order of the individuals that puts related ones together (for drawing only).

    Average-linkage clustering (:func:`scipy.cluster.hierarchy.linkage`) on the
    distance ``K_ii + K_jj - 2 K_ij`` between individuals (the squared distance
    of their genetic values); the order is the dendrogram's leaves.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    K = np.asarray(kinship, dtype=float)
    if K.shape[0] < 3:
        return np.arange(K.shape[0])
    diag = np.diag(K)
    dist = np.clip(diag[:, None] + diag[None, :] - 2.0 * K, 0.0, None)
    np.fill_diagonal(dist, 0.0)
    dist = 0.5 * (dist + dist.T)
    return leaves_list(linkage(squareform(dist, checks=False), method="average"))


def kinship_image(kinship: np.ndarray, order: np.ndarray | None = None) -> hv.Image:
    """Heat map of the kinship matrix drawn as a matrix is read: row 1 at the top, column 1 on the left.

    In file order, or in ``order`` (e.g. :func:`cluster_order`); block-averaged above 400 individuals.
    """
    n = kinship.shape[0]
    which = "file order" if order is None else "clustered order"
    if order is not None:
        kinship = kinship[np.ix_(order, order)]
    shown = _block_mean(kinship, _MAX_IMAGE)
    note = "" if shown.shape[0] == n else f" (block means, {shown.shape[0]} x {shown.shape[0]})"
    # hv.Image draws its array's first row at the top of ``bounds``; flipped, row 1 sits at y = 1,
    # and the inverted y-axis puts y = 1 at the top
    img = hv.Image(
        shown[::-1],
        bounds=(0.5, 0.5, n + 0.5, n + 0.5),
        kdims=[
            hv.Dimension("j", label=f"column j: individual ({which})"),
            hv.Dimension("i", label=f"row i: individual ({which})"),
        ],
        vdims=[hv.Dimension("K", label="kinship K_ij")],
    )
    return img.opts(
        cmap="viridis",
        colorbar=True,
        responsive=True,
        min_height=320,
        aspect=None,
        tools=["hover"],
        toolbar="right",
        default_tools=["save", "pan", "wheel_zoom", "box_zoom", "reset"],
        active_tools=["pan"],
        title=f"kinship K, {n} x {n}{note}",
        invert_yaxis=True,
        xticks=4,
        yticks=4,
    )


def spectrum_plot(values: np.ndarray | None, floor: float = 0.0) -> hv.Overlay:
    """Eigenvalues d_i of K above ``floor``, largest first, on a log scale (empty without data)."""
    d = np.sort(values)[::-1] if values is not None else np.zeros(0)
    positive = d[d > floor]
    rank = np.arange(1, positive.size + 1)
    data = pd.DataFrame({"rank": rank, "d": positive})
    kd = hv.Dimension("rank", label="eigenvalue rank (largest first)")
    vd = hv.Dimension("d", label="eigenvalue d_i (log scale)")
    layers = [hv.Curve(data, kd, vd).opts(color="#6b7280"), hv.Scatter(data, kd, vd).opts(color="#1f5fbf", size=4)]
    return _framewise(layers).opts(**SIDE_TOOLBAR, logy=True, title="eigenvalues of K", height=300, framewise=True)


def off_scale(ystar: np.ndarray) -> tuple[tuple[float, float], int]:
    """A y-range for rotated values that ignores the few along the mean's direction; how many it leaves out."""
    if ystar.size == 0:
        return (-1.0, 1.0), 0
    lo, hi = np.quantile(ystar, [0.01, 0.99])
    pad = 0.25 * (hi - lo) if hi > lo else 1.0
    return (lo - pad, hi + pad), int(np.sum((ystar < lo - pad) | (ystar > hi + pad)))


def rotation_plots(rotation: Rotation | None, j: int | None = None) -> tuple[hv.Overlay, hv.Scatter]:
    """The phenotype before (against individual) and after rotation (against eigenvector); empty without data.

    ``j`` (0-based) rings one individual in the first plot (the walkthrough steps through them).
    """
    if rotation is None:
        y, ids, ystar, d = np.zeros(0), [], np.zeros(0), np.zeros(0)
        name = "phenotype"
    else:
        y, ids, ystar, d = rotation.y, list(rotation.ids), rotation.rot.y[:, 0], rotation.rot.d
        name = rotation.phenotype
    before = pd.DataFrame({"individual": np.arange(1, y.size + 1), "y": y, "id": ids})
    left = hv.Scatter(
        before,
        hv.Dimension("individual", label="individual (file order)"),
        [hv.Dimension("y", label=f"{name} (phenotype units)"), "id"],
    ).opts(color="#1f5fbf", size=5)
    ring = [(j + 1, float(y[j]))] if j is not None and 0 <= j < y.size else []
    left = _framewise([
        left,
        hv.Scatter(ring, "individual", "y", label="this individual").opts(
            color="#7c3aed", fill_alpha=0, line_color="#7c3aed", line_width=3, size=16),
    ]).opts(**SIDE_TOOLBAR, title="before rotation: y", height=300, framewise=True, show_legend=False,
            xlabel="individual (file order)", ylabel=f"{name} (phenotype units)")
    after = pd.DataFrame({"i": np.arange(1, ystar.size + 1), "ystar": ystar, "d": d})
    ylim, _ = off_scale(ystar)
    right = hv.Scatter(
        after,
        hv.Dimension("i", label="eigenvector i (eigenvalue d_i ascending)"),
        [hv.Dimension("ystar", label="rotated phenotype y*_i"), hv.Dimension("d", label="d_i")],
    ).opts(**SIDE_TOOLBAR, color="#7c3aed", size=5, title="after rotation: y* = Uᵀy", ylim=ylim, height=300,
           framewise=True)
    return left, right


def weights_plot(rotation: Rotation | None, probe: Probe | None) -> hv.Overlay:
    """The kinship's eigenvalues d_i against their weights ``w_i = 1 / (h2 d_i + 1 - h2)`` at the probed h2.

    The points are the eigenvalues of this K; the line is the weight as a function
    of d at this h2 (1 at h2 = 0; 1 / d at h2 = 1). Empty without data.
    """
    kd = hv.Dimension("d", label="eigenvalue d_i of K (log scale)")
    vd = hv.Dimension("w", label="weight w_i")
    if rotation is None or probe is None or probe.singular:
        data = pd.DataFrame({"d": [], "w": [], "i": []})
        line = pd.DataFrame({"d": [], "w": []})
    else:
        d = rotation.rot.d
        shown = d > 1e-8 * float(d.max())  # zero eigenvalues (weight 1 / (1 - h2)) are off a log scale
        data = pd.DataFrame({"d": d[shown], "w": probe.weights[shown], "i": np.flatnonzero(shown) + 1})
        grid = np.geomspace(float(d[shown].min()), float(d.max()), 200)
        line = pd.DataFrame({"d": grid, "w": 1.0 / (probe.h2 * grid + 1.0 - probe.h2)})
    title = f"eigenvalues and their weights at h2 = {probe.h2:.2f}" if probe is not None else "weights"
    return _framewise([
        hv.Curve(line, kd, vd, label="w(d)").opts(color="#6b7280", line_width=1.5),
        hv.Scatter(data, kd, [vd, hv.Dimension("i", label="eigenvector i")], label="eigenvalues").opts(
            color="#059669", size=6),
    ]).opts(**SIDE_TOOLBAR, framewise=True, title=title, height=300, show_legend=False, logx=True)


def contribution_plot(rotation: Rotation | None, j: int) -> hv.Overlay:
    """Individual j's share ``U_ji y_j`` of every rotated value ``y*_i = sum_j U_ji y_j``.

    Bars over the eigenvectors i (ascending eigenvalue); the rotated values
    themselves as faint points, for scale. Empty without data.
    """
    kd = hv.Dimension("i", label="eigenvector i (eigenvalue d_i ascending)")
    vd = hv.Dimension("c", label="share of y*_i from this individual")
    if rotation is None or not (0 <= j < rotation.rot.n):
        share = pd.DataFrame({"i": [], "c": []})
        total = pd.DataFrame({"i": [], "c": []})
        title = "one individual's share of each y*_i"
    else:
        U = rotation.eig.vectors
        n = U.shape[0]
        share = pd.DataFrame({"i": np.arange(1, n + 1), "c": U[j, :] * rotation.y[j]})
        total = pd.DataFrame({"i": np.arange(1, n + 1), "c": rotation.rot.y[:, 0]})
        title = f"individual {j + 1} ({rotation.ids[j]}): its share U_ji y_j of each y*_i"
    lim = float(np.abs(share["c"]).max()) * 1.25 if len(share) else 1.0
    return _framewise([
        hv.Scatter(total, kd, vd, label="y*_i").opts(color="#c4b5fd", size=4),
        hv.Spikes(share, kd, vd, label="share").opts(color="#7c3aed", line_width=2),
    ]).opts(**SIDE_TOOLBAR, framewise=True, title=title, height=300, ylim=(-lim, lim), show_legend=False)


def residual_plot(rotation: Rotation | None, probe: Probe | None) -> hv.Overlay:
    """Rotated residuals ``y* - X* b(h2)`` with the model's ±2 standard deviations (empty without data)."""
    kd = hv.Dimension("i", label="eigenvector i (eigenvalue d_i ascending)")
    vd = hv.Dimension("r", label="rotated residual y*_i − x*_i b")
    if rotation is None or probe is None or probe.singular:  # at a singular h2, L is minus infinity
        i, r, sd = np.zeros(0), np.zeros(0), np.zeros(0)
    else:
        i = np.arange(1, rotation.rot.n + 1)
        sd = np.sqrt(probe.sigma2 / probe.weights)
        r = probe.residuals
    band = hv.Spread((i, np.zeros(i.size), 2.0 * sd), kd, [vd, "err"], label="±2 sd under the model").opts(
        color="#93c5fd", alpha=0.5
    )
    pts = hv.Scatter((i, r), kd, vd, label="residual").opts(color="#1f2937", size=4)
    if r.size:
        lo, hi = np.quantile(r, [0.005, 0.995])
        m = max(abs(lo), abs(hi), float(np.quantile(2.0 * sd, 0.99)))
        ylim = (-1.15 * m, 1.15 * m)
    else:
        ylim = (-1.0, 1.0)
    title = f"residuals at h2 = {probe.h2:.2f} (band: ±2 sd)" if probe is not None else "residuals"
    return _framewise([band, pts]).opts(
        **SIDE_TOOLBAR,
        title=title,
        show_legend=False,
        ylim=ylim,
        framewise=True,
        height=300,
    )


def probe_curve_plot(curve: pd.DataFrame | None, fit: FitResult | None, probe: Probe | None, method: str) -> hv.Overlay:
    """The profile curve with the probed h2 and the optimum marked (empty without data)."""
    if curve is None or fit is None or probe is None:
        curve, ylim, h2, point, optimum = pd.DataFrame({"h2": [], "loglik": []}), (0.0, 1.0), -1.0, [], []
    else:
        ylim = profile_ylim([(curve, fit)])
        h2 = probe.h2
        point = [(probe.h2, probe.loglik)] if np.isfinite(probe.loglik) else []
        optimum = [(fit.h2, fit.loglik)]
    return _framewise(
        [
            hv.Curve(_finite(curve), H2_DIM, LOGLIK_DIM, label="profile").opts(
                color=METHOD_COLOURS[method], line_width=2.5
            ),
            hv.VLine(h2).opts(color="#059669", line_dash="dashed"),
            hv.Scatter(point, H2_DIM, LOGLIK_DIM, label="your h2").opts(color="#059669", size=13),
            hv.Scatter(optimum, H2_DIM, LOGLIK_DIM, label="optimum").opts(color=OPTIMUM_COLOUR, size=11, marker="star"),
        ]
    ).opts(
        **PLOT_OPTS,
        **H2_LABELS,
        title="this h2 on the profile",
        xlim=H2_XLIM,
        ylim=ylim,
        show_legend=False,
        framewise=True,
        height=300,
    )


def heritability_errorbars(results: pd.DataFrame, current: str | None = None) -> hv.Overlay:
    """h2 with its 95% profile-likelihood interval for every phenotype (one row each)."""
    df = results[["phenotype", "h2", "h2_ci_low", "h2_ci_high", "n"]].copy()
    df["phenotype"] = df["phenotype"].astype(str)
    df["minus"] = df["h2"] - df["h2_ci_low"]
    df["plus"] = df["h2_ci_high"] - df["h2"]
    df["shown"] = np.where(df["phenotype"] == str(current), "selected", "other")
    kd = hv.Dimension("phenotype", label="phenotype")
    vd = hv.Dimension("h2", label="h2 (heritability, unitless) with 95% interval", range=(0, 1))
    bars = hv.ErrorBars(df, kd, [vd, "minus", "plus"]).opts(color="#374151", line_width=2)
    pts = hv.Scatter(df, kd, [vd, "h2_ci_low", "h2_ci_high", "n", "shown"]).opts(
        color="shown", cmap={"selected": OPTIMUM_COLOUR, "other": "#1f5fbf"}, size=10, show_legend=False
    )
    height = max(260, 34 * len(df) + 90)
    return (bars * pts).opts(
        **{**PLOT_OPTS, "min_height": 260},
        invert_axes=True,
        ylim=(-0.02, 1.02),
        title="h2 with its 95% interval",
        height=height,
        invert_yaxis=True,
    )
