"""report.html in a real browser: headless Chromium opens it from disk, every figure decodes, the console stays
clean, and a full-page screenshot is kept in test-artifacts/report.png.

Driven through Selenium with Debian's chromedriver (built from the same source as its Chromium, so the two always
match): the W3C WebDriver protocol is stable across browser versions, and Selenium gives the console log and
screenshots without a hand-written DevTools client. With the driver's path given, Selenium never looks for or
downloads a driver or a browser of its own. `make test` installs chromium and chromium-driver.
"""

import shutil
from pathlib import Path

import pytest

from resdyn.analysis.report import build_report, write_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
WIDTH = 1440

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("needs Debian's chromium and chromium-driver (make test installs them)", allow_module_level=True)


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Root needs --no-sandbox; the rest keep a machine without network from trying to reach one.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_report_renders_in_chromium(digits_runs, tmp_path, browser):
    report = build_report([*digits_runs.values(), tmp_path / "no-such-run"], title="digits: ResNet-8 vs LM-ResNet-14")
    html_path, _ = write_report(report, tmp_path / "report")
    # Away from the PNGs the Markdown uses: the page must need no file but itself.
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    shutil.copy(html_path, alone)

    browser.get(alone.as_uri())
    images = browser.execute_script(
        "return [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))")
    assert len(images) == len(report.sections[0].plots) == 7  # six curves, and the stability regions
    assert all(i["complete"] and i["width"] > 0 for i in images), images
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    text = browser.find_element("tag name", "body").text
    assert "no-such-run" in text and "lm-resnet depth=14" in text

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, height)
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # the folder ignores itself: artifacts are never committed
    shutil.copy(screenshot, ARTIFACTS / "report.png")


def test_runs_scored_once_read_in_the_browser(digits_runs, tmp_path, browser):
    """Issue 29.13: `make demo` scores only the last epoch, and its first figure was lone dots on an x-axis from
    2.85 to 3.15. Runs whose metrics hold one scored epoch (train.eval_every = epochs) get the training accuracy
    per epoch and the final accuracy per model; the screenshot shows every model's colour in quantity."""
    import json

    import matplotlib.colors
    import matplotlib.image
    import numpy as np

    folders = []
    for name, path in digits_runs.items():
        copy = tmp_path / "runs" / name
        shutil.copytree(path, copy)
        lines = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
        for record in lines[:-1]:  # scored only after the last epoch
            record["test_acc"] = record["test_loss"] = None
        (copy / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        folders.append(copy)
    report = build_report(folders, title="scored once")
    html_path, _ = write_report(report, tmp_path / "report")
    browser.get(html_path.as_uri())
    titles = browser.execute_script("return [...document.images].map(i => i.alt)")
    assert titles[0] == "Training accuracy per epoch and final test accuracy", titles
    first = browser.find_element("css selector", "figure img")
    browser.set_window_size(WIDTH, 2000)
    screenshot = tmp_path / "accuracy.png"
    assert first.screenshot(str(screenshot))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    shutil.copy(screenshot, ARTIFACTS / "report-scored-once-accuracy.png")
    image = matplotlib.image.imread(screenshot)[..., :3]
    table = report.sections[0].table
    for row, colour in zip(table.rows, table.colours, strict=True):
        target = np.array(matplotlib.colors.to_rgb(colour))
        assert (np.abs(image - target).max(-1) < 0.03).sum() > 300, row[0]
