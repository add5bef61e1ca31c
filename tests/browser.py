"""A real browser for the console's tests: Debian's chromium driven by Playwright (pointed at
that executable; no browser is downloaded), and the console as its own process on loopback.

Chromium runs in the root namespace and talks to 127.0.0.1 only; its background
networking is off, so it asks nothing of the machine's network."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from central.lab.webapp import running

ROOT = Path(__file__).parents[1]
CHROMIUM = Path(os.environ.get("NETVAGT_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-quic", "--disable-gpu", "--disable-dev-shm-usage"]

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"no {CHROMIUM}: install Debian's chromium (./install.sh --dev does)")


def console(db_path: Path, *policies: Path) -> AbstractContextManager[str]:
    """``netvagt-central web`` on a free loopback port until the block ends; its address."""
    return running(db_path, policies)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian chromium, closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A browser page whose script dialogs and console errors are recorded: a device's
    text that ran as script would open a dialog; a blocked script or style (the CSP) shows
    as a console error."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(base_url=base, accept_downloads=True)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def login(self, username: str, password: str) -> None:
        self.page.goto("/login")
        self.page.get_by_label(re.compile("Brugernavn|User name")).fill(username)
        self.page.get_by_label(re.compile("Adgangskode|Password")).fill(password)
        self.page.get_by_role("button", name=re.compile("Log ind|Log in")).click()
        self.page.wait_for_url(re.compile(r"/$"))

    def login_by_keyboard(self, username: str, password: str) -> None:
        """The login form with the keyboard alone: Tab from the page's start."""
        self.page.goto("/login")
        for _ in range(30):  # bounded: the form is a few stops in
            self.page.keyboard.press("Tab")
            if self.page.evaluate("document.activeElement.id") == "username":
                break
        self.page.keyboard.type(username)
        self.page.keyboard.press("Tab")
        self.page.keyboard.type(password)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url(re.compile(r"/$"))

    def unlabelled(self) -> list[str]:
        """The page's form fields that have no label (a screen reader names them not)."""
        return list(self.page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name || e.id)"))

    def close(self) -> None:
        self.context.close()
