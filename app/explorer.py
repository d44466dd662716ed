"""The whole dashboard: sidebar, tabs, notifications, and the page template."""

from __future__ import annotations

import panel as pn
import param

from .scan_state import ScanState
from .state import ExplorerState
from .views import (
    AllPhenotypesView,
    BrentView,
    DataPanel,
    DiagnosticsView,
    ModelControls,
    ProfileView,
    ResultsView,
    ScanView,
    WalkthroughView,
)
from .url import sync_url
from .views.compare import MethodsSideBySide
from .views.genoprob import GenoprobView
from .views.look import LectureDesign, Look, text_styles
from .views.options import AnalysisOptions
from .views.style import ACCENT, escape

__all__ = ["ExplorerApp", "TAB_NAMES", "PANEL_EXTENSIONS", "NOTIFICATION_POSITION", "NOTIFICATION_MS"]

#: The tabs of the main area, in order.
TAB_NAMES = (
    "Profile likelihood", "Brent's method", "Algorithm walkthrough", "Results", "All phenotypes", "Genome scan",
    "Residuals",
)

#: Extensions to pass to ``pn.extension`` (with ``notifications=True``).
PANEL_EXTENSIONS = ("tabulator",)

#: Where the page's notifications appear (Panel's ``NotificationArea.position``): over the foot of the
#: sidebar, which stays in place while the main area scrolls. On the right (Panel's default) a
#: notification lay over the scan settings at 1366 px and over the plots' toolbars at 1024 px.
NOTIFICATION_POSITION = "bottom-left"

#: How long a notification stays, in ms, by level (Panel's ``duration``; 0: until the user closes it).
#: Information (e.g. "genotypes loaded") goes quickly; an error stays until it has been read and closed.
NOTIFICATION_MS = {"info": 3000, "warning": 8000, "error": 0}

#: The URL query that turns presentation mode on (``?presentation=1``).
PRESENTATION_QUERY = "presentation"

#: The tab strip wraps onto a second line rather than hiding tabs on narrow screens (1024 px projectors).
_TAB_CSS = """
.bk-header, .bk-headers-wrapper, .bk-headers { flex-wrap: wrap; row-gap: 2px; overflow: visible; }
.bk-tab { white-space: nowrap; font-size: 1em; padding: 4px 12px; }
"""

_ABOUT = (
    "Fits **y = Xb + e**, var(e) = σ² (h² K + (1 − h²) I) by ML or REML and shows how: "
    "the profile log-likelihood over h², Brent's search for its maximum, and each step of the algorithm."
)


