"""The web page in a real browser: Playwright driving Debian's Chromium, headless, against the real server.

Runs wherever Chromium is installed (/usr/bin/chromium, or chromium on the PATH). Without it the tests are
skipped on a developer machine, but fail in CI (CI set, as CI services do): scripts/test.sh installs
Debian's chromium there, so a missing browser is a broken set-up, never a reason to pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from support.keyed_server import KEY
from support.paths import CAT_JPEG, REPO, STATIC
from support.server_process import ServerProcess

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
PHOTO = CAT_JPEG
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def find_chromium() -> Path | None:
    if DEBIAN_CHROMIUM.exists():
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_chromium(chromium: Path | None, environ: Mapping[str, str]) -> Path:
    """The browser to drive; without one, fail in CI and skip elsewhere."""
    if chromium is not None:
        return chromium
    if in_ci(environ):
        pytest.fail("Chromium is missing in CI; scripts/test.sh should have installed Debian's chromium")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.mark.parametrize(
    ("environ", "outcome"),
    [
        ({"CI": "true"}, pytest.fail.Exception),
        ({"CI": "1"}, pytest.fail.Exception),
        ({}, pytest.skip.Exception),
        ({"CI": "false"}, pytest.skip.Exception),
    ],
)
def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(environ: dict[str, str], outcome: type[BaseException]) -> None:
    with pytest.raises(outcome):
        require_chromium(None, environ)
    assert require_chromium(DEBIAN_CHROMIUM, environ) == DEBIAN_CHROMIUM  # never skipped where it exists


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = require_chromium(find_chromium(), os.environ)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@contextlib.contextmanager
def page_of(browser: object, server: ServerProcess) -> Iterator[object]:
    """A fresh page that must reach nothing but ``server``."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.base_url) or request.url.startswith(("blob:", "data:")) else outside.append(request.url))
    yield page
    context.close()
    assert not outside, f"the page reached outside the server: {outside}"


@pytest.fixture
def page(browser: object, server: ServerProcess) -> Iterator[object]:
    with page_of(browser, server) as opened:
        yield opened


@pytest.fixture
def several_models_page(browser: object, several_models_server: ServerProcess) -> Iterator[object]:
    with page_of(browser, several_models_server) as opened:
        yield opened


def test_choose_a_photo_and_see_the_top5_as_bars(page: object, server: ServerProcess) -> None:
    expected = server.get("/inference/cat.jpg").json()
    page.goto(server.url("/"))  # type: ignore[attr-defined]
    assert '"ui"' in page.content()  # type: ignore[attr-defined]
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    labels = page.locator("#labels li")  # type: ignore[attr-defined]
    labels.nth(4).wait_for(timeout=60_000)
    assert labels.count() == 5
    names = page.locator(".label-name").all_inner_texts()  # type: ignore[attr-defined]
    assert names == [entry["label"] for entry in expected["top_k"]]
    percents = page.locator(".label-percent").all_inner_texts()  # type: ignore[attr-defined]
    assert percents == [f"{entry['probability'] * 100:.1f}%" for entry in expected["top_k"]]
    widths = [page.locator(".bar span").nth(i).evaluate("e => e.getBoundingClientRect().width") for i in range(5)]  # type: ignore[attr-defined]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert page.locator("#preview").evaluate("img => img.naturalWidth") > 0  # type: ignore[attr-defined]
    assert expected["class"] in page.locator("#status").inner_text()  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-top5.png"), full_page=True)  # type: ignore[attr-defined]


def test_one_model_needs_no_choice(page: object, server: ServerProcess) -> None:
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url) if request.method == "POST" else None)  # type: ignore[attr-defined]
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    page.locator("#model-hint", has_text="densenet121 (densenet121, 1000 classes)").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert page.locator("#model-choice").is_hidden()  # type: ignore[attr-defined]
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert uploads == [server.url("/inference?top_k=5")]  # the plain URL: the default model
    assert page.locator("#chosen-labels").is_hidden()  # type: ignore[attr-defined]


def test_choose_the_multi_label_model_and_see_its_labels(several_models_page: object, several_models_server: ServerProcess) -> None:
    page, server = several_models_page, several_models_server
    expected = server.get("/inference/cat.jpg", params={"model": "xray"}).json()
    uploads: list[str] = []
    page.on("request", lambda request: uploads.append(request.url) if request.method == "POST" else None)  # type: ignore[attr-defined]
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    choice = page.locator("#model-select")  # type: ignore[attr-defined]
    choice.wait_for(timeout=60_000)
    options = page.locator("#model-select option")  # type: ignore[attr-defined]
    assert [options.nth(i).get_attribute("value") for i in range(options.count())] == ["densenet121", "xray"]
    assert choice.input_value() == "densenet121"  # the default first
    choice.select_option("xray")
    assert "xray (resnet18, 14 classes, multi-label)" in page.locator("#model-hint").inner_text()  # type: ignore[attr-defined]
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert uploads == [server.url("/inference?top_k=5&model=xray")]
    assert page.locator(".label-name").all_inner_texts() == [e["label"] for e in expected["top_k"]]  # type: ignore[attr-defined]
    chosen = page.locator("#chosen-labels").inner_text()  # type: ignore[attr-defined]
    assert chosen.startswith("Labels at or above 50.0%: ")
    assert chosen.count("%") - 1 == len(expected["labels"]) > 0
    assert all(entry["label"] in chosen for entry in expected["labels"])
    assert "(xray)" in page.locator("#status").inner_text()  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-several-models.png"), full_page=True)  # type: ignore[attr-defined]
    # Choosing the default model classifies the same image again, with it: no multi-label line.
    choice.select_option("densenet121")
    page.locator("#status", has_text="(densenet121)").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert uploads[-1] == server.url("/inference?top_k=5&model=densenet121")
    assert page.locator("#chosen-labels").is_hidden()  # type: ignore[attr-defined]


