"""Whom the work in progress is for: team, enterprise, user, request and command, in a contextvar for log formatters.

The app sets it where work starts (a request id at the WSGI entry, the person and command in a Bolt middleware, the
token's team and user in the refresher); a formatter reads `current()`. It holds ids and command names, never a
secret. Contextvars follow the code within a thread; work handed to another thread carries them only when it is
submitted inside `contextvars.copy_context().run` (the app's listener executor does that).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token

__all__ = ["FIELDS", "bind", "current", "log_context"]

FIELDS = ("team", "enterprise", "user", "request", "command")

_NAMES = frozenset(FIELDS)
# Each value is a new dict, never changed once set (plain dicts: this runs twice per request, on the ack path).
_EMPTY: dict[str, str] = {}
_context: ContextVar[dict[str, str]] = ContextVar("delegate_log_context")


def current() -> Mapping[str, str]:
    """The known fields of the work in progress (unknown ones are absent); read it, never change it."""
    return _context.get(_EMPTY)


def _checked(fields: dict[str, str | None]) -> None:
    if not _NAMES.issuperset(fields):
        raise TypeError(f"unknown log context fields: {', '.join(sorted(set(fields) - _NAMES))}")


def bind(**fields: str | None) -> None:
    """Set these fields (None or empty forgets one) until the enclosing `log_context` block ends.

    For code that cannot wrap what follows in a block: a Bolt middleware, whose `next()` returns before the listeners
    run. Outside any block the fields stay for the thread's later work, so give every field the caller knows about.
    """
    _checked(fields)
    merged = _context.get(_EMPTY).copy()
    for name, value in fields.items():
        if value:
            merged[name] = value
        else:
            merged.pop(name, None)
    _context.set(merged)


class log_context:  # noqa: N801 - used as a function: with log_context(team=...)
    """Add these fields (None and empty are left out) for the duration of the block; `fresh` forgets earlier ones.

    A class rather than @contextmanager: it runs on every request's ack path, and costs a third as much.
    """

    __slots__ = ("_fields", "_token")

    def __init__(self, *, fresh: bool = False, **fields: str | None):
        _checked(fields)
        merged = {} if fresh else _context.get(_EMPTY).copy()
        for name, value in fields.items():
            if value:
                merged[name] = value
        self._fields = merged
        self._token: Token[dict[str, str]] | None = None

    def __enter__(self) -> None:
        self._token = _context.set(self._fields)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None
