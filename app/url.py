"""The session's choices in the page's URL, so that a lecturer can link to a view.

``?phenotype=h2_80&method=ml&tab=1&transform=rint`` opens the dashboard on
that phenotype, method, tab and options; changing them in the page updates the
URL. Uses Panel's :meth:`panel.io.location.Location.sync` (query parameter
names below); a value that does not apply (an unknown phenotype) is ignored.
"""

from __future__ import annotations

import logging

import param

__all__ = ["URL_STATE", "URL_SCAN", "URL_TABS", "sync_url"]

_log = logging.getLogger(__name__)

#: :class:`~app.state.ExplorerState` parameter -> query parameter.
URL_STATE = {
    "phenotype": "phenotype",
    "method": "method",
    "use_covariates": "covariates",
    "kinship_scale": "kinship_scale",
    "transform": "transform",
    "overlay": "overlay",
    "h2_probe": "h2",
    "step": "step",
}
#: :class:`~app.scan_state.ScanState` parameter -> query parameter.
URL_SCAN = {"genotype_source": "genotypes", "loco": "loco", "n_perm": "perm", "exact": "exact"}
#: The tabs' parameter -> query parameter.
URL_TABS = {"active": "tab"}


def _ignored(values: dict) -> None:
    _log.info("URL values that do not apply were ignored: %s", values)


def sync_url(location, state: param.Parameterized, scan_state: param.Parameterized | None = None,
             tabs: param.Parameterized | None = None) -> None:
    """Keep ``location``'s query and the choices of ``state``, ``scan_state`` and ``tabs`` in step (both ways)."""
    location.sync(state, URL_STATE, on_error=_ignored)
    if scan_state is not None:
        location.sync(scan_state, URL_SCAN, on_error=_ignored)
    if tabs is not None:
        location.sync(tabs, URL_TABS, on_error=_ignored)
