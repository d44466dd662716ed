"""Entry point of ``panel serve app``: one dashboard per browser session.

``panel serve`` runs this file for every new session, so everything below is
created per session (no widgets in module globals of the library modules).
The example data are read from ``assets/`` next to the ``app`` package, or
from the folder named by ``$LMM_EXPLORER_EXAMPLE_DIR``.

The ``app`` and ``lmmcore`` packages are imported as installed (``make
install``, or ``pip install -e .[app]`` in a checkout); this script does not
change ``sys.path``.
"""

from __future__ import annotations

import holoviews as hv
import panel as pn
from panel.io.resources import LOCAL_DIST

from app.explorer import PANEL_EXTENSIONS, ExplorerApp

# Panel (1.9) gives a document the address of its CSS files only when it renders the page, after
# this script. Meanwhile it points stylesheets that sessions share at its CDN, so a page opened
# while another session is being built could ask cdn.holoviz.org for its CSS (unstyled on an
# offline server). Tell the document now that the CSS comes from this server.
_doc = pn.state.curdoc
if _doc is not None and _doc.session_context is not None:
    _doc.template_variables.setdefault(
        "dist_url", f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path else LOCAL_DIST
    )

pn.extension(
    *PANEL_EXTENSIONS,
    notifications=True,
    disconnect_notification="The connection to the server was lost; reload the page to start again.",
)
hv.extension("bokeh", logo=False)

ExplorerApp.with_example().template().servable(title="LMM Explorer")
