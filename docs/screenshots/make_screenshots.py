"""Screenshots of every tab of the served dashboard, at 1024 x 768 and 1366 x 768, normal and presentation mode.

Run from the repository root (needs Debian's chromium and playwright)::

    .venv/bin/python docs/screenshots/make_screenshots.py [--only 1024] [--tabs Profile,Brent]

Files: ``docs/screenshots/<size>_<mode>_<tab>.png`` (the whole page, scrolled).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from browser_util import CHROMIUM, CHROMIUM_ARGS, example_dir, served_app  # noqa: E402

TABS = {
    "profile": "Profile likelihood",
    "brent": "Brent's method",
    "brent_golden": "Brent's method",
    "walkthrough": "Algorithm walkthrough",
    "results": "Results",
    "all": "All phenotypes",
    "scan": "Genome scan",
    "profile_overlay": "Profile likelihood",
    "scan_zoom": "Genome scan",
    "scan_do": "Genome scan",
    "scan_iron": "Genome scan",
}
#: A real Diversity Outbred cross for the ``scan_do`` view (uploaded as the data, then scanned).
DO_CROSS = Path("/work/shared/data/qtl2/DOex.zip")
#: A real F2 cross for the ``scan_iron`` view: the whole genome with X, then X zoomed at its peak marker.
IRON_CROSS = Path("/work/shared/data/qtl2/iron.zip")
#: The uploaded crosses, by view.
CROSSES = {"scan_do": (DO_CROSS, "DOex"), "scan_iron": (IRON_CROSS, "iron")}
#: What to wait for before a tab's screenshot (its last plot to be drawn).
READY = {
    "profile": ".profile-plot canvas",
    "brent": ".brent-zoom canvas",
    "walkthrough": ".probe-numbers p",
    "results": ".lmm-results table",
    "all": ".all-phenotypes-plot canvas",
}
SIZES = {"1024": (1024, 768), "1366": (1366, 768)}


def scroll(page, where: float) -> bool:
    """Scroll the page's scrolling main area to ``where`` (0 top, 1 bottom); whether it can scroll."""
    return page.evaluate(
        """where => { const box = document.querySelector('#main');
                      if (!box || box.scrollHeight <= box.clientHeight + 40) return false;
                      box.scrollTop = where * (box.scrollHeight - box.clientHeight); return true; }""",
        where,
    )


