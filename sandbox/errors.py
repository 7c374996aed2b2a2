"""The sandbox's exception: a Slack error name with the extra fields Slack sends along with it."""

from __future__ import annotations

from typing import Any


class SlackError(Exception):
    """An `{"ok": false, "error": name, ...}` answer, with the HTTP status and headers to send it with."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack would answer with."""
        return {"ok": False, "error": self.error, **self.extra}
