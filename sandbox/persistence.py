"""The sandbox's state on disk: one SQLite file (WAL) of JSON rows, so a restarted sandbox still knows its tokens.

Opt-in: a SandboxState without a StateFile never touches the disk. With one, `save()` runs before every answer
leaves (server.py's middleware), so whatever an answer reveals (a token, a rotated refresh token, a used code) is
committed first and a kill -9 cannot leave Delegate holding a token the sandbox has forgotten. A save writes only
what changed, in one transaction: tokens, refresh tokens, codes, views and people are `Tracked` (an assignment to a
field marks the object unsaved); messages and the other plain dicts are compared by a shallow snapshot (their
top-level items) with the last save's. Serializing the whole state each time cost 70 ms per answer at 2,300 tokens.
So the state changes by assigning fields or top-level keys (as it does), never by mutating a nested list or dict in
place, which a save would not notice.
Secrets in the file are the sandbox's fake ones; the file is owner-only all the same (0600 in a 0700 folder).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.config import SandboxChannel
from sandbox.state import AuthorizationCode, RefreshToken, Token, Tracked, View

if TYPE_CHECKING:
    from sandbox.state import SandboxState

FORMAT = 1
USER_FIELDS = ("deleted", "status_text", "status_emoji", "status_expiration", "snooze_endtime", "display_name")
COUNTERS = ("api_calls", "grants", "grant_failures", "refreshes_by_user")


class StateFileError(Exception):
    """The state file cannot be used: unreadable, not the sandbox's, or another app's; the message says what to do."""


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _private_file(path: Path) -> None:
    """Create `path` owner-only (and its folder 0700) if missing; tighten both if they exist."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            os.chmod(sidecar, 0o600)


