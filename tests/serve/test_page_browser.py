"""The page in a real browser: Debian's Chromium, driven by Playwright, against a real server on 127.0.0.1.

It uploads the built-in quokka photo as a user would and checks that the overlay, the legend and the
per-class areas appear; the screenshot it takes is kept in the test's folder to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelwise.serve import Settings, create_app
from pixelwise.serve.model import with_options
from pixelwise.serve.server import running_server

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the dev extra has it)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install -y chromium); the page is not rendered"
)

# what the report's browser test uses: no sandbox (root in containers), nothing fetched from the network
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # never `playwright install`: Playwright drives the system's Chromium through its path
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page_at(browser: Any, predictor: Any, tmp_path: Path) -> Iterator[tuple[Any, str, list[str]]]:
    """A fresh page of a server started for this test, and the list of problems the browser reported."""
    # tiles of 256: a few tiles for the photo rather than hundreds, the page is what is tested here
    served = with_options(predictor, tile_size=256)
    with running_server(create_app(served, Settings(model_name="tiny.pt"))) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        # every request stays on this server (or in the page's own blob:/data: URLs)
        page.on(
            "request",
            lambda request: None if request.url.startswith((url, "blob:", "data:")) else problems.append(request.url),
        )
        page.set_default_timeout(60_000)
        page.goto(url)
        yield page, url, problems
        context.close()


def test_the_page_segments_the_quokka_photo(page_at: Any, photo: bytes, tmp_path: Path) -> None:
    page, _, problems = page_at
    legend = page.locator("#legend li")
    legend.first.wait_for()
    assert legend.all_inner_texts() == ["background", "quokka"]
    assert page.locator("#legend .swatch").nth(1).evaluate("box => getComputedStyle(box).backgroundColor") == (
        "rgb(255, 128, 0)"
    )
    assert "tiny.pt" in page.locator("#model-line").inner_text()

    page.set_input_files("#file", files=[{"name": "quokka.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.locator("#result").wait_for(state="visible")
    page.wait_for_function(
        "document.getElementById('overlay').complete && document.getElementById('original').complete"
    )
    sizes = page.evaluate(
        "['original', 'overlay'].map(id => [document.getElementById(id).naturalWidth, document.getElementById(id).naturalHeight])"
    )
    assert sizes == [[960, 643], [960, 643]]
    rows = page.locator("#areas tbody tr")
    assert rows.count() == 2
    cells = [row.locator("td").all_inner_texts() for row in rows.all()]
    assert [cell[0] for cell in cells] == ["background", "quokka"]
    assert sum(int(cell[1].replace(",", "")) for cell in cells) == 960 * 643
    assert sum(float(cell[2].rstrip(" %")) for cell in cells) == pytest.approx(100, abs=0.02)
    assert page.locator("#timing").inner_text().startswith("Took ")
    mask = page.locator("#download-mask")
    assert mask.get_attribute("href").startswith("blob:") and mask.get_attribute("download") == "quokka_mask.png"
    assert page.locator("#busy").is_hidden() and page.locator("#error").is_hidden()

    screenshot = tmp_path / "serve.png"
    page.screenshot(path=str(screenshot), full_page=True)
    from PIL import Image

    with Image.open(screenshot) as picture:
        assert picture.width == 1280
        colours = picture.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 1000  # the photo and its overlay are on it
    assert problems == []


def test_the_page_shows_the_servers_refusal(page_at: Any) -> None:
    page, _, problems = page_at
    page.locator("#legend li").first.wait_for()
    page.set_input_files("#file", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text() == (
        "notes.png: cannot read the image (not a PNG, JPEG, BMP or TIFF image); the file is damaged or not an image"
    )
    assert page.locator("#result").is_hidden()
    # the browser logs the failed request itself; nothing else may go wrong
    assert [problem for problem in problems if "415" not in problem] == []


def test_a_dropped_image_shows_progress_then_the_result(page_at: Any, rgb_png: bytes) -> None:
    page, _, problems = page_at
    page.locator("#legend li").first.wait_for()
    # record what the progress line says while the request runs
    page.evaluate(
        """() => {
      window.seen = [];
      const note = () => { if (!document.getElementById('busy').hidden) window.seen.push(document.getElementById('status').textContent); };
      const observer = new MutationObserver(note);
      observer.observe(document.getElementById('busy'), {attributes: true, childList: true, subtree: true, characterData: true});
    }"""
    )
    # a drop as the browser makes it: a DataTransfer holding the file, dropped on the target
    page.evaluate(
        """(bytes) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'}));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""",
        list(rgb_png),
    )
    page.locator("#result").wait_for(state="visible")
    assert page.locator("#original-caption").inner_text() == "Original — dropped.png, 70 × 50"
    seen = page.evaluate("window.seen")
    assert any(text.startswith(("Uploading dropped.png", "Segmenting…")) for text in seen), seen
    assert page.locator("#busy").is_hidden()
    assert problems == []