def shoot(url: str, out: Path, sizes: list[str], tabs: list[str], modes: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    made = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size in sizes:
            width, height = SIZES[size]
            for mode in modes:
                page = browser.new_context(viewport={"width": width, "height": height}).new_page()
                page.set_default_timeout(30_000)
                page.goto(url + ("?presentation=1" if mode == "present" else ""))
                page.locator(".profile-plot canvas").first.wait_for(state="attached")
                for key in tabs:
                    page.locator(".bk-tab", has_text=TABS[key]).first.click()
                    if key in CROSSES:  # a real cross as the data, its HMM probabilities as the genotypes
                        cross, name = CROSSES[key]
                        if not cross.is_file():
                            continue
                        page.locator(".upload-cross input[type=file]").set_input_files(str(cross))
                        page.locator(".data-summary", has_text=name).wait_for(state="attached", timeout=240_000)
                        page.locator(".scan-use-cross button").wait_for(state="visible", timeout=60_000)
                        page.locator(".scan-use-cross button").click()
                        page.wait_for_timeout(2000)
                    if key.startswith("scan"):  # until the scan is drawn and its peaks listed
                        page.locator(".scan-peaks .tabulator-row").first.wait_for(state="attached", timeout=120_000)
                        page.locator(".scan-effects", has_text="Fitted at").wait_for(state="attached", timeout=120_000)
                        page.wait_for_timeout(6000)  # the LOD plot's update arrives after the table's on a busy machine
                    if key in READY:
                        page.locator(READY[key]).first.wait_for(state="attached", timeout=120_000)
                    page.wait_for_timeout(3500)
                    if key == "brent_golden":  # the example search with golden-section steps
                        page.locator(".brent-golden-example button").click()
                        page.wait_for_timeout(3500)
                    if key == "brent":  # a few steps in, so that a parabola is on screen
                        for _ in range(3):
                            page.locator(".brent-player button.next").click()
                            page.wait_for_timeout(500)
                        page.wait_for_timeout(2500)
                    if key in ("scan_zoom", "scan_do"):  # peaks, zoom to the top chromosome, effects, heat map
                        page.locator(".peaks-threshold input").fill("2")
                        page.locator(".peaks-threshold input").press("Enter")
                        page.wait_for_timeout(1500)
                        page.locator(".scan-find-peaks .tabulator-row").first.wait_for(state="attached")
                        heat = page.locator(".scan-heat-button button")
                        if heat.is_enabled():
                            heat.click()
                        top = page.locator(".scan-peaks .tabulator-row").first.locator(".tabulator-cell[tabulator-field=chr]")
                        page.locator(".scan-zoom select").select_option(top.inner_text().strip())
                        page.locator(".scan-coef-note p").first.wait_for(state="attached", timeout=240_000)
                        page.wait_for_timeout(4000)
                    if key == "scan_iron":  # the whole genome (X at the right end) first
                        scroll(page, 0)
                        path = out / f"{size}_{mode}_{key}.png"
                        page.screenshot(path=str(path))
                        made.append(path)
                        page.locator(".peaks-threshold input").fill("1")
                        page.locator(".peaks-threshold input").press("Enter")
                        page.wait_for_timeout(1500)
                        page.locator(".scan-find-peaks .tabulator-row", has_text="DX").first.click()
                        page.locator(".scan-coef-note p", has_text="chromosome X").first.wait_for(
                            state="attached", timeout=240_000)
                        page.locator(".scan-effects", has_text="(fit1)").wait_for(state="attached", timeout=120_000)
                        page.wait_for_timeout(4000)
                        key = "scan_iron_x"
                        # the effects along X and the phenotype by genotype with fit1's effects at the marker
                        page.locator(".scan-coef-plot").first.scroll_into_view_if_needed()
                        page.evaluate("() => { const box = document.querySelector('#main'); if (box) box.scrollTop += 150; }")
                        page.wait_for_timeout(1500)
                        path = out / f"{size}_{mode}_{key}_effects.png"
                        page.screenshot(path=str(path))
                        made.append(path)
                    if key == "profile_overlay":
                        page.locator(".overlay-toggle input").first.check()
                        page.wait_for_timeout(3000)
                    scroll(page, 0)
                    path = out / f"{size}_{mode}_{key}.png"
                    page.screenshot(path=str(path))
                    made.append(path)
                    if key.startswith("scan_") and scroll(page, 0.5):  # the middle of the scan tab
                        page.wait_for_timeout(1500)
                        path = out / f"{size}_{mode}_{key}_middle.png"
                        page.screenshot(path=str(path))
                        made.append(path)
                    if scroll(page, 1):  # the rest of a tall tab
                        page.wait_for_timeout(1500)
                        path = out / f"{size}_{mode}_{key}_lower.png"
                        page.screenshot(path=str(path))
                        made.append(path)
                page.context.close()
        browser.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SIZES), help="sizes, e.g. 1024,1366")
    parser.add_argument("--tabs", default=",".join(TABS), help="tabs, e.g. profile,brent")
    parser.add_argument("--modes", default="normal,present")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--url", help="a dashboard already served (else one is started)")
    args = parser.parse_args()
    if args.url:
        made = shoot(args.url, Path(args.out), args.only.split(","), args.tabs.split(","), args.modes.split(","))
        print("\n".join(str(p) for p in made))
        return
    with tempfile.TemporaryDirectory() as tmp:
        example = example_dir(Path(tmp))
        with served_app(example, Path(tmp) / "serve.log") as url:
            made = shoot(url, Path(args.out), args.only.split(","), args.tabs.split(","), args.modes.split(","))
    print("\n".join(str(p) for p in made))


if __name__ == "__main__":
    main()
