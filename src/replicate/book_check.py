"""Open every page of the built HTML book in headless Chromium (Selenium + Debian's chromium/chromedriver)
and report pages that fail to load, images that do not render and internal links that lead nowhere."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
SKIP_PAGES = {"search.html", "genindex.html"}


class BrowserUnavailable(RuntimeError):
    pass


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise BrowserUnavailable(
            "Debian's chromium and chromium-driver are needed: "
            "apt-get install -y chromium chromium-driver (the Makefile's test target does it)"
        )
    opts = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=opts)


def _wait_loaded(driver, timeout: float = 60.0) -> str:
    """Wait until the page (and its images) finished loading; a loaded machine can be slow."""
    deadline = time.monotonic() + timeout
    state = driver.execute_script("return document.readyState")
    while state != "complete" and time.monotonic() < deadline:
        time.sleep(0.1)
        state = driver.execute_script("return document.readyState")
    return state


def pages(html_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in html_dir.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(html_dir).parts) and p.name not in SKIP_PAGES
    )


def _ids(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


def check_book(html_dir: str | Path) -> list[str]:
    """Problems found (empty list = every page loads, every image renders, every internal link resolves)."""
    html_dir = Path(html_dir).resolve()
    problems: list[str] = []
    all_pages = pages(html_dir)
    if not all_pages:
        return [f"no HTML pages under {html_dir}"]
    ids_cache: dict = {}
    driver = _driver()
    try:
        for page in all_pages:
            rel = page.relative_to(html_dir)
            driver.get(page.as_uri())
            state = _wait_loaded(driver)
            title = driver.title
            if state != "complete" or not driver.find_elements("tag name", "main"):
                problems.append(f"{rel}: page did not load (readyState={state}, title={title!r})")
                continue
            images = driver.execute_script(
                "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
            for src, ok in images:
                if not ok:
                    problems.append(f"{rel}: image does not render: {src}")
            links = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            for href in links:
                url = urlparse(href)
                if url.scheme != "file":
                    continue
                target = Path(unquote(url.path))
                if not target.exists():
                    shown = target.relative_to(html_dir) if target.is_relative_to(html_dir) else target
                    problems.append(f"{rel}: broken link to {shown}")
                elif url.fragment and target.suffix == ".html" and url.fragment not in _ids(target, ids_cache):
                    problems.append(f"{rel}: link to missing anchor #{url.fragment} in {target.name}")
    finally:
        driver.quit()
    return problems
