"""The real thing: `semsearch ui` served on localhost, driven by headless Chromium.

Chromium and its chromedriver are Debian's (`apt-get install chromium
chromium-driver`; scripts/check.sh installs them where it can). The test
ingests the sample corpus with the real model through the CLI, starts the UI
on a free port, types a query of samples/QUERIES.md and waits for its
expected document; the screenshot is kept in the test's folder, and copied
to SEMSEARCH_SCREENSHOT_DIR when that is set (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
QUERY = "I deleted a spreadsheet from the shared drive last week; can I get it back?"
EXPECTED_TITLE = "Backup and restore policy"

pytestmark = pytest.mark.model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """This process's environment without any semsearch setting of the developer."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SEMSEARCH_", "QDRANT_", "DATABASE_URL"))
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI's address, serving a data dir with the sample corpus in it."""
    needed = "apt-get install chromium chromium-driver"
    assert Path(CHROMIUM).exists(), (
        f"the browser test needs Debian's chromium: {needed}"
    )
    assert Path(CHROMEDRIVER).exists(), f"and its chromedriver: {needed}"
    data_dir = tmp_path_factory.mktemp("ui-data")
    env = _clean_env()
    env |= {"SEMSEARCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "search.cli.main",
            "ingest",
            str(REPO / "samples" / "corpus"),
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with _serving(env, data_dir) as address:
        yield address


@contextmanager
def _serving(env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """`semsearch ui` on a free port, until the block ends (then SIGTERM)."""
    port = _free_port()
    log = (data_dir / "ui.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "search.cli.main", "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (data_dir / "ui.log").read_text()
            try:
                with urllib.request.urlopen(
                    f"{address}/_stcore/health", timeout=2
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the UI did not come up in 90 s"
            time.sleep(0.5)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        finally:
            log.close()
        # SIGTERM to `semsearch ui` stops the server itself, not only a parent.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{address}/_stcore/health", timeout=2)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1100",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for_text(driver: object, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: text in d.find_element("tag name", "body").text
    )


def _screenshot(driver: object, path: Path) -> None:
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.stat().st_size > 10_000
    if target := os.environ.get("SEMSEARCH_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_typing_a_query_finds_the_expected_document(
    served: str, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(served)  # type: ignore[attr-defined]
    box = WebDriverWait(driver, 60).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, 'input[aria-label="Search"]'))
    )
    box.send_keys(QUERY, Keys.ENTER)
    _wait_for_text(driver, EXPECTED_TITLE)
    _wait_for_text(driver, "documents in")

    body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "Traceback" not in body
    first_result = body.index("1. ")
    assert body.index(EXPECTED_TITLE) - first_result < 40, "expected it ranked first"
    marks = driver.find_elements(By.CSS_SELECTOR, ".semsearch-passage mark")  # type: ignore[attr-defined]
    assert marks, "query terms are marked in the passages"
    assert "q=" in driver.current_url  # type: ignore[attr-defined]
    _screenshot(driver, tmp_path / "search-page.png")


def test_a_shared_link_opens_the_same_search(served: str, browser: object) -> None:
    driver = browser
    driver.get(f"{served}/?q={quote(QUERY)}&type=docx")  # type: ignore[attr-defined]
    _wait_for_text(driver, EXPECTED_TITLE)
    body = driver.find_element("tag name", "body").text  # type: ignore[attr-defined]
    assert "1 documents in" in body or "documents in" in body
    assert "Traceback" not in body


SECRET_TITLE = "Salary bands"


@pytest.fixture(scope="module")
def served_behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI in proxy mode (SEMSEARCH_AUTH=proxy), over a public and an hr file."""
    root = tmp_path_factory.mktemp("proxy")
    docs = root / "docs"
    docs.mkdir()
    (docs / "calendar.md").write_text(
        "---\ntitle: Holiday calendar\n---\nThe office closes in December; "
        "the salary is paid before the holidays.\n",
        encoding="utf-8",
    )
    (docs / "salaries.md").write_text(
        f"---\ntitle: {SECRET_TITLE}\ngroups: [hr]\n---\n"
        "Salary bands for every grade and the yearly salary review.\n",
        encoding="utf-8",
    )
    env = _clean_env()
    env |= {
        "SEMSEARCH_DATA_DIR": str(root / "data"),
        "HF_HUB_OFFLINE": "1",
        "SEMSEARCH_AUTH": "proxy",
    }
    subprocess.run(
        [sys.executable, "-m", "search.cli.main", "ingest", str(docs)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with _serving(env, root) as address:
        yield address


def _as(driver: object, headers: dict[str, str]) -> None:
    """What a reverse proxy would add to every request of this browser."""
    driver.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Network.setExtraHTTPHeaders", {"headers": headers}
    )


def test_behind_a_proxy_each_user_sees_their_groups_only(
    served_behind_proxy: str, browser: object
) -> None:
    driver = browser
    driver.get(served_behind_proxy)  # type: ignore[attr-defined]
    _wait_for_text(driver, "Not signed in")

    for user, groups, sees_secret in (("bob", "staff", False), ("ann", "hr", True)):
        _as(driver, {"X-Forwarded-User": user, "X-Forwarded-Groups": groups})
        driver.get(f"{served_behind_proxy}/?q=salary")  # type: ignore[attr-defined]
        _wait_for_text(driver, "Holiday calendar")
        _wait_for_text(driver, f"Signed in as {user}")
        body = driver.find_element("tag name", "body").text  # type: ignore[attr-defined]
        assert (SECRET_TITLE in body) is sees_secret, user
