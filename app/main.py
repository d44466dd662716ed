"""Entry point of ``panel serve app``: one dashboard per browser session.

``panel serve`` runs this file for every new session, so everything below is
created per session (no widgets in module globals of the library modules).
The example data are read from ``assets/`` next to the ``app`` package, or
from the folder named by ``$LMM_EXPLORER_EXAMPLE_DIR``.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

if find_spec("app") is None or find_spec("lmmcore") is None:  # served from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import holoviews as hv  # noqa: E402
import panel as pn  # noqa: E402
from panel.io.resources import LOCAL_DIST  # noqa: E402

from app.explorer import PANEL_EXTENSIONS, ExplorerApp  # noqa: E402

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