def test_drop_a_photo_onto_the_page(page: object, server: ServerProcess) -> None:
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    data = list(PHOTO.read_bytes())
    page.evaluate(  # type: ignore[attr-defined]
        """bytes => {
            const file = new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        data,
    )
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert "dropped.jpg" in page.locator("#status").inner_text()  # type: ignore[attr-defined]


def test_a_broken_file_shows_the_servers_message(page: object, server: ServerProcess, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    page.set_input_files("#file-input", str(broken))  # type: ignore[attr-defined]
    status = page.locator("#status.error")  # type: ignore[attr-defined]
    status.wait_for(timeout=60_000)
    assert "not an image" in status.inner_text()
    assert page.locator("#labels li").count() == 0  # type: ignore[attr-defined]


def test_docs_page_renders_offline(page: object, server: ServerProcess) -> None:
    page.goto(server.url("/docs"))  # type: ignore[attr-defined]
    page.locator(".swagger-ui .title").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert "densenet-server" in page.locator(".swagger-ui .title").inner_text()  # type: ignore[attr-defined]
    assert page.locator(".opblock").count() >= 10  # type: ignore[attr-defined]


def test_the_page_assets_load_nothing_from_the_internet() -> None:
    for asset in (STATIC / "ui").iterdir():
        text = asset.read_text()
        assert "http://" not in text and "https://" not in text, asset


@pytest.fixture
def keyed_page(browser: object, keyed_server: ServerProcess) -> Iterator[object]:
    with page_of(browser, keyed_server) as opened:
        yield opened


def uploads_of(page: object) -> list[dict[str, str]]:
    """The headers of every upload the page sends, as they go out (filled in as it runs)."""
    sent: list[dict[str, str]] = []
    page.on("request", lambda request: sent.append(request.headers) if request.method == "POST" else None)  # type: ignore[attr-defined]
    return sent


def test_the_page_asks_for_a_key_keeps_it_for_the_tab_and_sends_it(keyed_page: object, keyed_server: ServerProcess) -> None:
    page, server = keyed_page, keyed_server
    uploads = uploads_of(page)
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    key_form = page.locator("#key-form")  # type: ignore[attr-defined]
    key_form.wait_for(timeout=60_000)  # GET / said "auth": "bearer"
    assert "needs an API key" in page.locator("#key-hint").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#docs-link").is_hidden()  # type: ignore[attr-defined]
    # A wrong key: the upload is refused, the page forgets the key and asks again.
    page.fill("#api-key", "not-the-servers-key-123")  # type: ignore[attr-defined]
    page.click("#key-form button")  # type: ignore[attr-defined]
    assert key_form.is_hidden()
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    page.locator("#key-hint", has_text="the API key was not accepted").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert key_form.is_visible() and "Enter an API key" in page.locator("#status.error").inner_text()  # type: ignore[attr-defined]
    assert page.evaluate("sessionStorage.getItem('densenet-api-key')") is None  # type: ignore[attr-defined]
    # The right key: the waiting image is classified at once, with the key.
    page.fill("#api-key", KEY)  # type: ignore[attr-defined]
    page.click("#key-form button")  # type: ignore[attr-defined]
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert [headers.get("authorization") for headers in uploads] == ["Bearer not-the-servers-key-123", f"Bearer {KEY}"]
    assert page.evaluate("sessionStorage.getItem('densenet-api-key')") == KEY  # type: ignore[attr-defined]
    # Kept for this tab: after a reload it is not asked for again, and still sent.
    page.reload()  # type: ignore[attr-defined]
    page.locator("#model-hint", has_text="densenet121").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert key_form.is_hidden()
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert uploads[-1].get("authorization") == f"Bearer {KEY}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-api-key.png"), full_page=True)  # type: ignore[attr-defined]


def test_a_server_without_keys_is_asked_for_none(page: object, server: ServerProcess) -> None:
    uploads = uploads_of(page)
    page.goto(server.url("/ui"))  # type: ignore[attr-defined]
    page.locator("#model-hint", has_text="densenet121").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert page.locator("#key-form").is_hidden() and page.locator("#docs-link").is_visible()  # type: ignore[attr-defined]
    page.set_input_files("#file-input", str(PHOTO))  # type: ignore[attr-defined]
    page.locator("#labels li").nth(4).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert "authorization" not in uploads[0]
