"""What every view of the explorer's state shares: the session's state and the look (normal or presentation)."""

from __future__ import annotations

import panel as pn
import param

from ..state import ExplorerState
from .look import Look

__all__ = ["StateView"]


class StateView(pn.viewable.Viewer):
    """A view of one session's :class:`~app.state.ExplorerState`, drawn in the session's :class:`Look`."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")
    look = param.ClassSelector(class_=Look, doc="Normal or presentation mode.")

    def __init__(self, **params) -> None:
        params.setdefault("look", Look())
        super().__init__(**params)
