"""The web dashboard in a real browser: Debian's Chromium driven by Playwright (never a downloaded
browser). Signs in, creates a key, chats in the playground and finds the generation and its cost,
visits every page, and saves a screenshot of each in tests/artifacts/dashboard/ (ignored by git).

Skipped where /usr/bin/chromium is absent, except in CI (scripts/test installs it there)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import standard_config
from tests.gateway import Gateway

CHROMIUM = os.environ.get("OMNIROUTER_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboard"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            f"{CHROMIUM} is missing: CI must run the dashboard's browser tests (scripts/test installs it)"
        )
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    g = Gateway(tmp_path_factory.mktemp("dash"), standard_config(fake_a.base_url, fake_b.base_url), log_prompts=True)
    g.start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def chromium(gw: Gateway) -> Iterator[Browser]:
    """After the gateway and before its end: Playwright's sync API runs an event loop on this thread,
    where the gateway's PostgreSQL database is created and dropped (asyncio.run)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def offline_page(browser: Browser, gw: Gateway) -> tuple[Page, list[str]]:
    """A fresh browser context whose every request off the gateway is refused (and listed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(gw.url + "/"):
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page, elsewhere


def sign_in(page: Page, gw: Gateway, key: str) -> None:
    page.goto(gw.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#key", key)
    page.click("button[type=submit]")
    expect(page.locator("header.top")).to_be_visible()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_manager_creates_a_key_chats_and_finds_the_generation_and_its_cost(chromium: Browser, gw: Gateway) -> None:
    page, elsewhere = offline_page(chromium, gw)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(gw.url + "/login")
    shot(page, "login")
    sign_in(page, gw, gw.management_key)

    page.click("nav >> text=Keys")
    page.locator("details.panel").evaluate("d => { d.open = true; }")
    page.fill("#create-key input[name=name]", "browser key")
    page.fill("#create-key input[name=limit]", "3")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("sk-or-v1-")
    shot(page, "keys")

    page.click("nav >> text=Playground")
    page.fill("#pg-key", secret)
    page.select_option("#pg-model", "test/alpha")
    page.fill("#pg-message", "Hello from Chromium")
    page.click("#pg-send")
    expect(page.locator(".message.assistant pre")).to_have_text("Echo: Hello from Chromium")
    cost = page.locator("#pg-cost")
    expect(cost).to_have_text(re.compile(r"^\$0\.\d+$"))
    spent = cost.inner_text()
    shot(page, "playground")

    page.click("#pg-generation")
    expect(page.locator("#total-cost")).to_have_text(spent)
    expect(page.locator("text=Hello from Chromium").first).to_be_visible()
    expect(page.locator("td", has_text="test/alpha@fake-a")).to_be_visible()
    shot(page, "generation")

    gw.flush()  # the log and the charts read the database
    page.click("nav >> text=Generations")
    expect(page.locator("table.log td.cost").first).to_have_text(spent)
    shot(page, "generations")
    for name, heading in (
        ("Usage", "Usage and spend"),
        ("Providers", "Providers and endpoints"),
        ("Models", "Model catalog"),
        ("Credits", "Credits"),
    ):
        page.click(f"nav >> text={name}")
        expect(page.locator("h1")).to_have_text(heading)
        shot(page, name.lower())
    expect(page.locator("h1")).to_have_text("Credits")
    page.goto(gw.url + "/?by=key")
    expect(page.locator("#total-spend")).to_have_text(spent)
    expect(page.locator("svg.chart rect").first).to_be_visible()
    shot(page, "usage-by-key")
    assert elsewhere == [] and errors == []
    page.context.close()


def test_an_inference_key_chats_with_its_own_key_and_sees_only_its_own_log(chromium: Browser, gw: Gateway) -> None:
    other = gw.create_key(name="someone else")["key"]
    with gw.client(other) as c:
        assert c.post("/chat/completions", json={"model": "test/alpha", "messages": [{"role": "user", "content": "x"}]})
    own = gw.create_key(name="visitor")["key"]
    page, elsewhere = offline_page(chromium, gw)
    sign_in(page, gw, own)
    expect(page.locator(".who")).to_contain_text("visitor · inference key")
    page.click("nav >> text=Playground")
    # Signed in with an API key, the playground already holds it (this tab's sessionStorage only).
    expect(page.locator("#pg-key")).to_have_value(own)
    page.fill("#pg-message", "mine")
    page.click("#pg-send")
    expect(page.locator("#pg-cost")).to_have_text(re.compile(r"^\$"))
    gw.flush()
    page.click("nav >> text=Generations")
    expect(page.locator("table.log tbody tr")).to_have_count(1)
    shot(page, "generations-inference-key")
    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert page.evaluate("sessionStorage.length") == 0
    assert elsewhere == []
    page.context.close()
