"""LMM Explorer: a Panel + HoloViews dashboard that shows a linear mixed model being fitted.

Serve it with ``panel serve app`` (the directory app runs ``app/main.py``), or
show it in a notebook::

    import panel as pn
    from app.explorer import ExplorerApp
    pn.extension("tabulator", notifications=True)
    ExplorerApp.with_example()

The state imports neither panel nor holoviews and can be tested without a
browser; the views (:mod:`app.views`) render it. State modules, in the order
data flow through them: :mod:`app.data` (example and uploaded files),
:mod:`app.messages` (the engine's messages per job), :mod:`app.base` (notices,
busy flag, one body per sync/async job), :mod:`app.transforms` (kinship scale,
phenotype transforms), :mod:`app.prepare` (a data set fitted once),
:mod:`app.state` (:class:`~app.state.ExplorerState`), :mod:`app.frames`,
:mod:`app.model` and :mod:`app.diagnostics` (what the teaching tabs show);
for the genome scan :mod:`app.scan_jobs` (a scan or an upload as a pure job),
:mod:`app.genome` (the genome axis), :mod:`app.effects` (effects at a marker)
and :mod:`app.scan_state` (:class:`~app.scan_state.ScanState`); after the scan
:mod:`app.scan_frames` (peaks, intervals, effects, QQ and heat-map tables) and
:mod:`app.scan_detail` (:class:`~app.scan_detail.ScanDetail`: zoom, peaks,
effects along a chromosome, variance explained, every phenotype); :mod:`app.url`
keeps the choices in the page's URL.
"""
