"""Helpers for the dashboard tests: the example data, a served app, headless chromium.

Imported by ``tests/test_app_state.py`` and ``tests/test_app_browser.py`` (pytest
puts ``tests/`` on ``sys.path``), so conftest.py stays untouched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXAMPLE_FILES = ("pheno.csv", "kinship.csv", "covar.csv")


def example_dir(tmp_root: Path) -> Path:
    """The bundled example folder, or (while it is not there yet) a copy simulated into ``tmp_root``.

    The simulation is the engine's own generator of the bundled data set
    (:func:`lmmcore.example.write_example_dataset`), so the numbers are the
    same as the committed files'.
    """
    if all((ASSETS / name).is_file() for name in EXAMPLE_FILES):
        return ASSETS
    from lmmcore.example import write_example_dataset

    folder = tmp_root / "example"
    if not all((folder / name).is_file() for name in EXAMPLE_FILES):
        write_example_dataset(folder, force=True)
    return folder


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def panel_executable() -> str:
    """The ``panel`` script of the running interpreter's environment."""
    candidate = Path(sys.executable).with_name("panel")
    return str(candidate) if candidate.exists() else (shutil.which("panel") or "panel")


def lmmcore_executable() -> list[str]:
    """How to run the ``lmmcore`` command line of this environment."""
    candidate = Path(sys.executable).with_name("lmmcore")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "lmmcore.cli"]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 240.0) -> None:
    """Poll ``url`` until it answers 200; fail early if the server died.

    Each request builds a whole session (load and fit the example), which on a
    busy machine takes tens of seconds; a request is given the whole remaining
    time rather than a few seconds, so that a slow first page is waited for
    instead of being abandoned and started again.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while (left := deadline - time.monotonic()) > 0:
        if process.poll() is not None:
            raise RuntimeError(f"panel serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=max(left, 1.0)) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last})")


@contextmanager
def served_app(example: Path, log_path: Path):
    """Run ``panel serve app`` on a free port; yield the app's URL; stop the server afterwards."""
    port = free_port()
    env = dict(os.environ)
    if example != ASSETS:
        env["LMM_EXPLORER_EXAMPLE_DIR"] = str(example)
    cmd = [
        panel_executable(), "serve", "app",
        "--port", str(port),
        "--address", "127.0.0.1",
        "--allow-websocket-origin", f"127.0.0.1:{port}",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}/app"
        try:
            wait_until_up(url, process)
            yield url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the session we started, nothing else
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