class ExplorerApp(pn.viewable.Viewer):
    """One session's dashboard over an :class:`~app.state.ExplorerState`.

    Displayed directly (e.g. in a notebook) it is a sidebar beside the tabs;
    :meth:`template` wraps the same parts in a ``BootstrapTemplate`` for
    ``panel serve``.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")
    scan_state = param.ClassSelector(class_=ScanState, doc="The session's genome-scan state (over ``state``).")

    def __init__(self, **params) -> None:
        if params.get("state") is None:
            params["state"] = ExplorerState()
        if params.get("scan_state") is None:
            params["scan_state"] = ScanState(explorer=params["state"])
        super().__init__(**params)
        s = self.state
        self.look = Look(presentation=_presentation_requested())
        look = self.look
        self.data_panel = DataPanel(state=s)
        self.controls = ModelControls(state=s)
        self.profile = ProfileView(state=s, look=look)
        self.brent = BrentView(state=s, look=look)
        self.walkthrough = WalkthroughView(state=s, look=look)
        self.genoprob = GenoprobView(state=s, look=look)  # visible when the data came from a cross
        self.results = ResultsView(state=s, look=look)
        self.all_phenotypes = AllPhenotypesView(state=s, look=look)
        self.scan = ScanView(scan=self.scan_state, look=look)
        self.diagnostics = DiagnosticsView(state=s)
        self.compare = MethodsSideBySide(state=s)
        self.options = AnalysisOptions(state=s, scan_state=self.scan_state)
        self.tabs = pn.Tabs(
            (TAB_NAMES[0], self.profile),
            (TAB_NAMES[1], self.brent),
            (TAB_NAMES[2], pn.Column(self.genoprob, self.walkthrough, sizing_mode="stretch_width")),
            (TAB_NAMES[3], self.results),
            (TAB_NAMES[4], pn.Column(self.all_phenotypes, self.compare, sizing_mode="stretch_width")),
            (TAB_NAMES[5], self.scan),
            (TAB_NAMES[6], self.diagnostics),
            dynamic=True,
            sizing_mode="stretch_width",
            css_classes=["main-tabs"],
            stylesheets=[_TAB_CSS],
        )
        self.presentation_switch = pn.widgets.Switch.from_param(
            look.param.presentation, name="Presentation mode (large text for projectors)",
            css_classes=["presentation-switch"], sizing_mode="stretch_width", margin=(8, 10, 0, 10),
        )
        presenter = self.presentation_switch
        self.about = pn.pane.Markdown(_ABOUT, margin=(0, 10), css_classes=["about"])
        self.sidebar = pn.Column(
            presenter, self.controls, self.options, pn.layout.Divider(), self.data_panel,
            sizing_mode="stretch_width",
        )
        look.param.watch(self._apply_look, "presentation")
        self._apply_look()
        s.param.watch(self._show_notice, "notice")
        s.param.watch(self._show_busy, "busy")
        self.scan_state.param.watch(self._show_notice, "notice")
        self.tabs.param.watch(self._tab_changed, "active")

    @classmethod
    def with_example(cls, folder=None) -> "ExplorerApp":
        """A dashboard with the example data set loaded (its messages become notifications)."""
        app = cls()
        app.scan_state.example_dir = folder
        app.state.load_example(folder)
        return app

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            pn.Column(self.sidebar, width=330),
            self.tabs,
            sizing_mode="stretch_width",
        )

    def template(self) -> pn.template.BootstrapTemplate:
        """The page served by ``panel serve app``.

        Bootstrap rather than Fast: its page loads nothing from outside the
        server (no web fonts, no CDN), so it works on an air-gapped lab server.
        The choices and the tab follow the page's URL (see :mod:`app.url`).
        The session's notifications appear at :data:`NOTIFICATION_POSITION`.
        """
        if pn.state.location is not None:
            sync_url(pn.state.location, self.state, self.scan_state, self.tabs)
        if pn.state.notifications is not None:
            pn.state.notifications.position = NOTIFICATION_POSITION
        return pn.template.BootstrapTemplate(
            title="LMM Explorer",
            sidebar=[self.sidebar],
            main=[self.about, self.tabs],
            header_background=ACCENT,
            sidebar_width=300,
            design=LectureDesign,  # widgets' text follows presentation mode (app.views.look)
        )

    def _apply_look(self, *_events) -> None:
        """Page text size for the look; the URL says whether presentation mode is on (to share the link)."""
        on = self.look.presentation
        for part in (self.sidebar, self.tabs, self.about):
            part.styles = text_styles(on)
        self.about.visible = not on  # a secondary note: the lecturer says it
        location = pn.state.location
        if _events and location is not None:
            try:
                location.update_query(**{PRESENTATION_QUERY: 1 if on else 0})
            except Exception:  # noqa: BLE001 - outside a served page there is no URL to update
                pass

    def _show_notice(self, event: param.parameterized.Event) -> None:
        notice = event.new
        notifications = pn.state.notifications
        if not notice or notifications is None:
            return
        if notice.get("clear"):
            notifications.clear()  # earlier messages no longer apply (e.g. new data were loaded)
        if not notice.get("text"):
            return
        level = notice.get("level", "info")
        send = getattr(notifications, level, notifications.info)
        send(escape(notice.get("text", "")), duration=NOTIFICATION_MS.get(level, NOTIFICATION_MS["warning"]))

    def _show_busy(self, event: param.parameterized.Event) -> None:
        self.tabs.loading = bool(event.new)

    def _tab_changed(self, event: param.parameterized.Event) -> None:
        # the scan tab scans only while it is on screen
        self.scan_state.active = event.new == TAB_NAMES.index("Genome scan")


def _presentation_requested() -> bool:
    """Whether the page was opened with ``?presentation=1`` (or ``true``, ``yes``, ``on``)."""
    values = []
    location = pn.state.location
    if location is not None:
        values.append(location.query_params.get(PRESENTATION_QUERY))
    args = getattr(pn.state, "session_args", None) or {}
    values += [v.decode() if isinstance(v, bytes) else v for v in args.get(PRESENTATION_QUERY, [])]
    return any(str(v).strip().lower() in ("1", "true", "yes", "on") for v in values if v is not None)
