"""The served dashboard in headless chromium: it loads, draws, accepts uploads and steps.

``panel serve app`` runs in a subprocess for the whole module; each test opens
its own page at 1366 x 768. Skipped (with the reason) when Debian's chromium
is not installed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from browser_util import CHROMIUM, CHROMIUM_ARGS, example_dir, lmmcore_executable, served_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return example_dir(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def app_url(example, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "panel-serve.log"
    with served_app(example, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page on the dashboard with the console errors collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    pg.errors = errors
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(app_url)
    pg.locator(".profile-plot canvas").first.wait_for(state="attached")
    yield pg
    context.close()


def shown_text(locator) -> str:
    """The visible text of a Panel component (its content lives in a shadow root)."""
    return locator.first.evaluate(
        """e => { const root = e.shadowRoot;
                  if (!root) return e.innerText;
                  return Array.from(root.children).map(c => c.innerText || "").join("\\n"); }"""
    )


def open_tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()


def test_loads_without_console_errors(page):
    page.wait_for_timeout(1000)  # let late renders and websocket messages settle
    assert page.title() == "LMM Explorer"
    assert page.errors == []


def test_profile_plot_is_drawn(page):
    assert page.locator(".profile-plot canvas").count() >= 1
    summary = shown_text(page.locator(".profile-summary"))
    assert "ĥ² =" in summary and "LRT" in summary


def test_uploaded_files_give_the_same_h2_as_the_command_line(page, example, tmp_path):
    # a different data set from the example shown at start: 250 individuals, traits reversed
    pheno = pd.read_csv(example / "pheno.csv", index_col=0)
    pheno = pheno.iloc[:250, ::-1]
    files = {
        "phenotypes": tmp_path / "my_pheno.csv",
        "kinship": tmp_path / "my_kinship.csv",
        "covariates": tmp_path / "my_covar.csv",
    }
    pheno.to_csv(files["phenotypes"])
    files["kinship"].write_bytes((example / "kinship.csv").read_bytes())
    files["covariates"].write_bytes((example / "covar.csv").read_bytes())
    out = tmp_path / "cli.csv"
    subprocess.run(
        [*lmmcore_executable(), "fit", "--kinship", str(files["kinship"]), "--pheno", str(files["phenotypes"]),
         "--covar", str(files["covariates"]), "--out", str(out), "--quiet"],
        check=True, timeout=120,
    )
    cli = pd.read_csv(out).set_index("phenotype")

    for kind, path in files.items():
        page.locator(f".upload-{kind} input[type=file]").set_input_files(str(path))
    page.locator(".data-summary", has_text="my_covar.csv").wait_for()
    summary = shown_text(page.locator(".data-summary"))
    assert "n = 250" in summary and "Dropped by ID alignment: 50" in summary

    open_tab(page, "Results")
    results = page.locator(".lmm-results")
    results.locator("table").wait_for()
    text = shown_text(results)
    name = re.search(r"^(\S+) by REML", text, re.M).group(1)
    shown = float(re.search(r"^h2\s+(-?\d+\.\d+)", text, re.M).group(1))
    assert name in cli.index
    assert shown == pytest.approx(cli.loc[name, "h2"], abs=5e-5)
    # and it is not the example's answer still on screen
    import lmmcore

    before = lmmcore.fit_phenotypes(
        lmmcore.load_data(example / "kinship.csv", example / "pheno.csv", example / "covar.csv"), [name]
    )[0]
    assert abs(before.h2 - cli.loc[name, "h2"]) > 1e-3
    assert page.errors == []


def test_brent_player_steps_forward_and_back(page):
    from playwright.sync_api import expect

    open_tab(page, "Brent's method")
    indicator = page.locator(".brent-indicator")
    rows = page.locator(".brent-table tbody tr")
    indicator.filter(has_text="Step 0 of").wait_for()
    expect(rows).to_have_count(0)
    step = page.locator(".brent-player button.next")
    step.click()
    indicator.filter(has_text="Step 1 of").wait_for()
    # the table and the indicator are separate models: wait for the table too
    expect(rows).to_have_count(1, timeout=10_000)
    expect(rows.first).to_contain_text("start")
    step.click()
    indicator.filter(has_text="Step 2 of").wait_for()
    expect(rows).to_have_count(2, timeout=10_000)
    page.locator(".brent-player button.previous").click()
    indicator.filter(has_text="Step 1 of").wait_for()
    expect(rows).to_have_count(1, timeout=10_000)
    assert page.errors == []
