"""The served dashboard's Genome scan tab in headless chromium.

One page, one pass: the tab draws the LOD plot, its top-peaks table names
the highest marker of an independent :func:`lmmcore.scan.scan` of the same
files, the scan follows the sidebar's phenotype, and a click on the plot
selects another marker. Skipped (with the reason) when Debian's chromium is
not installed.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from browser_util import CHROMIUM, CHROMIUM_ARGS, example_dir, served_app
from lmmcore import LMMWarning
from lmmcore.genotypes import read_genoprobs
from lmmcore.scan import scan

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 30_000
#: How long an expectation waits (a scan and its redraws on a machine shared by several test runs).
EXPECT_MS = 60_000


def top_marker(example: Path, phenotype: str) -> str:
    """The highest marker of lmmcore's LOCO scan of the example (the tab's defaults)."""
    genotypes = read_genoprobs(example / "genoprobs.csv", example / "map.csv")
    pheno = pd.read_csv(example / "pheno.csv", index_col=0)
    covar = pd.read_csv(example / "covar.csv", index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        table = scan(genotypes, pheno[[phenotype]], covar, kinship="loco").table
    return str(table.loc[table["lod"].idxmax(), "marker"])


def test_genome_scan_tab_draws_the_scan_lmmcore_gives(tmp_path_factory):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)
    example = example_dir(tmp_path_factory.mktemp("assets"))
    if not (example / "genoprobs.csv").is_file():
        pytest.skip("the example genotype files are not available")
    first = str(pd.read_csv(example / "pheno.csv", index_col=0, nrows=1).columns[0])
    expected = {first: top_marker(example, first), "qtl_chr2": top_marker(example, "qtl_chr2")}
    log = tmp_path_factory.mktemp("server") / "panel-serve.log"
    with served_app(example, log) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            errors: list[str] = []
            failed: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.locator(".profile-plot canvas").first.wait_for(state="attached")

            page.locator(".bk-tab", has_text="Genome scan").first.click()
            page.locator(".scan-lod-plot canvas").first.wait_for(state="attached")
            first_row = page.locator(".scan-peaks .tabulator-row").first
            expect(first_row).to_contain_text(expected[first])
            expect(page.locator(".scan-summary")).to_contain_text(first)

            # the phenotype follows the sidebar
            page.locator(".phenotype-select select").select_option("qtl_chr2")
            expect(first_row).to_contain_text(expected["qtl_chr2"])
            effects = page.locator(".scan-effects")
            expect(effects).to_contain_text(f"Fitted at {expected['qtl_chr2']}")

            # a click low on chromosome 4 selects a marker there instead of the peak
            box = page.locator(".scan-lod-plot canvas").first.bounding_box()
            page.mouse.click(box["x"] + 0.72 * box["width"], box["y"] + 0.78 * box["height"])
            expect(effects).to_contain_text("Fitted at D4M")
            # nothing is fetched from outside the server (app_hooks.serve_stylesheets_locally: Panel 1.9
            # would give panes of tabs not on screen its CDN's stylesheets when the phenotype changes)
            assert failed == [] and errors == [], (failed, errors)
        finally:
            browser.close()


def test_zooming_to_a_chromosome_shows_its_coefficient_plot_at_1024(tmp_path_factory):
    """At 1024 x 768: the chromosome select zooms the LOD plot and the coefficient plot appears under it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)
    example = example_dir(tmp_path_factory.mktemp("assets"))
    if not (example / "genoprobs.csv").is_file():
        pytest.skip("the example genotype files are not available")
    log = tmp_path_factory.mktemp("server") / "panel-serve.log"
    with served_app(example, log) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.locator(".profile-plot canvas").first.wait_for(state="attached")
            page.locator(".bk-tab", has_text="Genome scan").first.click()
            page.locator(".scan-lod-plot canvas").first.wait_for(state="attached")
            coef = page.locator(".scan-coef")
            expect(coef).to_be_hidden()
            page.locator(".scan-zoom select").select_option("2")
            expect(page.locator(".scan-coef-plot canvas").first).to_be_attached(timeout=90_000)
            expect(page.locator(".scan-coef-note")).to_contain_text("h² fixed at its null estimate", timeout=90_000)
            box = page.locator(".scan-coef-plot").first.bounding_box()
            assert box is not None and box["width"] >= 250, box
            # another phenotype while zoomed: its effects are computed (in a worker thread) and shown
            page.locator(".phenotype-select select").select_option("qtl_chr2")
            expect(page.locator(".scan-coef-note")).to_contain_text("qtl_chr2, chromosome 2", timeout=90_000)
            # back to the whole genome
            page.locator(".scan-zoom select").select_option("whole genome")
            expect(coef).to_be_hidden()
            assert errors == [], errors
        finally:
            browser.close()
