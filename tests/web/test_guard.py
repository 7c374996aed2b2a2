"""The request guard in front of Bolt, through Delegate's real WSGI app on a real HTTP server with its real database."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from tests.e2e.harness import Delegate, running_delegate
from tests.e2e.test_commands import ALICE
from web.guard import MAX_BODY_BYTES, RequestGuard

LIVENESS = 20.0  # seconds; only so that a hung server fails the test instead of hanging it
MARK = "BODY-TEXT-MUST-NOT-BE-LOGGED"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def delegate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delegate]:
    with running_delegate(tmp_path_factory.mktemp("guard")) as running:
        running.install(ALICE)  # rows in every token table, so that a change would show
        yield running


# -- helpers --------------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes


def http(delegate: Delegate, path: str, headers: dict[str, str], body: bytes = b"", *, method: str = "POST") -> Answer:
    """One request over a raw socket, so that Content-Length can lie; waits for the server to close."""
    host, port = delegate.base_url.removeprefix("http://").split(":")
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection((host, int(port)), timeout=LIVENESS) as sock:
        sock.sendall(head.encode("latin-1") + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return Answer(int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2])


def signed(signing_secret: str, body: bytes, *, timestamp: str | None = None, content_type: str = FORM) -> dict[str, str]:
    """Slack's headers for these exact bytes."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def unsigned(body: bytes, content_type: str = FORM) -> dict[str, str]:
    return {"Content-Type": content_type, "Content-Length": str(len(body))}


class Records(logging.Handler):
    """Every log record of every thread while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter()
        return "\n".join(formatter.format(record) for record in self.records)

    def assert_clean(self, *absent: str) -> None:
        """No traceback, and none of the given texts, in anything logged."""
        assert not [r for r in self.records if r.exc_info], self.text()
        logged = self.text()
        assert "Traceback" not in logged, logged
        for needle in absent:
            assert needle not in logged, f"logged: {needle[:40]!r}"


@contextmanager
def logs() -> Iterator[Records]:
    root = logging.getLogger()
    handler = Records()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # production's level: Bolt logs failing bodies at INFO
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def row_counts(delegate: Delegate) -> dict[str, int]:
    """Rows in every table of the app's database."""
    with delegate.stores.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {name: conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one() for name in names}


