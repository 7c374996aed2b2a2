"""Fakes for listener tests: a recording user client, bot client, token manager, Delegate, ack and respond."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from slack_bolt import BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from listeners import manifest
from stores.disconnect import DisconnectResult
from stores.errors import TokenError
from stores.rotation import ConnectionInfo

USER = "U1"
TEAM = "T1"
CHANNEL = "C1"
ALL_SCOPES = manifest.user_scopes()


class Recorder:
    """Records calls (method, kwargs); answers with canned responses or raises canned errors per method."""

    def __init__(self, name: str, user_id: str | None = None):
        self.name = name
        self.user_id = user_id
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, Exception] = {}

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((method, kwargs))
            if method in self.errors:
                raise self.errors[method]
            return {"ok": True, **self.answers.get(method, {})}

        return call

    def __deepcopy__(self, memo: dict[int, object]) -> Recorder:
        return self

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def last(self, method: str) -> dict[str, Any]:
        found = [kwargs for name, kwargs in self.calls if name == method]
        assert found, f"{self.name} never called {method}: {self.methods()}"
        return found[-1]


@dataclass
class FakeManager:
    info: ConnectionInfo | None = None
    disconnect_result: DisconnectResult = field(
        default_factory=lambda: DisconnectResult(had_connection=True, revoked_at_slack=True, slack_error=None, deleted=True)
    )
    disconnected: list[dict[str, Any]] = field(default_factory=list)
    forgotten: list[dict[str, Any]] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)

    def connection_info(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> ConnectionInfo | None:
        self.asked.append({"enterprise_id": enterprise_id, "team_id": team_id, "user_id": user_id})
        return self.info

    def disconnect(self, *, enterprise_id: str | None, team_id: str | None, user_id: str) -> DisconnectResult:
        self.disconnected.append({"enterprise_id": enterprise_id, "team_id": team_id, "user_id": user_id})
        self.info = None
        return self.disconnect_result

    def forget_user(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str,
        reason: str,
        installed_at_or_before: datetime | None = None,
    ) -> bool:
        forgotten = {"enterprise_id": enterprise_id, "team_id": team_id, "user_id": user_id, "reason": reason}
        if installed_at_or_before is not None:
            forgotten["installed_at_or_before"] = installed_at_or_before
        self.forgotten.append(forgotten)
        return self.info is not None


def real_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeDelegate:
    manager: FakeManager = field(default_factory=FakeManager)
    user_scopes: tuple[str, ...] = ALL_SCOPES
    clock: Callable[[], datetime] = field(default_factory=lambda: real_now)
    support_url: str | None = None
    privacy_url: str | None = None

    def connect_url(self, *, team_id: str | None, user_scopes: Sequence[str] | None = None) -> str:
        query = {"team": team_id or "", "scopes": ",".join(user_scopes) if user_scopes is not None else "*"}
        return "https://delegate.example/slack/connect?" + urlencode(query)

    def __deepcopy__(self, memo: dict[int, object]) -> FakeDelegate:
        return self


@dataclass
class FakeRevocationStore:
    """Records the deletes the revocation events ask for."""

    deleted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def delete_installation(self, **kwargs: Any) -> None:
        self.deleted.append(("installation", kwargs))

    def delete_bot(self, **kwargs: Any) -> None:
        self.deleted.append(("bot", kwargs))

    def delete_all(self, **kwargs: Any) -> None:
        self.deleted.append(("all", kwargs))


class Calls:
    """A fake ack() or respond(): records keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, text: str | None = None, **kwargs: Any) -> None:
        if text is not None:
            kwargs["text"] = text
        self.calls.append(kwargs)

    @property
    def last(self) -> dict[str, Any]:
        assert self.calls, "never called"
        return self.calls[-1]


def connection(status: str = "active", scopes: Sequence[str] = ALL_SCOPES, **changes: Any) -> ConnectionInfo:
    now = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "user_id": USER,
        "team_id": TEAM,
        "enterprise_id": None,
        "status": status,
        "status_reason": None if status == "active" else "invalid_refresh_token",
        "scopes": tuple(scopes),
        "expires_at": datetime(2026, 11, 29, 16, 0, tzinfo=UTC),
        "last_refreshed_at": now,
        "last_refresh_outcome": "refreshed",
        "installed_at": datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        "needed_scopes": (),
        "rotating": True,
    }
    values.update(changes)
    return ConnectionInfo(**values)


@dataclass
class World:
    """One request's worth of fakes."""

    delegate: FakeDelegate
    bot: Recorder
    user: Recorder | None
    context: BoltContext
    ack: Calls
    respond: Calls


def world(
    *,
    connected: bool = True,
    error: TokenError | None = None,
    scopes: Sequence[str] | None = ALL_SCOPES,
    user_id: str = USER,
    info: ConnectionInfo | None = None,
    now: datetime | None = None,
) -> World:
    """A context for `user_id`: connected with `scopes`, or not (then `error` says why, like DelegateAuthorize);
    Delegate's clock stands still at `now` when given."""
    delegate = FakeDelegate(manager=FakeManager(info=info))
    if now is not None:
        delegate.clock = lambda: now
    bot = Recorder("bot client")
    user = Recorder("user client", user_id=user_id) if connected else None
    context = BoltContext(
        {
            "enterprise_id": None,
            "is_enterprise_install": False,
            "team_id": TEAM,
            "user_id": user_id,
            "channel_id": CHANNEL,
            "client": bot,
            "user_client": user,
            "user_token_error": None if connected else error,
            "delegate": delegate,
            "authorize_result": AuthorizeResult(
                enterprise_id=None,
                team_id=TEAM,
                bot_token="xoxb-bot",
                user_id=user_id,
                user_token="xoxp-person" if connected else None,
                user_scopes=list(scopes) if (connected and scopes is not None) else None,
            ),
        }
    )
    return World(delegate=delegate, bot=bot, user=user, context=context, ack=Calls(), respond=Calls())


def command(name: str, text: str = "", *, user_id: str = USER, channel_id: str = CHANNEL) -> dict[str, Any]:
    return {
        "command": name,
        "text": text,
        "user_id": user_id,
        "team_id": TEAM,
        "channel_id": channel_id,
        "response_url": "https://hooks.example/response",
        "trigger_id": "1.2.3",
    }


def buttons(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button in a reply's or view's blocks."""
    return [
        element
        for block in reply.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


def text_of(reply: dict[str, Any]) -> str:
    """All visible mrkdwn and plain text in a reply's or view's blocks."""
    parts: list[str] = []
    for block in reply.get("blocks") or []:
        if "text" in block:
            parts.append(block["text"]["text"])
        for item in block.get("fields", []) + block.get("elements", []):
            if isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif isinstance(item.get("text"), dict):
                parts.append(item["text"]["text"])
    return "\n".join(parts)


BOT_UI_METHODS = {"views_open", "views_update", "views_publish"}


def assert_bot_never_acted(w: World) -> None:
    """The bot client was used only for Delegate's own views, never to act in the person's place."""
    assert set(w.bot.methods()) <= BOT_UI_METHODS, w.bot.methods()


def slack_error(code: str, **data: Any) -> SlackApiError:
    """What slack_sdk raises when Slack answers ok: false."""
    body = {"ok": False, "error": code, **data}
    response = SlackResponse(
        client=None, http_verb="POST", api_url="https://slack.test/api", req_args={}, data=body, headers={}, status_code=200
    )
    return SlackApiError(f"The request to the Slack API failed: {code}", response)
