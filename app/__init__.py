"""LMM Explorer: a Panel + HoloViews dashboard that shows a linear mixed model being fitted.

Serve it with ``panel serve app`` (the directory app runs ``app/main.py``), or
show it in a notebook::

    import panel as pn
    from app.explorer import ExplorerApp
    pn.extension("tabulator", notifications=True)
    ExplorerApp.with_example()

The state (:mod:`app.state`) imports neither panel nor holoviews and can be
tested without a browser; the views (:mod:`app.views`) render it.
"""
