"""The served dashboard under load, and an upload above the size limit.

One ``panel serve app`` process (started by the test, on 127.0.0.1 and a free
port, with a thread pool and short session cleanup) takes ten browser
sessions at once (one headless chromium, ten contexts, driven concurrently by
playwright's async API). The ten pages are opened one after another (Bokeh
builds each session's document on the server's event loop, one at a time
whatever the browser does; ten asked at once kept the loop busy for ~50 s on
a loaded 2-core machine, past the liveness check's 30 s, and sessions whose
websocket had not connected within the short unused-session lifetime were
discarded and built again), then all ten upload their own data set at once,
generated here with numpy (its own phenotype names, individuals and values),
and wait for the fit. The test checks that

* every page shows its own phenotype names and the h2 that
  :func:`lmmcore.fit_phenotypes` gives for its data, and never another
  session's, also after all the others have finished;
* the server keeps answering HTTP (``GET /app`` and the liveness endpoint)
  while the sessions fit, and afterwards (each answer within 120 s, or four
  times the warm-up session's time on a slower machine: :func:`answer_within`);
* once the pages are closed the server discards the sessions (its stats log
  counts them) and, after collecting garbage, holds none of their states
  (``app.app_hooks`` logs how many session states are in memory after each
  release: 0 after the warm-up and after the ten); its resident memory
  (VmRSS, from ``/proc``) grew with the sessions and came down by at least a
  tenth of that growth.

The memory check used to ask VmRSS to come back within half the ten
sessions' growth of the warm-up baseline. With every session state collected
(counted in the server), the allocators still kept 40-76% of the growth in
seven runs on a loaded 2-core machine (Python's arenas and glibc's heaps are
returned only where wholly free), so that check failed in four of those seven
without any leak; the count of the states in memory is the leak check now.

A second server runs with ``LMM_EXPLORER_MAX_UPLOAD_MB=1``: a 2 MB file is
refused by the browser with a clear message, the connection stays open and
the data loaded before stay on screen.

Skipped (with the reason) when Debian's chromium is not installed or there is
no ``/proc`` to read the memory from.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_util import CHROMIUM, CHROMIUM_ARGS, REPO, example_dir, free_port, panel_executable, wait_until_up

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="no /proc to read the server's memory from"),
    # a browser load test on a 2-core machine: one retry if the machine was busy with other work
    pytest.mark.flaky(reruns=1, reruns_delay=5),
]

async_api = pytest.importorskip("playwright.async_api")

N_SESSIONS = 10
N_INDIVIDUALS = 400  # a 2 MB kinship CSV per session; ten sessions cost the server ~150 MiB
CHECK_UNUSED_MS = 1000
UNUSED_LIFETIME_MS = 2000
TIMEOUT_MS = 300_000  # one wait in a page: ten sessions and ten pages share two CPUs (a CPU hog beside the test
# made the ten uploads and fits take over 180 s; 25-150 s without)
TRAITS = ("height", "weight", "bmd")


# --------------------------------------------------------------------------- the server


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M).group(1)) / 1024


def http_status(url: str, timeout: float = 30.0) -> int:
    """The status of ``GET url`` (0 when the server does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


class Server:
    """A running ``panel serve app``: its URL, process and log."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/app"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def session_counts(self) -> list[int]:
        """The app's session counts in the stats log so far (one every ``--stats-log-frequency``)."""
        text = self.log.read_text(errors="replace")
        return [int(n) for n in re.findall(r"/app has (\d+) sessions", text)]

    def released_since_last_discard(self) -> bool:
        """Whether the app logged a memory release after the server last discarded a session."""
        text = self.log.read_text(errors="replace")
        return text.rfind("memory released") > text.rfind("Discarding session") >= 0

    def states_in_memory(self) -> list[int]:
        """What each memory release so far logged: the dashboard session states still in memory."""
        from app.app_hooks import RELEASED_MESSAGE

        pattern = re.escape(RELEASED_MESSAGE).replace("%d", r"(\d+)")
        return [int(n) for n in re.findall(pattern, self.log.read_text(errors="replace"))]

    def alive(self) -> bool:
        return self.process.poll() is None


@contextmanager
def panel_server(log: Path, *extra: str, env: dict | None = None, example: Path | None = None):
    """Start ``panel serve app`` on 127.0.0.1 and a free port; stop it (and only it) afterwards."""
    port = free_port()
    environment = dict(os.environ, **(env or {}))
    if example is not None:
        environment["LMM_EXPLORER_EXAMPLE_DIR"] = str(example)
    cmd = [
        panel_executable(), "serve", "app",
        "--address", "127.0.0.1", "--port", str(port),
        "--allow-websocket-origin", f"127.0.0.1:{port}",
        *extra,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env=environment, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        server = Server(process, port, log)
        try:
            wait_until_up(server.url, process)
            yield server
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the process group we started, nothing else
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return example_dir(tmp_path_factory.mktemp("assets"))


# --------------------------------------------------------------------------- data of each session


def write_session_data(folder: Path, index: int, n: int = N_INDIVIDUALS) -> dict:
    """A data set of its own for session ``index``: kinship and phenotype CSVs, and lmmcore's answer.

    The phenotype names carry the session number (``s03_height``), the IDs a
    session prefix, and the values their own seed and heritability.
    """
    import lmmcore

    rng = np.random.default_rng(1000 + index)
    ids = [f"s{index:02d}_ind{k:03d}" for k in range(n)]
    n_markers = 300
    freq = rng.uniform(0.1, 0.9, n_markers)
    G = rng.binomial(2, freq, size=(n, n_markers)).astype(float)
    Z = (G - 2 * freq) / np.sqrt(2 * freq * (1 - freq))
    K = Z @ Z.T / n_markers
    w, U = np.linalg.eigh(K)
    root = U * np.sqrt(np.clip(w, 0, None))
    names = [f"s{index:02d}_{t}" for t in TRAITS]
    columns = {}
    for j, name in enumerate(names):
        h2 = 0.15 + 0.7 * ((index * len(TRAITS) + j) % 11) / 10
        g = root @ rng.normal(size=n)
        e = rng.normal(size=n)
        columns[name] = 10.0 * index + np.sqrt(h2) * g + np.sqrt(1 - h2) * e
    kinship = folder / f"kinship_s{index:02d}.csv"
    pheno = folder / f"pheno_s{index:02d}.csv"
    pd.DataFrame(K, index=ids, columns=ids).to_csv(kinship, float_format="%.8g")
    pd.DataFrame(columns, index=pd.Index(ids, name="id")).to_csv(pheno, float_format="%.6f")
    fits = lmmcore.fit_phenotypes(lmmcore.load_data(kinship, pheno))
    return {"index": index, "kinship": kinship, "pheno": pheno, "names": names,
            "h2": {f.phenotype: f.h2 for f in fits}}


# --------------------------------------------------------------------------- pages


SHOWN_TEXT = """e => { const root = e.shadowRoot;
                      if (!root) return e.innerText;
                      return Array.from(root.children).map(c => c.innerText || "").join("\\n"); }"""


async def shown_text(locator) -> str:
    """The visible text of a Panel component (its content lives in a shadow root)."""
    return await locator.first.evaluate(SHOWN_TEXT)


async def page_view(page) -> dict:
    """What a page shows: the data summary, the profile summary and the phenotype choices."""
    return {
        "data": await shown_text(page.locator(".data-summary")),
        "profile": await shown_text(page.locator(".profile-summary")),
        "choices": [t.strip() for t in await page.locator(".phenotype-select select option").all_inner_texts()],
    }


async def open_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
    page.errors = errors
    await page.goto(url)
    await page.locator(".profile-plot canvas").first.wait_for(state="attached")
    return context, page


async def upload_and_fit(page, data: dict) -> dict:
    """Upload a session's kinship and phenotypes; wait until its first phenotype's fit is on screen."""
    await page.locator(".upload-kinship input[type=file]").set_input_files(str(data["kinship"]))
    await page.locator(".upload-phenotypes input[type=file]").set_input_files(str(data["pheno"]))
    try:
        await page.locator(".data-summary", has_text=f"uploaded: {data['pheno'].name}").wait_for()
        await page.locator(".profile-summary", has_text=f"{data['names'][0]} · REML").wait_for()
        # the phenotype choices are widened to old + new names first, then narrowed to the new ones
        await async_api.expect(page.locator(".phenotype-select select option")).to_have_text(
            data["names"], timeout=TIMEOUT_MS
        )
    except async_api.Error as exc:
        notes = await page.locator(".notyf__toast").all_inner_texts()
        raise AssertionError(
            f"session {data['index']}: its fit did not appear ({exc.message.splitlines()[0]}); "
            f"notifications {notes}; page errors {page.errors}; data shown: {await page_view(page)}"
        ) from None
    return await page_view(page)


def check_isolated(view: dict, data: dict, all_names: set[str]) -> None:
    """The page shows this session's phenotypes and h2, and nothing of the other sessions."""
    first = data["names"][0]
    assert view["choices"] == data["names"], view["choices"]
    for name in data["names"]:
        assert name in view["data"], (name, view["data"])
    foreign = {name for name in all_names - set(data["names"]) if name in view["data"] + view["profile"]}
    assert not foreign, f"session {data['index']} shows another session's phenotypes: {sorted(foreign)}"
    assert f"n = {N_INDIVIDUALS}" in view["data"]
    assert f"{first} · REML" in view["profile"]
    shown = float(re.search(r"ĥ² = (-?\d+\.\d+)", view["profile"]).group(1))
    assert shown == pytest.approx(data["h2"][first], abs=5.1e-5), (data["index"], shown, data["h2"][first])


class Poller(threading.Thread):
    """Asks the server's liveness endpoint every half second; records what it answered and how fast.

    An answer later than ``timeout`` seconds counts as none (status 0).
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.url, self.timeout = url, timeout
        self.answers: list[tuple[int, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            start = time.monotonic()
            status = http_status(self.url, timeout=self.timeout)
            self.answers.append((status, time.monotonic() - start))
            self._halt.wait(0.5)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def answer_within(warmup_s: float) -> float:
    """Seconds the server may take to answer while ten sessions install their fits: 120, or more on a slow machine.

    Installing a fit redraws the session's views on the server's one event loop (0.5-2 s of CPU for
    one session); sessions whose fits end together queue those redraws, and requests wait behind
    them. On this 2-core machine shared with other work (load average 12-16) the loop was held for
    22-33 s without a CPU hog beside the test and 61 s (two installs in a row) with one, so the
    30 s this check allowed before failed on the machine's load, not on the app. The bound is 120 s,
    or four times the warm-up session (open, upload, fit: 7-18 s here) if that is longer. A server
    that stops answering still fails.
    """
    return max(120.0, 4.0 * warmup_s)


# --------------------------------------------------------------------------- the tests


def test_ten_concurrent_sessions_are_isolated_and_cleaned_up(example, tmp_path):
    from app.app_hooks import RELEASE_DELAY_S

    started = time.monotonic()
    datasets = [write_session_data(tmp_path, i) for i in range(N_SESSIONS)]
    warmup = write_session_data(tmp_path, 99)
    all_names = {name for d in datasets for name in d["names"]}
    log = tmp_path / "panel-serve.log"
    flags = [
        "--num-threads", "4",
        "--check-unused-sessions", str(CHECK_UNUSED_MS),
        "--unused-session-lifetime", str(UNUSED_LIFETIME_MS),
        "--liveness",
        # a debug message: the app's session count, every second. (Not --mem-log-frequency: its
        # census of every Python object blocks the server for seconds with ten sessions open.)
        "--log-level", "debug", "--stats-log-frequency", "1000",
    ]
    settle_s = RELEASE_DELAY_S + 2 * CHECK_UNUSED_MS / 1000 + 1

    data_written = time.monotonic()
    with panel_server(log, *flags, example=example) as server:
        poller = Poller(f"{server.base}/liveness")

        def settled() -> bool:
            """Wait until every session is discarded and its memory released (logged after the last discard)."""
            done = wait_for(lambda: server.session_counts()[-1:] == [0], 30)
            released = wait_for(server.released_since_last_discard, 30 + settle_s)
            time.sleep(1)
            return done and released

        async def drive() -> dict:
            async with async_api.async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    # warm-up: one session uploads, fits and closes; then the baseline
                    start = time.monotonic()
                    context, page = await open_page(browser, server.url)
                    await upload_and_fit(page, warmup)
                    poller.timeout = answer_within(time.monotonic() - start)
                    await context.close()
                    assert await asyncio.to_thread(settled), "the warm-up session was not discarded"
                    assert server.states_in_memory()[-1] == 0, server.states_in_memory()
                    baseline = server.rss_mb()

                    poller.start()
                    marks["warm-up"] = time.monotonic()
                    opened = [await open_page(browser, server.url) for _ in datasets]  # see the module docstring
                    pages = [pg for _, pg in opened]
                    marks["pages open"] = time.monotonic()
                    uploads = asyncio.gather(*(upload_and_fit(pg, d) for pg, d in zip(pages, datasets)))
                    # a new page is served while ten sessions read and fit their data
                    during = await asyncio.to_thread(http_status, server.url, 2 * poller.timeout)
                    first_views = await uploads
                    marks["fits shown"] = time.monotonic()
                    peak = server.rss_mb()
                    sessions_open = server.session_counts()[-1]
                    # once every session has fitted, each page still shows its own results
                    final_views = [await page_view(pg) for pg in pages]
                    errors = {d["index"]: pg.errors for pg, d in zip(pages, datasets) if pg.errors}
                    for context, _ in opened:
                        await context.close()
                    return dict(baseline=baseline, peak=peak, during=during, first=first_views,
                                final=final_views, errors=errors, sessions_open=sessions_open)
                finally:
                    await browser.close()

        marks = {"data written": data_written, "server up": time.monotonic()}
        result = asyncio.run(drive())
        closed_at = time.monotonic()
        cleaned = settled()
        marks["cleaned up"] = time.monotonic()
        after = server.rss_mb()
        states_left = server.states_in_memory()
        poller.stop()
        after_status = http_status(server.url)
        alive = server.alive()

    growth = result["peak"] - result["baseline"]
    slowest = max((t for _, t in poller.answers), default=float("nan"))
    print(
        f"\nRSS of panel serve: {result['baseline']:.0f} MiB after the warm-up session, "
        f"{result['peak']:.0f} MiB with {N_SESSIONS} sessions, {after:.0f} MiB "
        f"{time.monotonic() - closed_at:.0f} s after closing them; session states in memory after each "
        f"release {states_left}; {len(poller.answers)} liveness answers, "
        f"slowest {slowest:.1f} s (allowed {poller.timeout:.0f} s); test took {time.monotonic() - started:.0f} s ("
        + ", ".join(f"{k} at {v - started:.0f} s" for k, v in marks.items()) + ")"
    )
    for d, first, final in zip(datasets, result["first"], result["final"]):
        check_isolated(first, d, all_names)
        check_isolated(final, d, all_names)
    assert result["errors"] == {}
    assert result["sessions_open"] >= N_SESSIONS
    assert result["during"] == 200
    assert poller.answers and all(status == 200 for status, _ in poller.answers), poller.answers
    assert alive and after_status == 200
    assert cleaned, f"sessions still open after every page closed: {server.session_counts()[-5:]}"
    # no session's state (its data, fits, plots) is left once the sessions are discarded and collected
    assert states_left[-1] == 0, f"session states still in memory after the release: {states_left}"
    # Ten sessions' data sets, fits and plots take ~150-230 MiB here; the release hands back what the
    # allocators have wholly free, 24-60% of it in seven runs (see the module notes). Sessions kept
    # whole would keep all of it.
    assert growth > 50, f"the sessions should have cost memory: {result}"
    assert after <= result["baseline"] + 0.9 * growth, (
        f"RSS {after:.0f} MiB after the sessions closed; baseline {result['baseline']:.0f} MiB, "
        f"peak {result['peak']:.0f} MiB"
    )


def test_a_file_above_the_upload_limit_gets_a_message_and_keeps_the_session(example, tmp_path):
    log = tmp_path / "panel-serve.log"
    big = tmp_path / "big_pheno.csv"
    rng = np.random.default_rng(7)
    n = 50_000  # about 2 MB
    frame = pd.DataFrame({"t1": rng.normal(size=n), "t2": rng.normal(size=n)},
                         index=pd.Index([f"id{k}" for k in range(n)], name="id"))
    frame.to_csv(big, float_format="%.12f")
    size_mb = big.stat().st_size / 2**20
    assert 1.5 < size_mb < 3

    with panel_server(log, env={"LMM_EXPLORER_MAX_UPLOAD_MB": "1"}, example=example) as server:

        async def drive() -> dict:
            async with async_api.async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    context, page = await open_page(browser, server.url)
                    help_text = await shown_text(page.locator(".upload-phenotypes"))
                    before = await page_view(page)
                    await page.locator(".upload-phenotypes input[type=file]").set_input_files(str(big))
                    message = page.locator(".notyf__toast", has_text="big_pheno.csv")
                    await message.wait_for()
                    text = await message.first.inner_text()
                    # the session is alive: the example is still there and the page still answers
                    await page.locator(".overlay-toggle input").first.check()
                    await page.locator(".profile-summary", has_text="Dashed: ML").wait_for()
                    after = await page_view(page)
                    lost = await page.locator(".notyf__toast", has_text="connection").count()
                    await context.close()
                    return dict(help=help_text, before=before, after=after, text=text, lost=lost,
                                errors=page.errors)
                finally:
                    await browser.close()

        result = asyncio.run(drive())
        log_text = log.read_text(errors="replace")

    text = " ".join(result["text"].split())
    assert "big_pheno.csv" in text and f"is {size_mb:.1f} MB" in text, text
    assert "upload limit of 1 MB" in text and "not sent" in text and "still in use" in text, text
    assert "At most 1 MB" in result["help"], result["help"]
    assert result["lost"] == 0
    assert result["after"]["data"] == result["before"]["data"]
    assert result["after"]["choices"] == result["before"]["choices"]
    assert "example data" in result["after"]["data"]
    assert result["errors"] == []
    assert "code=1009" not in log_text and "Reached maximum read buffer size" not in log_text
