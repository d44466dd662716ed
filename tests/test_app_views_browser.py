"""The served dashboard at projector sizes (1024 x 768) and laptop sizes (1366 x 768).

One ``panel serve`` for the module and one page per viewport, reused by the
tests: every tab header is wholly visible, no plot is narrower than 250 px,
presentation mode (``?presentation=1`` or the sidebar switch) enlarges the
page's text and the plots' titles, and the Brent view draws the parabola
through x, w, v at a parabolic step and the golden split at a golden step.
Skipped (with the reason) when Debian's chromium is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_util import CHROMIUM, CHROMIUM_ARGS, example_dir, served_app

from app.explorer import TAB_NAMES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]

sync_api = pytest.importorskip("playwright.sync_api")

TIMEOUT_MS = 60_000
SIZES = {"1024": (1024, 768), "1366": (1366, 768)}
TABS = ("Profile likelihood", "Brent's method", "Algorithm walkthrough", "Results", "All phenotypes", "Genome scan")
PARABOLA = "#059669"  # app.views.brent_plots.PARABOLA_COLOUR
GOLDEN = "#d97706"

#: Every glyph renderer of the page's Bokeh documents: [line colour, number of data points].
GLYPHS_JS = """() => { const out = [];
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (!m.glyph || !m.data_source) continue;
    const c = m.glyph.line_color;
    const colour = (c && c.value !== undefined) ? c.value : (typeof c === 'string' ? c : '');
    const d = m.data_source.data; const keys = d instanceof Map ? [...d.keys()] : Object.keys(d || {});
    const first = keys.length ? (d instanceof Map ? d.get(keys[0]) : d[keys[0]]) : [];
    out.push([colour, first ? first.length : 0]);
  }
  return out; }"""

#: The largest plot title font size on the page, in points.
TITLE_PT_JS = """() => { let best = 0;
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.text_font_size === undefined || m.align === undefined || m.text === undefined) continue;
    const s = m.text_font_size; const v = (s && s.value !== undefined) ? s.value : s;
    const n = parseFloat(v); if (!isNaN(n) && String(v).endsWith('pt')) best = Math.max(best, n);
  }
  return best; }"""


#: The smallest computed font size (px) of each kind of widget text on the page, through every shadow root:
#: selects, their options, text and file inputs, Bokeh buttons, card headers, tab headers.
WIDGET_FONTS_JS = """() => { const out = {};
  const seen = (kind, e) => { const s = parseFloat(getComputedStyle(e).fontSize);
    out[kind] = Math.min(out[kind] === undefined ? Infinity : out[kind], s); };
  const walk = (root) => { for (const e of root.querySelectorAll('*')) {
      const t = e.tagName.toLowerCase();
      if (t === 'select') seen('select', e);
      if (t === 'option') seen('option', e);
      if (t === 'input' && !['checkbox', 'radio', 'hidden'].includes(e.type)) seen('input', e);
      if (t === 'textarea') seen('input', e);
      if (e.classList.contains('bk-btn')) seen('button', e);
      if (e.classList.contains('card-header')) seen('card header', e);
      if (e.classList.contains('bk-tab')) seen('tab', e);
      if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(document); return out; }"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    example = example_dir(tmp_path_factory.mktemp("assets"))
    with served_app(example, tmp_path_factory.mktemp("server") / "panel-serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, url: str, size: str, query: str = ""):
    width, height = SIZES[size]
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(f"uncaught: {exc}"))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url + query)
    page.locator(".profile-plot canvas").first.wait_for(state="attached")
    return page


@pytest.fixture(scope="module")
def pages(browser, app_url):
    """One page per viewport size, shared by the tests of this module."""
    opened = {size: _open(browser, app_url, size) for size in SIZES}
    yield opened
    for page in opened.values():
        page.context.close()


def open_tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).first.click()


