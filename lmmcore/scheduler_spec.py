"""The ``--scheduler`` option: its forms, its argparse type and the install hint (no numerical imports).

Kept apart from :mod:`lmmcore.distributed` so that building the command
line's parser imports neither numpy nor dask.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import LMMInputError

__all__ = ["INSTALL_HINT", "parse_scheduler", "scheduler_arg", "add_scheduler_argument"]

INSTALL_HINT = "pip install 'lmm-explorer[dask]' (or pip install distributed)"

_LOCAL = re.compile(r"^local(?::(\d+))?$", re.IGNORECASE)
_ADDRESS = re.compile(r"^(?:(tcp|tls|ucx|inproc|ws|wss)://)?[^\s:/]+(?::\d+)?/?$", re.IGNORECASE)


def parse_scheduler(spec: str) -> tuple[str, Any]:
    """``("local", N)`` for ``local:N`` (``local`` alone: 2), ``("file", path)`` for a scheduler file
    (``*.json``, written by ``dask scheduler --scheduler-file``), ``("address", spec)`` for a scheduler address.

    Raises
    ------
    LMMInputError
        Anything else, with the two accepted forms.
    """
    text = str(spec).strip()
    local = _LOCAL.match(text)
    if local:
        n = int(local.group(1) or 2)
        if n < 1:
            raise LMMInputError(f"--scheduler {text}: a local cluster needs at least 1 worker (local:N, N >= 1)")
        return "local", n
    if text.lower().endswith(".json"):
        return "file", text
    if _ADDRESS.match(text):
        return "address", text if "://" in text else f"tcp://{text}"
    raise LMMInputError(f"--scheduler '{text}' is neither a scheduler address (tcp://host:8786), a scheduler file "
                        "(sched.json) nor local:N (a cluster of N worker processes on this machine)")


def scheduler_arg(text: str) -> str:
    """argparse type of ``--scheduler``: checks the form (the connection is made when the command runs)."""
    import argparse

    try:
        parse_scheduler(text)
    except LMMInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text).strip()


def add_scheduler_argument(parser, what: str, same: str = "the results are the in-process run's") -> None:
    """The ``--scheduler ADDRESS|local:N`` option of a command (``what``: the work it distributes)."""
    parser.add_argument(
        "--scheduler", type=scheduler_arg, metavar="ADDRESS|FILE.json|local:N",
        help=f"run {what} on a Dask cluster: the address of a running dask.distributed scheduler "
             f"(tcp://host:8786), its scheduler file (sched.json) or local:N (N worker processes on this machine); {same}. Needs "
             f"{INSTALL_HINT}; see docs/CLUSTER.md")
