"""Viewers over :class:`app.state.ExplorerState`: thin, one per part of the dashboard."""

from .brent import BrentView
from .controls import DataPanel, ModelControls
from .diagnostics import DiagnosticsView
from .profile import ProfileView
from .results import AllPhenotypesView, ResultsView
from .scan import ScanView
from .walkthrough import WalkthroughView

__all__ = [
    "AllPhenotypesView",
    "BrentView",
    "DataPanel",
    "DiagnosticsView",
    "ModelControls",
    "ProfileView",
    "ResultsView",
    "ScanView",
    "WalkthroughView",
]
