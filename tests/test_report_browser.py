"""The HTML report in a real browser: headless Chromium (Debian packages chromium + chromium-driver) via selenium.

Fails on any console error (severity SEVERE), on any network resource the page requests (the report must be
self-contained), or when a key section or plot is missing; saves a screenshot (``BOUNDLAB_SCREENSHOT_DIR`` keeps
it, else it lands in pytest's tmp_path). Skipped with the reason when chromium, chromedriver or selenium is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from boundlab.reports import build_report

DATA = Path(__file__).parent / "data" / "reports"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _driver(profile_dir: Path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        reason = "chromium/chromedriver not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):  # .ci/run installs them: in CI a missing browser is a failure, not a skip
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile_dir}", "--window-size=1280,2000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_report_renders_in_headless_chromium(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_BENCH_HISTORY", "")  # the fixture's runs only, not the committed benchmarks/history
    report = build_report(DATA, tmp_path / "out")
    driver = _driver(tmp_path / "profile")
    try:
        driver.get(report.resolve().as_uri())
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        # an external URL (CDN script, web font, remote image) would show up as a resource entry
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        count = lambda css: driver.execute_script(f"return document.querySelectorAll({css!r}).length")  # noqa: E731
        found = {css: count(css) for css in (
            "section#overview", "section#bounds", "section#teeth", "section#sdp", "section#experiments", "section#benchmarks", "#verdicts",
            "svg[data-plot^='scatter:']", "svg[data-plot^='ratio:']", "svg[data-plot^='layers:']",
            "svg[data-plot^='robustness:']", "svg[data-plot^='bench:']", ".math svg", "table.verdicts tr",
            ".sdp table")}
        # the plots were laid out (non-zero size), not just present in the DOM
        sizes = driver.execute_script("return [...document.querySelectorAll('svg.plot')].map("
                                      "s => s.getBoundingClientRect().width * s.getBoundingClientRect().height)")
        js = driver.execute_script
        # the first screen: the overview figure and the filterable, sortable table
        overview = count("svg[data-plot='overview:bounds']")
        rows = lambda: js("return [...document.querySelectorAll('#bound-table tbody tr')]"  # noqa: E731
                          ".filter(r => r.style.display !== 'none').map(r => r.cells[0].textContent)")
        all_rows = rows()
        box = driver.find_element("id", "bound-filter")
        box.send_keys("planted")
        filtered = rows()
        box.clear()
        js("document.getElementById('bound-filter').dispatchEvent(new Event('input'))")
        js("document.querySelectorAll('#bound-table thead th')[0].click()")
        sorted_rows = rows()
        # a link to a collapsed card opens it
        closed_before = js("return document.querySelectorAll('details.bound:not([open])').length")
        js("location.hash = '#bound-planted-conv-no-k-factor'")
        opened = js("return document.getElementById('bound-planted-conv-no-k-factor').open")
        shots = Path(os.environ.get("BOUNDLAB_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shots / "report.png"))
        driver.set_window_size(1280, 900)
        driver.execute_script("document.getElementById('experiments').scrollIntoView()")
        driver.save_screenshot(str(shots / "report-experiments.png"))
    finally:
        driver.quit()
    assert errors == [], errors  # breaks on: broken inline SVG/markup that the console reports
    assert resources == [], resources  # breaks on: a CDN/network asset anywhere in the page
    # breaks on: a section or plot family dropped from the report
    assert all(n >= 1 for n in found.values()), found
    assert found["svg[data-plot^='scatter:']"] == 3 and found["svg[data-plot^='bench:']"] == 2, found
    assert sizes and min(sizes) > 100, sizes  # breaks on: SVGs that do not render (zero-size boxes)
    assert (shots / "report.png").stat().st_size > 10_000
    assert overview == 1
    assert filtered == ["planted.conv_no_k_factor"] and len(all_rows) == 3, (filtered, all_rows)
    assert sorted_rows == sorted(all_rows), sorted_rows  # breaks on: a header click that does not sort
    assert closed_before >= 1 and opened, (closed_before, opened)