def contents(delegate: Delegate) -> dict[str, list[Any]]:
    """Every row of every table: a change in place shows as well as an insert or a delete."""
    with delegate.stores.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {name: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{name}"')).all())) for name in names}


# -- size ------------------------------------------------------------------------------------------------------------


def test_a_huge_content_length_is_refused_before_any_byte_is_read(delegate: Delegate) -> None:
    before = contents(delegate)
    with logs() as records:
        # No body follows the headers: an answer at all means the server did not wait to read one (here the
        # production server refuses it on its own cap, before the guard, which refuses the same way behind others).
        answer = http(delegate, "/slack/events", {"Content-Type": JSON, "Content-Length": "10485760"})
    assert answer.status == 413
    records.assert_clean()
    assert contents(delegate) == before


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the guard read a body it should have refused on its headers")


def test_the_guard_refuses_an_oversized_content_length_without_reading_under_any_server() -> None:
    reached: list[str] = []

    def inner(environ: Any, start_response: Any) -> list[bytes]:
        reached.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    guard = RequestGuard(inner, signing_secret="secret", slack_path="/slack/events")
    statuses: list[str] = []
    for path in ("/slack/events", "/slack/install", "/"):
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "CONTENT_LENGTH": "10485760", "wsgi.input": Unreadable()}
        guard(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == ["413 Request Entity Too Large"] * 3 and reached == []


@pytest.mark.parametrize("path", ["/slack/install", "/slack/oauth_redirect", "/slack/connect", "/", "/healthz", "/nope"])
def test_every_other_path_caps_bodies_too(delegate: Delegate, path: str) -> None:
    for method in ("GET", "POST"):
        # The whole body is sent: the production server reads up to its own cap (a little over the guard's), and the
        # guard refuses what is over its limit.
        body = b"x" * (MAX_BODY_BYTES + 1)
        answer = http(delegate, path, {"Content-Type": FORM, "Content-Length": str(len(body))}, body, method=method)
        assert answer.status == 413, (method, path)


def test_a_body_under_a_lying_content_length_is_refused_and_never_read_past_it(delegate: Delegate) -> None:
    secret = delegate.settings.signing_secret
    assert secret
    body = (f"command=/post-as-me&text={MARK}&".encode() * (2 * MAX_BODY_BYTES // 40))[: 2 * MAX_BODY_BYTES]
    headers = signed(secret, body)  # signed over the whole 2 MiB, but declaring 1 KiB of it
    headers["Content-Length"] = "1024"
    host, port = delegate.base_url.removeprefix("http://").split(":")
    head = "POST /slack/events HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    before = contents(delegate)
    with logs() as records, socket.create_connection((host, int(port)), timeout=LIVENESS) as sock:
        # The declared kilobyte first: the server answers without waiting for the other 2 MiB, which it never reads.
        sock.sendall(head.encode() + body[:1024])
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.split(b" ", 2)[1] == b"401", received[:80]
    records.assert_clean(MARK)
    assert contents(delegate) == before


def test_the_guard_reads_no_more_than_declared_and_refuses_a_short_body() -> None:
    seen: list[bytes] = []

    def inner(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("200 OK", [])
        return [b""]

    guard = RequestGuard(inner, signing_secret="secret", slack_path="/slack/events")
    statuses: list[str] = []
    stream = io.BytesIO(b"x" * (3 * MAX_BODY_BYTES))
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/other", "CONTENT_LENGTH": "100", "wsgi.input": stream}
    guard(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert stream.tell() == 100 and seen == [b"x" * 100]
    short = {"REQUEST_METHOD": "POST", "PATH_INFO": "/other", "CONTENT_LENGTH": "100", "wsgi.input": io.BytesIO(b"x" * 10)}
    guard(short, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == ["200 OK", "400 Bad Request"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"CONTENT_TYPE": FORM, "HTTP_TRANSFER_ENCODING": "chunked"}, "411 Length Required"),
        ({"CONTENT_TYPE": FORM}, "411 Length Required"),
        ({"CONTENT_TYPE": FORM, "CONTENT_LENGTH": "abc"}, "400 Bad Request"),
        ({"CONTENT_TYPE": FORM, "CONTENT_LENGTH": "-5"}, "400 Bad Request"),
        ({"CONTENT_TYPE": FORM, "CONTENT_LENGTH": "5", "HTTP_TRANSFER_ENCODING": "chunked"}, "400 Bad Request"),
    ],
)
def test_a_missing_or_invalid_content_length_is_refused(headers: dict[str, str], status: str) -> None:
    # In-process: the production server already answers most of these itself, other servers may pass them on.
    def inner(environ: Any, start_response: Any) -> list[bytes]:
        raise AssertionError("reached the app")

    guard = RequestGuard(inner, signing_secret="secret", slack_path="/slack/events")
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "wsgi.input": io.BytesIO(b"12345"), **headers}
    with logs() as records:
        guard(environ, lambda status, headers, exc_info=None: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == [status]
    records.assert_clean()


@pytest.mark.parametrize(
    "framing",
    [
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"\r\n",
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
)
def test_odd_framing_over_the_production_server_is_a_4xx_that_changes_nothing(delegate: Delegate, framing: bytes) -> None:
    host, port = delegate.base_url.removeprefix("http://").split(":")
    head = f"POST /slack/events HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Type: {FORM}\r\n"
    before = contents(delegate)
    with logs() as records, socket.create_connection((host, int(port)), timeout=LIVENESS) as sock:
        sock.sendall(head.encode() + framing)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert 400 <= int(received.split(b" ", 2)[1]) < 500, received[:80]
    records.assert_clean()
    assert contents(delegate) == before


# -- the reproductions from the issue --------------------------------------------------------------------------------


def _reproductions(secret: str) -> list[tuple[str, dict[str, str], bytes, int]]:
    now = int(time.time())
    mark = MARK.encode()
    team_is_a_number = b'{"team": 5, "t": "' + mark + b'"}'
    team_id_a_list = b'{"team_id": [null], "t": "' + mark + b'"}'
    return [
        ("unsigned '{not json'", unsigned(b"{not json " + mark), b"{not json " + mark, 401),
        ("unsigned garbage typed as JSON", unsigned(b"\x00garbage " + mark, JSON), b"\x00garbage " + mark, 401),
        ("unsigned payload=\\xff", unsigned(b"payload=\xff" + mark), b"payload=\xff" + mark, 400),
        ("unsigned payload=%FF", unsigned(b"payload=%FF" + mark), b"payload=%FF" + mark, 401),
        ("unsigned [1,2]", unsigned(b'[1,2,"' + mark + b'"]', JSON), b'[1,2,"' + mark + b'"]', 401),
        ("signed, timestamp abc", signed(secret, b"text=" + mark, timestamp="abc"), b"text=" + mark, 401),
        ("signed, timestamp '+<now>'", signed(secret, b"text=" + mark, timestamp=f"+{now}"), b"text=" + mark, 401),
        ("signed, stale timestamp", signed(secret, b"text=" + mark, timestamp=str(now - 301)), b"text=" + mark, 401),
        ("signed, future timestamp", signed(secret, b"text=" + mark, timestamp=str(now + 400)), b"text=" + mark, 401),
        ("wrong secret", signed("not-the-secret", b"text=" + mark), b"text=" + mark, 401),
        (
            "non-ASCII signature",
            {**unsigned(b"text=" + mark), "X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=\xe9"},
            b"text=" + mark,
            401,
        ),
        ("signed '{not json'", signed(secret, b"{not json " + mark), b"{not json " + mark, 400),
        ("signed garbage typed as JSON", signed(secret, b"garbage " + mark, content_type=JSON), b"garbage " + mark, 400),
        ("signed [1,2]", signed(secret, b'[1,2,"' + mark + b'"]', content_type=JSON), b'[1,2,"' + mark + b'"]', 400),
        ("signed payload=%FF", signed(secret, b"payload=%FF&t=" + mark), b"payload=%FF&t=" + mark, 400),
        ("signed payload not JSON", signed(secret, b"payload=" + mark), b"payload=" + mark, 400),
        ("signed payload a list", signed(secret, b"payload=%5B1%5D&t=" + mark), b"payload=%5B1%5D&t=" + mark, 400),
        ("signed, a field Bolt cannot read", signed(secret, team_is_a_number), team_is_a_number, 400),
        ("signed, team_id a list", signed(secret, team_id_a_list), team_id_a_list, 400),
        ("signed, text/plain", signed(secret, b"text=" + mark, content_type="text/plain"), b"text=" + mark, 415),
        ("signed, empty body", signed(secret, b""), b"", 400),
        ("signed, deep JSON", signed(secret, b"[" * 100_000, content_type=JSON), b"[" * 100_000, 400),
    ]


@pytest.mark.parametrize(
    "case", range(len(_reproductions("any secret"))), ids=[name for name, *_ in _reproductions("any secret")]
)
def test_each_reproduction_answers_4xx_logs_no_traceback_and_changes_nothing(delegate: Delegate, case: int) -> None:
    secret = delegate.settings.signing_secret
    assert secret
    name, headers, body, status = _reproductions(secret)[case]
    before = contents(delegate)
    with logs() as records:
        answer = http(delegate, "/slack/events", headers, body)
    assert answer.status == status, (name, answer)
    records.assert_clean(MARK, secret)
    guard_lines = [r for r in records.records if r.name == "web.guard"]
    assert len(guard_lines) == 1 and guard_lines[0].levelno in (logging.INFO, logging.WARNING), name
    assert contents(delegate) == before, name


def test_a_signed_well_formed_request_still_reaches_bolt(delegate: Delegate) -> None:
    secret = delegate.settings.signing_secret
    assert secret
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    answer = http(delegate, "/slack/events", signed(secret, body, content_type=f"{JSON}; charset=utf-8"), body)
    assert answer.status == 200 and json.loads(answer.body) == {"challenge": "c-123"}
    command = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "through the guard", channel_id="C0GENERAL1")
    assert command["status"] == 200


def test_socket_mode_pages_are_capped_too(tmp_path: Path) -> None:
    with running_delegate(tmp_path, socket_mode=True) as running:
        answer = http(running, "/slack/install", {"Content-Length": "10485760"}, method="GET")
        assert answer.status == 413
        assert http(running, "/healthz", {}, method="GET").status == 200


# -- properties ------------------------------------------------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)
CONTENT_TYPES = st.one_of(
    st.sampled_from([JSON, FORM, f"{JSON}; charset=utf-8", "APPLICATION/JSON", "text/plain", "multipart/form-data"]),
    HEADER_TEXT,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
SLACK_KEYS = st.sampled_from(
    ["type", "team", "team_id", "user", "user_id", "channel", "enterprise", "authorizations", "event", "view",
     "response_urls", "is_enterprise_install", "is_ext_shared_channel", "message", "item", "command", "text"]
)  # fmt: skip
SLACK_SHAPED = st.dictionaries(SLACK_KEYS, JSON_VALUES, max_size=6).map(lambda d: json.dumps(d).encode())
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    SLACK_SHAPED,
    st.dictionaries(st.sampled_from(["payload", "command", "text", "x"]), st.text(max_size=30), max_size=3).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode()
    ),
)


def _check_property(delegate: Delegate, path: str, headers: dict[str, str], body: bytes) -> None:
    before = row_counts(delegate)
    with logs() as records:
        answer = http(delegate, path, headers, body)
    assert answer.status < 500, (answer, headers, body)
    event(f"answered {answer.status}")
    records.assert_clean(*([body.decode("latin-1")] if len(body) >= 24 else []))
    assert row_counts(delegate) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/slack/events", "/slack/events", "/slack/install", "/"]),
    content_type=st.none() | CONTENT_TYPES,
    body=BODIES,
    timestamp=st.none() | HEADER_TEXT | st.integers(-(10**6), 10**6).map(lambda d: str(int(time.time()) + d)),
    signature=st.none() | HEADER_TEXT,
)
def test_unsigned_arbitrary_requests_never_5xx_log_a_traceback_or_write(
    delegate: Delegate, path: str, content_type: str | None, body: bytes, timestamp: str | None, signature: str | None
) -> None:
    headers = {"Content-Length": str(len(body))}
    for name, value in (("Content-Type", content_type), ("X-Slack-Request-Timestamp", timestamp)):
        if value is not None:
            headers[name] = value
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    _check_property(delegate, path, headers, body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=st.sampled_from([JSON, FORM, f"{JSON}; charset=utf-8"]) | CONTENT_TYPES, body=BODIES)
def test_signed_arbitrary_requests_never_5xx_log_a_traceback_or_write(
    delegate: Delegate, content_type: str, body: bytes
) -> None:
    secret = delegate.settings.signing_secret
    assert secret
    _check_property(delegate, "/slack/events", signed(secret, body, content_type=content_type), body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.one_of(
        SLACK_SHAPED.map(lambda b: (JSON, b)),
        SLACK_SHAPED.map(lambda b: (FORM, b"payload=" + quote_from_bytes(b).encode())),
    )
)
def test_signed_slack_shaped_bodies_never_5xx_log_a_traceback_or_write(delegate: Delegate, body: tuple[str, bytes]) -> None:
    secret = delegate.settings.signing_secret
    assert secret
    content_type, data = body
    _check_property(delegate, "/slack/events", signed(secret, data, content_type=content_type), data)


def test_bolt_gets_the_body_the_guard_parsed_instead_of_parsing_it_again(
    delegate: Delegate, monkeypatch: pytest.MonkeyPatch
) -> None:
    import slack_bolt.request.request as bolt_request

    parsed: list[str] = []
    parse_body = bolt_request.parse_body

    def counting(body: str, content_type: str | None) -> dict[str, Any]:
        parsed.append(body)
        return parse_body(body, content_type)

    monkeypatch.setattr(bolt_request, "parse_body", counting)
    command = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "parsed once", channel_id="C0GENERAL1")
    assert command["status"] == 200  # Bolt still verified the signature, on the raw body
    deadline = time.monotonic() + 10
    while not [m for m in delegate.sandbox.messages("C0GENERAL1") if m.get("text") == "parsed once"]:
        assert time.monotonic() < deadline, "the command was not carried out"
        time.sleep(0.05)
    assert sum(1 for body in parsed if body) == 0  # Bolt parsed nothing: the guard's parse served it
