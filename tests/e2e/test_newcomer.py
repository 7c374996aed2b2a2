"""The README's newcomer path in a real browser: `python app.py run`, then only clicks and typing in the console.

Delegate runs as a real subprocess, started the way `./run` starts it (`./run` only adds the venv setup), on free
ports with its data folder in tmp_path; it is stopped with SIGINT (Ctrl-C) and started again on the same data folder.
Every step asserts what a person would read on the page and saves a screenshot under `test-artifacts/newcomer/`
(or `DELEGATE_ARTIFACTS`); with `DELEGATE_SCREENSHOTS=docs/screenshots` the three the README shows are copied there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import free_port

REPO = Path(__file__).resolve().parents[2]
ALICE = "U0ALICE001"
BOB = "U0BOB00002"
GENERAL = "C0GENERAL1"
RANDOM = "C0RANDOM02"
WAIT_MS = 20_000  # how long a step waits for what a person would see; generous for a loaded CI machine
README_SCREENSHOTS = ("consent", "reply-as-me", "eleven-hours-later")  # the three the README shows
READY = re.compile(r"Open (http://127\.0\.0\.1:\d+/) to try it")


def artifacts_dir() -> Path:
    """Where the screenshots go: DELEGATE_ARTIFACTS, else test-artifacts/newcomer in the repo (gitignored)."""
    folder = Path(os.environ.get("DELEGATE_ARTIFACTS") or REPO / "test-artifacts" / "newcomer")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


class DelegateProcess:
    """`python app.py run` in sandbox mode, as a subprocess whose output is collected line by line."""

    def __init__(self, data_dir: Path, *, port: int, sandbox_port: int):
        self.data_dir = data_dir
        self.port = port
        self.sandbox_port = sandbox_port
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.lines: list[str] = []
        self.console_url = ""

    def environment(self) -> dict[str, str]:
        """This machine's environment without any Slack app or database setting: what a newcomer has."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SLACK_", "DELEGATE_")) and name not in ("DATABASE_URL", "TOKEN_ENCRYPTION_KEYS", "PORT")
        }
        env.update(DELEGATE_DATA_DIR=str(self.data_dir), PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout: float = 60.0) -> str:
        """Start it and wait for the line that names the console URL; returns that URL."""
        self.lines = []
        command = [sys.executable, "app.py", "run", "--port", str(self.port), "--sandbox-port", str(self.sandbox_port)]
        self.process = subprocess.Popen(
            command, cwd=REPO, env=self.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        found = threading.Event()
        process = self.process

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.lines.append(line.rstrip("\n"))
                match = READY.search(line)
                if match:
                    self.console_url = match.group(1)
                    found.set()
            found.set()

        self.reader = threading.Thread(target=read, name="delegate-output", daemon=True)
        self.reader.start()
        found.wait(timeout)
        if not self.console_url:
            self.stop()
            raise AssertionError("`python app.py run` never printed the console URL; its output:\n" + self.output())
        return self.console_url

    def stop(self) -> int | None:
        """Ctrl-C, as a person stops it; returns its exit code (killed only if it ignores SIGINT)."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("Delegate did not stop on SIGINT; its output:\n" + self.output()) from None
        finally:
            if self.reader is not None:
                self.reader.join(timeout=10)
            if process.stdout is not None:
                process.stdout.close()

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


@pytest.fixture
def delegate_process(tmp_path: Path) -> Iterator[DelegateProcess]:
    running = DelegateProcess(tmp_path / "data", port=free_port(), sandbox_port=free_port())
    yield running
    running.stop()


class Walk:
    """The browser session of the walk: numbered steps, each ending with a screenshot of what the person sees."""

    def __init__(self, page: Any, folder: Path):
        self.page = page  # the console's tab
        self.shown = page  # the tab the person is looking at
        self.folder = folder
        self.number = 0
        self.shots: dict[str, Path] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One step; a failure names the step and leaves a screenshot of the page as it was."""
        self.number += 1
        label = f"{self.number:02d}-{name}"
        try:
            yield
        except Exception as error:
            if not self.shown.is_closed():
                self.shown.screenshot(path=str(self.folder / f"{label}-FAILED.png"))
            first_lines = "\n".join(str(error).splitlines()[:3])
            raise AssertionError(f"newcomer step {label} failed: {first_lines}") from error
        path = self.folder / f"{label}.png"
        self.shown.screenshot(path=str(path))
        self.shots[name] = path
        self.shown.evaluate("window.scrollTo(0, 0)")  # the next step starts at the top of the page, as a person looks

    def new_tab(self, click: Any) -> Any:
        """Click something that opens a new tab (a link or a URL button) and look at that tab."""
        with self.page.context.expect_page() as opened:
            click()
        self.shown = opened.value
        self.shown.wait_for_load_state()
        return self.shown

    def back_to_console(self) -> None:
        """Close the tab the person was looking at and go back to the console's."""
        if self.shown is not self.page:
            self.shown.close()
        self.shown = self.page
        self.page.bring_to_front()

    # -- what a person does in the console ------------------------------------------------------------------------

    def act_as(self, user_id: str) -> None:
        self.page.select_option("#user-select", user_id)

    def channel(self, channel_id: str) -> None:
        self.page.select_option("#channel-select", channel_id)

    def ephemerals(self) -> Any:
        return self.page.locator("#messages li.ephemeral")

    def messages(self) -> Any:
        return self.page.locator("#messages li.message")

    def type(self, text: str) -> None:
        """Type a message or a slash command in the composer and press Enter."""
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")

    def command(self, text: str, *expected: str) -> Any:
        """Run a slash command and wait for Delegate's new ephemeral reply to say each of `expected`; returns it."""
        before = self.ephemerals().count()
        self.type(text)
        reply = self.ephemerals().nth(before)
        for words in expected:
            expect(reply).to_contain_text(words, timeout=WAIT_MS)
        return reply

    def message_from(self, user_name: str, text: str) -> Any:
        """The channel message `text` posted as the person named."""
        found = self.messages().filter(has_text=text).filter(has=self.page.locator(".author", has_text=user_name))
        expect(found.first).to_be_visible(timeout=WAIT_MS)
        return found.first

    def modal(self, title: str) -> Any:
        modal = self.page.locator("#modal")
        expect(modal).to_be_visible(timeout=WAIT_MS)
        expect(self.page.locator("#modal-title")).to_have_text(title, timeout=WAIT_MS)
        return modal

    def open_home(self, *expected: str) -> None:
        self.page.click("#open-home")
        for words in expected:
            expect(self.page.locator("#home")).to_contain_text(words, timeout=WAIT_MS)

    def close_modal(self) -> None:
        self.page.click("#modal-cancel")  # the result form's Close
        expect(self.page.locator("#modal")).to_be_hidden(timeout=WAIT_MS)


def consent_page(tab: Any, user_id: str, person: str) -> None:
    """Slack's consent page for Delegate, with the person chosen in the console preselected."""
    expect(tab.locator("#allow")).to_be_visible(timeout=WAIT_MS)
    expect(tab.locator("#app-name")).to_contain_text("Delegate")
    expect(tab.locator(f"input[value='{user_id}']")).to_be_checked()
    expect(tab.locator("#people")).to_contain_text(person)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def token_row(page: Any, user_id: str) -> Any:
    """The console's token table row of a person's user token."""
    return page.locator(f"#tokens tbody tr[data-user='{user_id}'][data-kind='user']").first


@pytest.mark.browser
@pytest.mark.slow
def test_the_newcomers_path(chromium: Any, delegate_process: DelegateProcess) -> None:
    """Install, every command, both shortcuts, App Home, a second person, +12 hours, a restart and disconnect."""
    folder = artifacts_dir()
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # a confirm() the console may show is what the person accepts
    walk = Walk(page, folder)
    try:
        _walk(walk, delegate_process)
    finally:
        context.close()
    copy_to = os.environ.get("DELEGATE_SCREENSHOTS")
    if copy_to:
        target = Path(copy_to) if Path(copy_to).is_absolute() else REPO / copy_to
        target.mkdir(parents=True, exist_ok=True)
        for name in README_SCREENSHOTS:
            shutil.copyfile(walk.shots[name], target / f"{name}.png")


def _walk(walk: Walk, delegate: DelegateProcess) -> None:
    page = walk.page

    with walk.step("console"):
        url = delegate.start()
        page.goto(url)
        expect(page.locator("#app-name")).to_contain_text("Delegate")
        walk.act_as(ALICE)
        expect(page.locator("#links")).to_contain_text("Add Delegate to the workspace")

    with walk.step("consent"):
        tab = walk.new_tab(page.get_by_role("link", name="Add Delegate to the workspace").click)
        consent_page(tab, ALICE, "Alice")
    with walk.step("installed"):
        tab.click("#allow")
        expect(tab.locator("h1")).to_have_text("You're connected", timeout=WAIT_MS)
        expect(tab.locator("main")).to_contain_text("installed in")
    with walk.step("open-slack"):
        tab.get_by_role("link", name="Open Slack").click()  # no Slack client here: it leads back to the console
        expect(tab.locator("#composer-input")).to_be_visible(timeout=WAIT_MS)
        assert tab.url.startswith(url), tab.url

    with walk.step("help"):
        walk.back_to_console()
        walk.command("/delegate help", "Delegate acts as you", "/post-as-me", "Set my status", "Reply as me")

    with walk.step("connection"):
        walk.command("/delegate connection", "Your Delegate connection", "Connected", "Token expires")

    with walk.step("post-here"):
        walk.type("/post-as-me hello")
        walk.message_from("Alice", "hello")

    with walk.step("post-in-random"):
        walk.command("/post-as-me #random hi", "Posted as you in #random")
        expect(walk.messages().filter(has_text="#random hi")).to_have_count(0)  # never "#random hi" in #general
        walk.channel(RANDOM)
        walk.message_from("Alice", "hi")
        walk.channel(GENERAL)

    people = page.locator(f"#people tr[data-user='{ALICE}']")
    with walk.step("status"):
        walk.command("/set-my-status :coffee: Break for 2h", "Your status is now", "Break", "until")
        expect(people).to_contain_text("Break")

    with walk.step("status-clear"):
        walk.command("/set-my-status clear", "Your status is cleared")
        expect(people).not_to_contain_text("Break")

    with walk.step("snooze"):
        walk.command("/snooze-me 45m", "Notifications snoozed for 45 min")

    with walk.step("snooze-off"):
        walk.command("/snooze-me off", "Snooze ended")

    with walk.step("search"):
        reply = walk.command("/search-mine hello", "1 message of yours")
        expect(reply).to_contain_text("hello")
    with walk.step("search-open"):
        tab = walk.new_tab(reply.get_by_role("link", name="open").click)  # the result's permalink: the console, on it
        expect(tab.locator("#messages li.highlight")).to_contain_text("hello", timeout=WAIT_MS)

    with walk.step("set-my-status-shortcut"):
        walk.back_to_console()
        page.select_option("#shortcut-select", label="Set my status")
        page.click("#run-shortcut")
        modal = walk.modal("Set my status")
        modal.locator("#emoji--value").fill(":palm_tree:")
        modal.locator("#text--value").fill("On holiday")
        page.click("#modal-submit")
        expect(page.locator("#modal-blocks")).to_contain_text("Your status is now", timeout=WAIT_MS)
        expect(people).to_contain_text("On holiday")

    with walk.step("reply-as-me"):
        walk.close_modal()
        hello = walk.message_from("Alice", "hello")
        hello.get_by_text("More actions…").click()
        hello.get_by_role("button", name="Reply as me").click()
        modal = walk.modal("Reply as me")
        expect(modal).to_contain_text("hello")
        modal.locator("#message--value").fill("On it, thanks")
        page.click("#modal-submit")
        expect(page.locator("#modal-blocks")).to_contain_text("Replied as you in the thread", timeout=WAIT_MS)

    with walk.step("app-home"):
        walk.close_modal()
        expect(walk.message_from("Alice", "On it, thanks")).to_contain_text("in thread")
        walk.open_home("Your Delegate connection", "Connected", "Disconnect")

    with walk.step("second-person-prompt"):
        walk.act_as(BOB)
        prompt = walk.command("/post-as-me hi from Bob", "connect your Slack account to Delegate first")
        expect(prompt.get_by_role("button", name="Connect Delegate")).to_be_visible()
        expect(walk.messages().filter(has_text="hi from Bob")).to_have_count(0)

    with walk.step("second-person-consent"):
        tab = walk.new_tab(prompt.get_by_role("button", name="Connect Delegate").click)
        consent_page(tab, BOB, "Bob")
    with walk.step("second-person-connected"):
        tab.click("#allow")
        expect(tab.locator("h1")).to_have_text("You're connected", timeout=WAIT_MS)
        expect(tab.locator("main")).to_contain_text("connected to your account")

    with walk.step("second-person-posts"):
        walk.back_to_console()
        expect(page.locator("#home")).to_contain_text("Your Delegate connection", timeout=WAIT_MS)  # published on connect
        walk.type("/post-as-me hi from Bob")
        walk.message_from("Bob", "hi from Bob")

    with walk.step("eleven-hours-later"):
        walk.act_as(ALICE)
        before_ahead = token_row(page, ALICE).locator("code").inner_text()
        page.click("#advance-eleven-hours")
        expect(page.locator("#clock-offset")).to_contain_text("11 h", timeout=WAIT_MS)
        # With an hour left, inside the refresher's window: renewed ahead of expiry, with no command asking for it.
        ahead = page.locator(f"#refreshes li[data-user='{ALICE}'][data-kind='user'][data-ahead='true']")
        expect(ahead.first).to_contain_text("before it was due (refresh-ahead)", timeout=WAIT_MS)
        expect(token_row(page, ALICE).locator("code")).not_to_have_text(before_ahead)
        # Bob's user token and the bot token were an hour from expiry as well: the same sweep renews them ahead.
        expect(page.locator("#refreshes li[data-ahead='true']")).to_have_count(3, timeout=WAIT_MS)
        page.locator("#tokens").scroll_into_view_if_needed()

    with walk.step("twelve-hours-later"):
        first_token = token_row(page, ALICE).locator("code").inner_text()
        page.click("#advance-half-day")
        expect(page.locator("#clock-offset")).to_contain_text("23 h", timeout=WAIT_MS)
        # Refresh-ahead renews the token on its own, before anyone asks: the table shows a new, live token.
        row = token_row(page, ALICE)
        expect(row).to_have_attribute("data-status", "active", timeout=WAIT_MS)
        expect(row).to_contain_text("refresh_token", timeout=WAIT_MS)
        expect(row.locator("code")).not_to_have_text(first_token)
        expect(row).to_contain_text(re.compile(r"1[01] h \d+ min"))
        page.locator("#tokens").scroll_into_view_if_needed()

    with walk.step("after-twelve-hours"):
        walk.command("/delegate connection", "Connected", "renewed")
        walk.type("/post-as-me still here after 12 hours")
        walk.message_from("Alice", "still here after 12 hours")

    with walk.step("restarted"):
        assert delegate.stop() == 0, "Ctrl-C should stop Delegate cleanly:\n" + delegate.output()
        assert delegate.start() == page.url.split("?")[0]
        page.reload()
        walk.act_as(ALICE)
        walk.message_from("Alice", "still here after 12 hours")  # the sandbox kept its messages
        walk.command("/delegate connection", "Your Delegate connection", "Connected")

    with walk.step("after-restart"):
        walk.type("/post-as-me back after a restart")
        walk.message_from("Alice", "back after a restart")

    with walk.step("disconnect-confirm"):
        prompt = walk.command("/delegate disconnect", "Disconnect Delegate?")
        prompt.get_by_role("button", name="Disconnect").click()
        expect(walk.ephemerals().filter(has_text="Disconnected").first).to_be_visible(timeout=WAIT_MS)

    with walk.step("home-after-disconnect"):
        home = page.locator("#home")
        # Republished by the disconnect itself, before the person opens the tab again.
        expect(home).to_contain_text("Delegate is not connected to your account", timeout=WAIT_MS)
        walk.open_home("Delegate is not connected to your account", "Connect Delegate")
        expect(home).not_to_contain_text("Token expires")

    assert "Traceback" not in "\n".join(delegate.lines), delegate.output()
