"""Whom the work in progress is for: team, enterprise, user, request and command, in a contextvar for log formatters.

The app sets it where work starts (a request id at the WSGI entry, the person and command in a Bolt middleware, the
token's team and user in the refresher); a formatter reads `current()`. It holds ids and command names, never a
secret. Contextvars follow the code within a thread; work handed to another thread carries them only when it is
submitted inside `contextvars.copy_context().run` (the app's listener executor does that).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

__all__ = ["FIELDS", "bind", "current", "log_context"]

FIELDS = ("team", "enterprise", "user", "request", "command")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("delegate_log_context", default=_EMPTY)


def current() -> Mapping[str, str]:
    """The known fields of the work in progress (unknown ones are absent)."""
    return _context.get()


def _checked(fields: dict[str, str | None]) -> None:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {', '.join(sorted(unknown))}")


def bind(**fields: str | None) -> None:
    """Set these fields (None or empty forgets one) until the enclosing `log_context` block ends.

    For code that cannot wrap what follows in a block: a Bolt middleware, whose `next()` returns before the listeners
    run. Outside any block the fields stay for the thread's later work, so give every field the caller knows about.
    """
    _checked(fields)
    merged = dict(_context.get())
    for name, value in fields.items():
        if value:
            merged[name] = value
        else:
            merged.pop(name, None)
    _context.set(MappingProxyType(merged))


@contextmanager
def log_context(*, fresh: bool = False, **fields: str | None) -> Iterator[None]:
    """Add these fields (None and empty are left out) for the duration of the block; `fresh` forgets earlier ones."""
    _checked(fields)
    merged = {} if fresh else dict(_context.get())
    merged.update({name: value for name, value in fields.items() if value})
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)