class StateFile:
    """One sandbox's rows on disk; every method is called with the state's lock held."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _private_file(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a commit survives a killed process
            self._db.execute("CREATE TABLE IF NOT EXISTS rows (kind TEXT, key TEXT, body TEXT, PRIMARY KEY (kind, key))")
            stored = {(kind, key): body for kind, key, body in self._db.execute("SELECT kind, key, body FROM rows")}
        except sqlite3.DatabaseError as error:
            raise StateFileError(
                f"the sandbox's state file {self.path} cannot be read ({error}); start over with --fresh"
            ) from None
        self._saved: dict[tuple[str, str], Any] = stored  # (kind, key) -> the JSON read, then the last save's snapshot
        self._keys: dict[str, set[str]] = {}  # the keys of each Tracked kind at the last save

    def __repr__(self) -> str:
        return f"StateFile({str(self.path)!r})"

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    # ----- loading -----

    def _rows(self, kind: str) -> Iterator[tuple[str, Any]]:
        for (row_kind, key), body in sorted(self._saved.items()):
            if row_kind == kind:
                yield key, json.loads(body)

    def load(self, state: SandboxState) -> bool:
        """Put the stored state into a fresh SandboxState; False when the file was empty (a first start)."""
        if not self._saved:
            return False
        try:
            self._load(state)
        except (KeyError, TypeError, ValueError) as error:
            raise StateFileError(
                f"the sandbox's state file {self.path} is not one this sandbox can read ({error!r}); start over with --fresh"
            ) from None
        self._mark_saved(state, self._snapshots(state))
        return True

    def _load(self, state: SandboxState) -> None:
        meta = dict(self._rows("meta"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        app = meta["app"]
        if app != self._app_identity(state):
            raise StateFileError(
                f"the sandbox's state file {self.path} belongs to app {app.get('app_id')} (client id"
                f" {app.get('client_id')}), not to this one; start over with --fresh"
            )
        state.tokens = {key: Token(**body) for key, body in self._rows("token")}
        state.refresh_tokens = {key: RefreshToken(**body) for key, body in self._rows("refresh_token")}
        state.codes = {key: AuthorizationCode(**body) for key, body in self._rows("code")}
        state.views = {key: View(**body) for key, body in self._rows("view")}
        for key, body in self._rows("channel"):
            state.channels.setdefault(key, SandboxChannel(**body))
        for key, body in self._rows("user"):
            if key in state.users:
                for name in USER_FIELDS:
                    setattr(state.users[key], name, body[name])
        state.messages = [body for _, body in self._rows("message")]
        state.ephemerals = [body for _, body in self._rows("ephemeral")]
        state.refreshes = [body for _, body in self._rows("renewal")]  # the console's list of renewals
        state.triggers = {key: tuple(body) for key, body in self._rows("trigger")}
        state.response_urls = dict(self._rows("response_url"))
        state.installed_teams = set(meta["installed_teams"])
        state.installed_enterprises = set(meta.get("installed_enterprises", []))  # absent from files before Grid
        for name in COUNTERS:
            setattr(state, name, Counter(meta[name]))
        state._ts_counter = int(meta["ts_counter"])
        state.consent_key = bytes.fromhex(meta["consent_key"])
        if meta["clock_offset"] > state.clock.offset:
            state.clock.advance(meta["clock_offset"] - state.clock.offset)

    # ----- saving -----

    @staticmethod
    def _app_identity(state: SandboxState) -> dict[str, Any]:
        return {"app_id": state.config.app_id, "client_id": state.config.client_id}

    def _tracked(self, state: SandboxState) -> Iterator[tuple[str, Mapping[str, Tracked]]]:
        yield from (
            ("token", state.tokens),
            ("refresh_token", state.refresh_tokens),
            ("code", state.codes),
            ("view", state.views),
            ("user", state.users),
        )

    @staticmethod
    def _fields(kind: str, item: Tracked) -> dict[str, Any]:
        if kind == "user":
            return {name: getattr(item, name) for name in USER_FIELDS}
        return {name: value for name, value in vars(item).items() if name != "unsaved"}

    def _snapshots(self, state: SandboxState) -> dict[tuple[str, str], tuple[Any, Any]]:
        """The rows of plain dicts and lists as (snapshot, value): the snapshot is cheap to compare, the value is
        written as JSON."""
        plain: dict[tuple[str, str], Any] = {}
        for key, channel in state.channels.items():
            plain[("channel", key)] = vars(channel)
        for kind, messages in (("message", state.messages), ("ephemeral", state.ephemerals), ("renewal", state.refreshes)):
            for index, message in enumerate(messages):
                plain[(kind, f"{index:09d}")] = message
        for key, trigger in state.triggers.items():
            plain[("trigger", key)] = list(trigger)
        for key, response_url in state.response_urls.items():
            plain[("response_url", key)] = response_url
        rows: dict[tuple[str, str], tuple[Any, Any]] = {
            row: (tuple(value.items()) if isinstance(value, dict) else tuple(value), value) for row, value in plain.items()
        }
        meta: dict[str, Any] = {
            "format": FORMAT,
            "app": self._app_identity(state),
            "installed_teams": sorted(state.installed_teams),
            "installed_enterprises": sorted(state.installed_enterprises),
            "ts_counter": state._ts_counter,
            "consent_key": state.consent_key.hex(),
            "clock_offset": state.clock.offset,
            **{name: dict(getattr(state, name)) for name in COUNTERS},
        }
        for key, value in meta.items():
            rows[("meta", key)] = (_dump(value), value)
        return rows

    def _mark_saved(self, state: SandboxState, snapshots: dict[tuple[str, str], tuple[Any, Any]]) -> None:
        for kind, objects in self._tracked(state):
            for item in objects.values():
                object.__setattr__(item, "unsaved", False)
            self._keys[kind] = set(objects)
        self._saved = {row: snapshot for row, (snapshot, _) in snapshots.items()}

    def save(self, state: SandboxState) -> int:
        """Write what changed since the last save, in one transaction; returns how many rows it wrote or deleted."""
        changed: list[tuple[str, str, str]] = []
        gone: list[tuple[str, str]] = []
        written: list[Tracked] = []
        added: list[tuple[str, str]] = []
        for kind, objects in self._tracked(state):
            keys = self._keys.setdefault(kind, set())
            new = 0
            for key, item in objects.items():
                if item.__dict__.get("unsaved", True):
                    changed.append((kind, key, _dump(self._fields(kind, item))))
                    written.append(item)
                    if key not in keys:
                        added.append((kind, key))
                        new += 1
            if len(objects) != len(keys) + new:  # objects are only ever added, until a reset replaces them all
                gone.extend((kind, key) for key in keys - objects.keys())
        snapshots = self._snapshots(state)
        saved = self._saved
        changed.extend(
            (kind, key, _dump(value))
            for (kind, key), (snapshot, value) in snapshots.items()
            if saved.get((kind, key)) != snapshot
        )
        gone.extend(row for row in saved if row not in snapshots)
        if not changed and not gone:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO rows (kind, key, body) VALUES (?, ?, ?)", changed)
            self._db.executemany("DELETE FROM rows WHERE kind = ? AND key = ?", gone)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        for item in written:
            object.__setattr__(item, "unsaved", False)
        for kind, key in added:
            self._keys[kind].add(key)
        for kind, key in gone:
            self._keys.get(kind, set()).discard(key)
        self._saved = {row: snapshot for row, (snapshot, _) in snapshots.items()}
        return len(changed) + len(gone)
