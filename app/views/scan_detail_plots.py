"""HoloViews drawings after the scan: effects along a chromosome, the LOD heat map and the QQ plot.

Only drawing: each function takes a frame served by
:class:`app.scan_detail.ScanDetail` (see :mod:`app.scan_frames`) and returns
a HoloViews object whose data are that frame's columns, unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import holoviews as hv

from ..scan_frames import CC_STRAINS, effect_colours
from ..genome import GenomeLayout
from .style import ACCENT, OPTIMUM_COLOUR, SIDE_TOOLBAR

__all__ = ["coef_plot", "heat_plot", "qq_plot", "MESSAGE_COLOUR"]

MESSAGE_COLOUR = "#6b7280"
#: Height of the plots below the LOD plot (the page is 768 px high).
DETAIL_HEIGHT = 260
_MIN = {"min_height": 200}
_OPTS = {**SIDE_TOOLBAR, **_MIN}


def _message(x: float, y: float, text: str) -> hv.Text:
    return hv.Text(x, y, text).opts(text_color=MESSAGE_COLOUR, text_font_size="11pt")


def _empty(title: str, text: str, **opts) -> hv.Overlay:
    """A blank plot with ``text`` in the middle (nothing to draw yet)."""
    return hv.Overlay([hv.Curve([], "x", "y"), _message(0.5, 0.5, text)]).opts(
        **_OPTS, title=title, xlim=(0, 1), ylim=(0, 1), xaxis=None, yaxis=None, show_legend=False,
        height=opts.pop("height", DETAIL_HEIGHT), **opts,
    )


def coef_plot(frame: pd.DataFrame, names, *, chromosome: str | None, kind: str = "coef", phenotype: str = "",
              xlim: tuple[float, float] | None = None, selected_pos: float | None = None,
              message: str = "") -> hv.Overlay:
    """Effects along a chromosome: one line per genotype or founder (R/qtl2's ``plot_coef``).

    Parameters
    ----------
    frame : DataFrame
        :func:`app.scan_frames.effects_frame`: ``pos`` and one column per name in ``names``.
    names : sequence of str
        The effect columns (``AA, AB, BB``; ``A`` … ``H`` in R/qtl2's CC colours).
    chromosome : str or None
        None: not zoomed (``message`` says what to do).
    kind : {"coef", "blup"}
    xlim : (float, float), optional
        The zoomed LOD plot's range, so that both plots line up.
    selected_pos : float, optional
        Position of the selected marker (a dotted line).
    """
    what = "BLUPs" if kind == "blup" else "effects"
    if chromosome is None or frame.empty or not len(names):
        return _empty(f"QTL {what} along the chromosome", message or "Zoom to a chromosome to see the effects.")
    colours = effect_colours(names)
    layers = []
    for name in names:
        label = f"{name} ({CC_STRAINS[name]})" if len(names) == 8 and name in CC_STRAINS else str(name)
        data = frame[["pos", name]].rename(columns={name: "effect"})
        layers.append(hv.Curve(data, hv.Dimension("pos", label=f"chr {chromosome} position"),
                               hv.Dimension("effect", label=f"{what}"), label=label).opts(
            color=colours[name], line_width=2, tools=["hover"],
            hover_tooltips=[("genotype", label), ("position", "@pos{0.00}"), ("effect", "@effect{0.000}")]))
    values = frame[list(names)].to_numpy(dtype=float)
    lo, hi = (float(np.nanmin(values)), float(np.nanmax(values))) if np.isfinite(values).any() else (-1.0, 1.0)
    pad = 0.06 * max(hi - lo, 1e-9)
    line_x = selected_pos if selected_pos is not None and np.isfinite(selected_pos) else -1e12
    layers.append(hv.VLine(line_x).opts(color=OPTIMUM_COLOUR, line_dash="dotted", line_width=1.5))
    layers.append(hv.HLine(0.0).opts(color="#9ca3af", line_width=1))
    pos = frame["pos"].to_numpy(dtype=float)
    xlim = xlim or (float(np.nanmin(pos)), float(np.nanmax(pos)))
    title = f"{phenotype}: {'BLUPs of the QTL effects' if kind == 'blup' else 'QTL effects (scan1coef)'}, chr {chromosome}"
    return hv.Overlay(layers).opts(
        **_OPTS, title=title, xlim=xlim, ylim=(lo - pad, hi + pad), height=DETAIL_HEIGHT,
        legend_position="top", legend_cols=len(names) if len(names) <= 4 else (len(names) + 1) // 2, show_legend=True, xlabel=f"chr {chromosome} position", ylabel=what,
    )


def heat_plot(frame: pd.DataFrame, layout: GenomeLayout, *, message: str = "") -> hv.Overlay | hv.QuadMesh:
    """LOD of every phenotype (rows) by genome position (columns, chromosomes laid end to end).

    ``frame`` is :func:`app.scan_frames.heat_frame`; each cell's value is the
    scan table's LOD, unchanged.
    """
    title = "LOD of every phenotype along the genome"
    if frame.empty:
        return _empty(title, message or "Scan every phenotype to see the heat map.")
    phenotypes = list(pd.unique(frame["phenotype"]))
    xs = np.sort(pd.unique(frame["x"].to_numpy(dtype=float)))
    grid = frame.pivot_table(index="phenotype", columns="x", values="lod", aggfunc="first", dropna=False)
    grid = grid.reindex(index=phenotypes, columns=xs)
    edges = np.empty(xs.size + 1)
    if xs.size > 1:
        mids = 0.5 * (xs[1:] + xs[:-1])
        edges[1:-1] = mids
        edges[0] = xs[0] - (mids[0] - xs[0])
        edges[-1] = xs[-1] + (xs[-1] - mids[-1])
    else:
        edges[:] = (xs[0] - 0.5, xs[0] + 0.5)
    # the first phenotype (the one shown above) at the top: rows drawn from the bottom up in reverse order
    ys = np.arange(len(phenotypes) + 1) - 0.5
    mesh = hv.QuadMesh((edges, ys, grid.to_numpy(dtype=float)[::-1]), [hv.Dimension("x", label="chromosome"),
                                                                 hv.Dimension("y", label="phenotype")],
                       hv.Dimension("lod", label="LOD"))
    top = float(np.nanmax(frame["lod"].to_numpy(dtype=float))) if np.isfinite(frame["lod"]).any() else 1.0
    bounds = [float(b) for b in 0.5 * (layout.end[:-1] + layout.start[1:])]
    lines = [hv.VLine(b).opts(color="#ffffff", line_width=1.5) for b in bounds]
    height = int(min(420, max(DETAIL_HEIGHT, 70 + 22 * len(phenotypes))))
    return hv.Overlay([mesh.opts(cmap="YlOrRd", colorbar=True, clim=(0.0, max(top, 1e-9)), tools=["hover"],
                                 line_alpha=0), *lines]).opts(
        **_OPTS, title=title, xticks=layout.ticks(), yticks=list(enumerate(phenotypes[::-1])),
        xlabel="chromosome", ylabel="", height=height,
        xlim=(float(edges[0]), float(edges[-1])), ylim=(-0.5, len(phenotypes) - 0.5), show_legend=False,
    )


def qq_plot(frame: pd.DataFrame, *, phenotype: str = "") -> hv.Overlay:
    """Observed against expected ``-log10 p`` (``frame``: :func:`app.scan_frames.qq_frame`), with the diagonal."""
    title = f"QQ plot of p-values: {phenotype}" if phenotype else "QQ plot of the scan's p-values"
    if frame.empty:
        return _empty(title, "No p-values yet.")
    top = float(max(frame["expected"].max(), np.nanmax(frame["observed"].to_numpy(dtype=float)), 1.0)) * 1.05
    expected = hv.Dimension("expected", label="expected −log10 p (uniform)")
    observed = hv.Dimension("observed", label="observed −log10 p")
    return hv.Overlay([
        hv.Curve([(0.0, 0.0), (top, top)], expected, observed, label="y = x").opts(
            color="#9ca3af", line_dash="dashed", line_width=1.5),
        hv.Scatter(frame[["expected", "observed", "marker", "p_value"]], expected,
                   [observed, "marker", "p_value"], label="markers").opts(
            color=ACCENT, size=5, alpha=0.7, tools=["hover"],
            hover_tooltips=[("marker", "@marker"), ("p", "@p_value{0.000e}"), ("expected", "@expected{0.00}"),
                            ("observed", "@observed{0.00}")]),
    ]).opts(**_OPTS, title=title, xlim=(0.0, top), ylim=(0.0, top), height=DETAIL_HEIGHT,
            show_legend=False)