def body_font_px(page, selector: str) -> float:
    """The computed font size of the first paragraph inside a Panel pane (through its shadow root)."""
    return page.locator(selector).first.evaluate(
        """e => { const root = e.shadowRoot || e; const p = root.querySelector('p') || root;
                  return parseFloat(getComputedStyle(p).fontSize); }"""
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_every_tab_header_is_wholly_visible(pages, size):
    page = pages[size]
    width, height = SIZES[size]
    tabs = page.locator(".bk-tab")
    assert tabs.count() == len(TAB_NAMES)
    for k in range(tabs.count()):
        tab = tabs.nth(k)
        box = tab.bounding_box()
        assert box is not None and box["width"] > 40, tab.inner_text()
        assert 0 <= box["x"] and box["x"] + box["width"] <= width, (tab.inner_text(), box)
        # not hidden by a clipping parent: the tab itself is the element at its centre, and its text fits
        hit = tab.evaluate(
            """e => { const r = e.getBoundingClientRect(); const root = e.getRootNode();
                      const at = root.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                      return (at === e || e.contains(at)) && e.scrollWidth <= e.clientWidth + 1; }"""
        )
        assert hit, f"tab {tab.inner_text()!r} is clipped at {size}"


@pytest.mark.parametrize("size", list(SIZES))
def test_no_plot_is_narrower_than_250_px(pages, size):
    page = pages[size]
    for name in TABS:
        open_tab(page, name)
        if name == "Results":
            continue  # a table, no plot
        page.wait_for_timeout(500)
        page.locator(".bk-panel-models-tabs-Tabs canvas, .main-tabs canvas").first.wait_for(state="attached")
        if name == "Genome scan":  # the phenotype-by-genotype plot once a marker is shown
            page.locator(".scan-effect-plot canvas").first.wait_for(state="attached")
        page.wait_for_timeout(2500)  # let the tab's plots lay out
        widths = page.evaluate(
            """() => { const out = []; const seen = new Set();
                       const walk = root => { for (const e of root.querySelectorAll('*')) {
                           if (e.shadowRoot) walk(e.shadowRoot);
                           if (e.tagName === 'CANVAS' && !seen.has(e)) { seen.add(e);
                               const r = e.getBoundingClientRect(); if (r.width > 0 && r.height > 60) out.push(r.width); } } };
                       walk(document); return out; }"""
        )
        assert widths, f"no plot drawn on {name!r} at {size}"
        assert min(widths) >= 250, f"{name!r} at {size}: plot widths {sorted(widths)}"
    open_tab(page, "Profile likelihood")


def test_presentation_mode_enlarges_text(browser, app_url, pages):
    normal = pages["1024"]
    open_tab(normal, "Profile likelihood")
    normal.locator(".profile-summary", has_text="ĥ²").wait_for()
    small_text = body_font_px(normal, ".profile-summary")
    small_title = normal.evaluate(TITLE_PT_JS)
    small_widgets = normal.evaluate(WIDGET_FONTS_JS)
    assert small_widgets["select"] < 18  # a <select> takes the browser's 13.3 px unless told
    page = _open(browser, app_url, "1024", "?presentation=1")
    try:
        page.locator(".profile-summary", has_text="ĥ²").wait_for()
        big_text = body_font_px(page, ".profile-summary")
        assert big_text >= 18 > small_text
        page.wait_for_timeout(1500)
        assert page.evaluate(TITLE_PT_JS) >= 1.5 * small_title
        # every widget's own text too: the Select and its options, inputs, buttons, card headers, tabs
        widgets = page.evaluate(WIDGET_FONTS_JS)
        assert {"select", "option", "input", "button", "tab"} <= set(widgets), widgets
        assert all(px >= 18 for px in widgets.values()), widgets
        # the sidebar switch turns it off again (and back on), live
        page.locator(".presentation-switch .bk-knob").first.click()
        for _ in range(40):
            if body_font_px(page, ".profile-summary") < 18:
                break
            page.wait_for_timeout(250)
        assert body_font_px(page, ".profile-summary") == pytest.approx(small_text)
        assert page.evaluate(WIDGET_FONTS_JS) == pytest.approx(small_widgets)  # back to the usual sizes
        assert page.errors == []
    finally:
        page.context.close()


def test_brent_view_draws_the_parabola_and_the_golden_split(pages):
    page = pages["1366"]
    open_tab(page, "Brent's method")
    page.locator(".brent-zoom canvas").first.wait_for(state="attached")
    indicator = page.locator(".brent-indicator")
    step = page.locator(".brent-player button.next")
    for _ in range(2):  # the start, then the first parabolic step
        step.click()
        page.wait_for_timeout(400)
    indicator.filter(has_text="Parabolic step").wait_for()
    page.wait_for_function(
        f"""() => ({GLYPHS_JS})().filter(g => g[0] === '{PARABOLA}' && g[1] >= 100).length >= 2"""
    )
    # the golden example: a search whose parabola's vertex falls outside the bracket
    page.locator(".brent-golden-example button").click()
    indicator.filter(has_text="Golden-section step").wait_for()
    indicator.filter(has_text="outside the bracket").wait_for()
    page.wait_for_function(f"""() => ({GLYPHS_JS})().filter(g => g[0] === '{GOLDEN}' && g[1] === 2).length >= 1""")
    assert page.errors == []
