"""Long operator runs (refresh all due, re-encrypt, exchange, import): a progress bar on a terminal, a one-line summary
otherwise, and Ctrl-C that stops cleanly between two units of work.

The work runs on a thread of its own and the main thread waits for it: Ctrl-C lands in the main thread, which asks the
work to stop (a threading.Event every run checks between units) and waits for the unit in flight to finish. So a token
Slack has just rotated is always committed before the command exits, and running the command again resumes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["INTERRUPTED_EXIT", "Interrupted", "Progress", "interrupted_exit", "progress_mode", "run_interruptibly"]

T = TypeVar("T")

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C


class Interrupted(Exception):
    """The operator pressed Ctrl-C; the work stopped between two units."""


def progress_mode(progress: bool | None) -> str:
    """bar on a terminal (or with --progress there), lines with --progress elsewhere, quiet otherwise."""
    terminal = sys.stderr.isatty()
    if progress is False:
        return "quiet"
    if terminal:
        return "bar"
    return "lines" if progress else "quiet"


class Progress:
    """Counts units of work; draws a click progress bar on stderr in "bar" mode, a line per step in "lines" mode."""

    def __init__(self, label: str, total: int | None, mode: str = "bar"):
        self.label = label
        self.total = total
        self.mode = mode
        self.done = 0
        self._lock = threading.Lock()
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.total is not None:
            self._start_bar()
        return self

    def _start_bar(self) -> None:
        if self.mode == "bar" and self._bar is None:
            self._bar = click.progressbar(length=self.total or 0, label=self.label, file=sys.stderr, show_pos=True)
            self._bar.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def update_to(self, done: int, total: int) -> None:
        """The work reports where it stands: `done` units of `total`."""
        if self.total is None:
            self.total = total
        self.advance(done - self.done)

    def advance(self, count: int = 1, line: str | None = None) -> None:
        """Record `count` units done (thread-safe); `line` is printed to stderr in "lines" mode."""
        with self._lock:
            self._start_bar()  # when the total became known only with the first step
            self.done += count
            if self._bar is not None and count:
                self._bar.update(count)
            elif self.mode == "lines" and count:
                click.echo(line or f"{self.label}: {self.done}/{self.total if self.total is not None else '?'}", err=True)


def run_interruptibly(work: Callable[[threading.Event], T], *, on_interrupt: Callable[[], None] | None = None) -> T:
    """Run work(stop) on a thread and return its result; on Ctrl-C set stop, let the unit in flight finish, and raise
    Interrupted (or the work's own exception, if it failed meanwhile)."""
    stop, finished = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work(stop)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = error
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="delegate-cli-work", daemon=True)
    thread.start()
    interrupted = False
    # Waiting on an Event, not in Thread.join: a KeyboardInterrupt inside join() can leave the thread looking finished
    # while it still runs (and a daemon thread dies at exit, maybe between Slack's answer and the commit).
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            if interrupted:
                continue  # a second Ctrl-C: still wait, a rotated token must be committed first
            interrupted = True
            stop.set()
            if on_interrupt is not None:
                on_interrupt()
            click.echo("stopping after the work in flight (a token being rotated is saved first)...", err=True)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    if interrupted:
        raise Interrupted
    return outcome["result"]  # type: ignore[no-any-return]


def interrupted_exit(done: int, what: str) -> click.exceptions.Exit:
    """Print the interruption line and return the exit to raise."""
    click.echo(f"interrupted after {done} {what}; run the command again to resume", err=True)
    return click.exceptions.Exit(INTERRUPTED_EXIT)
