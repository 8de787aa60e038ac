"""Open report.html in headless Chromium, as a user would, and check that every figure loads and shows."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pixelwise.report import ComparisonResults, write_report

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install -y chromium); the report is not rendered"
)

# added to a copy of the page only: once everything has loaded, record how many <img> decoded to real pixels
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const shown = images.filter((image) => image.complete && image.naturalWidth > 0 && image.width > 0);
  document.body.dataset.figures = `${shown.length}/${images.length}`;
  document.body.dataset.overflow = String(document.documentElement.scrollWidth > window.innerWidth);
});
</script>"""


def make_report_inputs(folder: Path) -> ComparisonResults:
    """The hand-made results of test_report.py (pytest's importlib mode does not let test files import
    each other by name, so the module is loaded from its path)."""
    spec = importlib.util.spec_from_file_location("report_inputs", Path(__file__).with_name("test_report.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return ComparisonResults.from_dict(module.make_report_inputs(folder))


def _chromium(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",  # root in containers has no user namespace for the sandbox
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,2400",
                "--virtual-time-budget=5000",  # let the load event fire before the DOM is dumped
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def test_every_figure_of_the_report_loads_in_the_browser(tmp_path: Path) -> None:
    write_report(make_report_inputs(tmp_path), tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # the probe goes into a copy in another folder: the report must not need anything beside it
    probe_dir = tmp_path / "elsewhere"
    probe_dir.mkdir()
    probed = probe_dir / "report.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")

    dom = _chromium("--dump-dom", probed.as_uri())
    figures = re.search(r'data-figures="(\d+)/(\d+)"', dom.stdout)
    assert figures, f"the page did not finish loading in Chromium: {dom.stderr[-500:]}"
    shown, total = map(int, figures.groups())
    assert total == page.count("<img ") == 4  # methods, noise, examples, oracle examples
    assert shown == total
    assert 'data-overflow="false"' in dom.stdout, "the page is wider than a 1280 px window"


def test_the_report_renders_to_a_non_blank_screenshot(tmp_path: Path) -> None:
    from PIL import Image

    write_report(make_report_inputs(tmp_path), tmp_path)
    screenshot = tmp_path / "screenshot.png"
    _chromium(f"--screenshot={screenshot}", (tmp_path / "report.html").as_uri())
    with Image.open(screenshot) as picture:
        grey = picture.convert("L")
        assert picture.size == (1280, 2400)
        # text and figures: a good share of the page is not background
        histogram = grey.histogram()
        assert sum(histogram[:200]) > 0.01 * picture.width * picture.height
