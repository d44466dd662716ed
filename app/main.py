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

from app.explorer import PANEL_EXTENSIONS, ExplorerApp  # noqa: E402

pn.extension(*PANEL_EXTENSIONS, notifications=True)
hv.extension("bokeh", logo=False)

ExplorerApp.with_example().template().servable(title="LMM Explorer")
