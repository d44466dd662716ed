"""HoloViews drawings of a genome scan (no numerics: only drawing).

Each function takes what :class:`app.scan_state.ScanState` serves (the LOD
frame with genome-axis coordinates, the :class:`~app.scan_state.GenomeLayout`,
an :class:`~app.scan_state.EffectData`) and returns a HoloViews object, so the
viewer stays thin and the drawings can be checked without a server.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import holoviews as hv

from ..scan_state import THRESHOLD_ALPHA, EffectData, GenomeLayout
from .style import ACCENT, OPTIMUM_COLOUR, PLOT_OPTS, SIDE_TOOLBAR

__all__ = ["lod_plot", "lod_points", "effect_plot", "GENOME_DIM", "LOD_DIM", "LOD_TOOLTIPS", "BAND"]

#: The genome axis (positions laid end to end; the tick labels name the chromosomes).
GENOME_DIM = hv.Dimension("x", label="chromosome")
LOD_DIM = hv.Dimension("lod", label="LOD")
SHADE_COLOUR = "#e5e7eb"
THRESHOLD_COLOUR = "#b45309"
#: The exact scan's LOD (h2 re-estimated at every marker), drawn dashed over the fixed-h2 curve.
EXACT_COLOUR = "#7c3aed"
_JITTER = 0.18
#: Support intervals of the peaks (find_peaks' ci_lo to ci_hi).
INTERVAL_COLOUR = "#f59e0b"
#: The band under LOD 0 that holds the clickable chromosome names, as a fraction of the plot's top.
BAND = 0.11
BAND_COLOUR = "#f3f4f6"

#: Hover text of a marker.
LOD_TOOLTIPS = [("marker", "@marker"), ("chr", "@chr"), ("position", "@pos{0.00}"), ("LOD", "@lod{0.00}")]


def _broken_curve(frame: pd.DataFrame, column: str = "lod") -> pd.DataFrame:
    """A LOD curve with a NaN row between chromosomes, so that one line does not join them.

    ``column`` is the LOD to draw (``lod``, or ``lod_exact``); the result
    always names it ``lod``. Empty when that column is missing or all NaN.
    """
    if frame.empty or column not in frame or not np.isfinite(frame[column].to_numpy(dtype=float)).any():
        return pd.DataFrame({"x": [], "lod": []})
    x = frame["x"].to_numpy(dtype=float)
    lod = frame[column].to_numpy(dtype=float)
    chrom = frame["chr"].to_numpy(dtype=str)
    breaks = np.flatnonzero(chrom[1:] != chrom[:-1]) + 1
    return pd.DataFrame({"x": np.insert(x, breaks, np.nan), "lod": np.insert(lod, breaks, np.nan)})


def _framewise(layers: list) -> hv.Overlay:
    """Overlay ``layers`` so that a ``DynamicMap`` recomputes the axis ranges at every frame."""
    return hv.Overlay([layer.opts(framewise=True) for layer in layers])


def lod_points(frame: pd.DataFrame) -> hv.Scatter:
    """Markers as points with the hover text."""
    finite = frame[np.isfinite(frame["lod"].to_numpy(dtype=float))] if len(frame) else frame
    data = finite[["x", "lod", "marker", "chr", "pos", "p_value"]] if len(finite) else pd.DataFrame(
        {"x": [], "lod": [], "marker": [], "chr": [], "pos": [], "p_value": []}
    )
    return hv.Scatter(data, GENOME_DIM, [LOD_DIM, "marker", "chr", "pos", "p_value"], label="markers").opts(
        color=ACCENT, size=5, alpha=0.75, hover_tooltips=LOD_TOOLTIPS, tools=["hover"],
    )


def lod_plot(
    frame: pd.DataFrame,
    layout: GenomeLayout,
    *,
    title: str,
    selected: str | None = None,
    threshold: float | None = None,
    n_perm: int = 0,
    message: str = "",
    intervals: pd.DataFrame | None = None,
    chromosome: str | None = None,
) -> hv.Overlay:
    """LOD along the genome: shaded chromosomes, the curve, the markers, the threshold and the selected marker.

    A band under LOD 0 holds the chromosome names: a click there zooms to
    one (the view handles the click). Zoomed (``chromosome``), the axis is
    the chromosome's positions and the band offers the way back.

    The layers are the same whatever is shown (an unused layer is empty or
    off the plot), so that a ``DynamicMap`` can update the figure in place.

    Parameters
    ----------
    frame : DataFrame
        ``marker, chr, pos, x, lod, p_value`` (see :func:`app.scan_state.lod_frame`).
    layout : GenomeLayout
        Where the chromosomes are (tick labels at their middles, every other one shaded).
    title : str
    selected : str, optional
        The marker to mark with a ring and a dotted line.
    threshold : float, optional
        Genome-wide LOD threshold at level :data:`~app.scan_state.THRESHOLD_ALPHA`
        (drawn dashed and labelled).
    n_perm : int
        Permutations behind the threshold (for its label).
    message : str
        Shown in the middle of the plot (e.g. why it is empty).
    intervals : DataFrame, optional
        ``x0, x1``: support intervals to shade (:func:`app.scan_frames.interval_spans`).
    chromosome : str, optional
        Zoomed to this chromosome: ``frame`` holds its markers and ``x`` is their position.
    """
    if chromosome is not None and len(frame):
        frame = frame.assign(x=frame["pos"].to_numpy(dtype=float))
    lods = frame["lod"].to_numpy(dtype=float) if len(frame) else np.zeros(0)
    exact = _broken_curve(frame, "lod_exact")
    if len(exact):
        lods = np.concatenate([lods, exact["lod"].to_numpy(dtype=float)])
    top = float(np.nanmax(lods)) if np.isfinite(lods).any() else 1.0
    has_threshold = threshold is not None and np.isfinite(threshold)
    if has_threshold:
        top = max(top, float(threshold))
    # a band above the highest point holds the threshold's label, so the label never crosses the curve
    ylim = (0.0, max(top, 1.0) * (1.28 if has_threshold else 1.12))
    band = BAND * ylim[1]
    ylim = (-band, ylim[1])
    if chromosome is not None and len(frame):
        pos = frame["pos"].to_numpy(dtype=float)
        span = max(float(np.ptp(pos)), 1e-9)
        xlim = (float(pos.min()) - 0.02 * span, float(pos.max()) + 0.02 * span)
    elif layout.start.size:
        xlim = (float(layout.start[0] - layout.gap), float(layout.end[-1] + layout.gap))
        if xlim[1] <= xlim[0]:
            xlim = (xlim[0] - 1.0, xlim[1] + 1.0)
    else:
        xlim = (0.0, 1.0)
    x0, x1 = layout.shaded() if chromosome is None else (np.zeros(0), np.zeros(0))
    spans = intervals if intervals is not None and len(intervals) else pd.DataFrame({"x0": [], "x1": []})
    if chromosome is None:
        names = pd.DataFrame({"x": layout.middle, "y": np.full(layout.middle.size, -0.5 * band),
                              "text": list(layout.chromosomes)})
    else:
        names = pd.DataFrame({"x": [xlim[0] + 0.01 * (xlim[1] - xlim[0])], "y": [-0.5 * band],
                              "text": [f"◂ whole genome   (chromosome {chromosome})"]})
    row = frame[frame["marker"] == selected] if selected is not None and len(frame) else frame.iloc[:0]
    ring = [(float(row["x"].iloc[0]), float(row["lod"].iloc[0]))] if len(row) else []
    ring = [r for r in ring if np.isfinite(r[1])]
    line_x = ring[0][0] if ring else xlim[0] - 1e6  # off the plot when nothing is selected
    label = (f"╌ ╌ {100 * THRESHOLD_ALPHA:g}% genome-wide threshold: LOD {threshold:.2f} ({n_perm} permutations)"
             if has_threshold else "")
    layers = [
        hv.VSpans((x0, x1)).opts(color=SHADE_COLOUR, alpha=0.6, line_alpha=0),
        hv.VSpans((spans["x0"].to_numpy(dtype=float), spans["x1"].to_numpy(dtype=float)),
                  label="support intervals").opts(color=INTERVAL_COLOUR, alpha=0.35, line_alpha=0),
        hv.HSpans((-band, 0.0)).opts(color=BAND_COLOUR, alpha=1.0, line_alpha=0),
        hv.Labels(names, ["x", "y"], "text").opts(
            text_color=ACCENT, text_font_size="9.5pt", text_font_style="bold",
            text_align="center" if chromosome is None else "left"),
        hv.Curve(_broken_curve(frame), GENOME_DIM, LOD_DIM, label="LOD").opts(color=ACCENT, line_width=2),
        hv.Curve(exact, GENOME_DIM, LOD_DIM, label="LOD, h² re-estimated").opts(
            color=EXACT_COLOUR, line_width=2, line_dash="dashed"
        ),
        lod_points(frame),
        hv.HLine(threshold if has_threshold else -1e9).opts(color=THRESHOLD_COLOUR, line_dash="dashed", line_width=2),
        hv.Text(xlim[1] - 0.01 * (xlim[1] - xlim[0]), 0.985 * ylim[1], label,
                halign="right", valign="top").opts(text_color=THRESHOLD_COLOUR, text_font_size="9.5pt"),
        hv.VLine(line_x).opts(color=OPTIMUM_COLOUR, line_dash="dotted", line_width=1.5),
        hv.Scatter(ring, GENOME_DIM, LOD_DIM, label="selected").opts(
            color=OPTIMUM_COLOUR, fill_alpha=0, line_color=OPTIMUM_COLOUR, line_width=3, size=15
        ),
        hv.Text(0.5 * (xlim[0] + xlim[1]), 0.5 * ylim[1], message).opts(text_color="#6b7280", text_font_size="12pt"),
    ]
    return _framewise(layers).opts(
        **{**PLOT_OPTS, "toolbar": "right"},  # beside the plot: a long title does not run under it
        title=title,
        xticks=(layout.ticks() if layout.start.size else [(0.5, "")]) if chromosome is None else None,
        xlabel="chromosome (click a name to zoom)" if chromosome is None else f"chromosome {chromosome}: position",
        hooks=[_hide_tick_labels] if chromosome is None else [],
        ylabel="LOD",
        xlim=xlim,
        ylim=ylim,
        show_legend=False,
        framewise=True,
        height=300,
    )


def _hide_tick_labels(plot, _element) -> None:
    """The chromosome names are drawn in the band inside the plot (clickable), so the axis does not repeat them."""
    plot.state.xaxis.major_label_text_font_size = "0px"


def _jitter(n: int, seed: int = 0) -> np.ndarray:
    """Horizontal offsets of the points (seeded: the picture does not change on redraw)."""
    return np.random.default_rng(seed).uniform(-_JITTER, _JITTER, n)


def effect_plot(effect: EffectData | None, message: str = "Click a marker on the LOD plot.") -> hv.Overlay:
    """The phenotype by genotype at one marker: jittered points, group means with ±1.96 SE bars.

    The layers are the same with or without data (then empty, with
    ``message`` in the middle), so that a ``DynamicMap`` can update the
    figure in place.
    """
    if effect is None or effect.groups.empty:
        flag = effect.flag if effect is not None and effect.flag else "none"
        text = message if effect is None else f"No genotype is known at {effect.marker} (flag: {flag})."
        order: list[str] = []
        pts = pd.DataFrame({"slot": [], "value": [], "id": [], "genotype": []})
        groups = pd.DataFrame({"slot": [], "mean": [], "half": [], "n": [], "genotype": []})
        ticks, title, ylabel, ylim = [(0.0, "")], "phenotype by genotype", "phenotype", (0.0, 1.0)
        where_label = "genotype"
    else:
        text = ""
        order = list(effect.groups["genotype"])
        slot = {g: k for k, g in enumerate(order)}
        pts = effect.points.dropna(subset=["genotype"]).copy()
        pts["slot"] = pts["genotype"].map(slot).to_numpy(dtype=float) + _jitter(len(pts))
        pts = pts[["slot", "value", "id", "genotype"]]
        groups = effect.groups.assign(slot=np.arange(len(order), dtype=float),
                                      half=1.96 * effect.groups["se"].fillna(0.0))
        ticks = [(float(k), f"{g}\n(n={n})") for k, (g, n) in enumerate(zip(order, effect.groups["n"]))]
        title = f"{effect.marker} (chr {effect.chromosome}, {effect.position:g})"
        ylabel = effect.phenotype
        values = pts["value"].to_numpy(dtype=float)
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        pad = 0.06 * max(hi - lo, 1e-9)
        ylim = (lo - pad, hi + pad)
        where_label = "genotype (most likely)" if effect.kind == "genoprobs" else "dosage (rounded)"
    where = hv.Dimension("slot", label=where_label)
    value = hv.Dimension("value", label=ylabel)
    mean = hv.Dimension("mean", label=ylabel)
    xlim = (-0.6, max(len(order), 1) - 0.4)
    layers = [
        hv.Scatter(pts, where, [value, "id", "genotype"], label="individuals").opts(
            color="#6b7280", alpha=0.45, size=5,
            hover_tooltips=[("id", "@id"), ("genotype", "@genotype"), ("value", "@value{0.000}")], tools=["hover"],
        ),
        hv.ErrorBars(groups, where, [mean, "half"]).opts(color="#111827", line_width=2),
        hv.Scatter(groups, where, [mean, "n", "genotype"], label="group means").opts(
            color=OPTIMUM_COLOUR, marker="dash", size=28, line_width=3,
            hover_tooltips=[("genotype", "@genotype"), ("n", "@n"), ("mean", "@mean{0.000}")], tools=["hover"],
        ),
        hv.Text(0.5 * (xlim[0] + xlim[1]), 0.5 * (ylim[0] + ylim[1]), text).opts(
            text_color="#6b7280", text_font_size="11pt"
        ),
    ]
    return _framewise(layers).opts(
        **SIDE_TOOLBAR,
        title=title,
        xticks=ticks,
        xlabel=where_label,
        ylabel=ylabel,
        xlim=xlim,
        ylim=ylim,
        show_legend=False,
        framewise=True,
        height=262,
    )
