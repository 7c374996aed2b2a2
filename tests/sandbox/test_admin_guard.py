"""The admin API and the console answer only the sandbox's own pages and scripts holding its admin token."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from sandbox.cli import sandbox_command
from sandbox.config import SandboxConfig, is_loopback_url
from sandbox.errors import SlackError
from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, GENERAL
from tests.sandbox.httputil import Reply, admin, consent_token, request

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"
EVIL = "http://evil.example"


def raw(
    sandbox: SandboxServer, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    """One request with exactly these headers (Host included, when given), as a browser or attacker could send it."""
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read().decode())
    finally:
        connection.close()


def own_origin(sandbox: SandboxServer) -> str:
    return f"http://127.0.0.1:{sandbox.port}"


def console_calls(sandbox: SandboxServer, token: str) -> dict[str, str]:
    """The headers Chromium sends with the console's own fetches."""
    return {
        ADMIN_TOKEN_HEADER: token,
        "Content-Type": "application/json",
        "Origin": own_origin(sandbox),
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "cors",
    }


def nothing_issued(sandbox: SandboxServer) -> bool:
    return sandbox.tokens() == [] and sandbox.counters()["grants"].get("direct_install", 0) == 0


def test_a_cross_origin_install_is_refused_and_issues_nothing(sandbox: SandboxServer) -> None:
    body = json.dumps({"user_id": ALICE, "scope": "commands", "user_scope": "chat:write"}).encode()
    # What a page on another site can send without a preflight, then the same with every other header right.
    for headers in (
        {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {**console_calls(sandbox, sandbox.admin_token), "Origin": EVIL},
        {**console_calls(sandbox, sandbox.admin_token), "Origin": "null"},
        {**console_calls(sandbox, sandbox.admin_token), "Origin": f"http://localhost:{sandbox.port + 1}"},
    ):
        reply = raw(sandbox, "POST", "/sandbox/admin/install", body=body, headers=headers)
        assert reply.status == 403 and reply.json()["error"] == "bad_origin", headers
        assert "access_token" not in reply.text
    assert nothing_issued(sandbox)


def test_a_cross_site_fetch_without_origin_is_refused(sandbox: SandboxServer) -> None:
    headers = {**console_calls(sandbox, sandbox.admin_token), "Sec-Fetch-Site": "cross-site"}
    del headers["Origin"]
    reply = raw(sandbox, "GET", "/sandbox/admin/state", headers=headers)
    assert reply.status == 403 and reply.json()["error"] == "bad_origin"


def test_a_cross_origin_configure_leaves_the_request_url_alone(sandbox: SandboxServer) -> None:
    before = sandbox.config.request_url
    body = json.dumps({"request_url": "http://127.0.0.1:9/elsewhere", "expires_in": 5}).encode()
    reply = raw(sandbox, "POST", "/sandbox/admin/config", body=body, headers={**console_calls(sandbox, ""), "Origin": EVIL})
    assert reply.status == 403
    assert sandbox.config.request_url == before and sandbox.config.expires_in == 43200


def test_json_sent_as_text_plain_is_refused_and_changes_nothing(sandbox: SandboxServer) -> None:
    before = sandbox.now()
    headers = {ADMIN_TOKEN_HEADER: sandbox.admin_token, "Content-Type": "text/plain"}
    advance = raw(sandbox, "POST", "/sandbox/admin/clock/advance", body=b'{"seconds": 86400}', headers=headers)
    assert advance.status == 415 and advance.json()["error"] == "unsupported_content_type"
    install = raw(sandbox, "POST", "/sandbox/admin/install", body=b'{"user_id": "U0ALICE001", "scope": "commands"}')
    assert install.status in (401, 415)
    form = raw(
        sandbox,
        "POST",
        "/sandbox/admin/install",
        body=b"user_id=U0ALICE001&scope=commands",
        headers={ADMIN_TOKEN_HEADER: sandbox.admin_token, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 415
    assert sandbox.now() - before < 3600 and nothing_issued(sandbox)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:{other}", "10.0.0.1:{port}", ""])
def test_a_host_other_than_loopback_with_the_port_is_refused(sandbox: SandboxServer, host: str) -> None:
    host = host.format(port=sandbox.port, other=sandbox.port + 1)
    headers = {"Host": host, ADMIN_TOKEN_HEADER: sandbox.admin_token, "Content-Type": "application/json"}
    body = json.dumps({"user_id": ALICE, "scope": "commands"}).encode()
    reply = raw(sandbox, "POST", "/sandbox/admin/install", body=body, headers=headers)
    assert reply.status == 421 and reply.json()["error"] == "bad_host"
    assert raw(sandbox, "GET", "/sandbox/admin/state", headers=headers).status == 421
    console = raw(sandbox, "GET", "/", headers={"Host": host})
    assert console.status == 421 and sandbox.admin_token not in console.text
    assert nothing_issued(sandbox)


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_the_console_works_on_every_loopback_name(sandbox: SandboxServer, name: str) -> None:
    host = f"{name}:{sandbox.port}"
    page = raw(sandbox, "GET", "/", headers={"Host": host})
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    found = re.search(r'<meta name="sandbox-admin-token" content="([^"]+)">', page.text)
    assert found is not None and found.group(1) == sandbox.admin_token
    headers = {**console_calls(sandbox, found.group(1)), "Host": host, "Origin": f"http://{host.lower()}"}
    state = raw(sandbox, "GET", "/sandbox/admin/state", headers=headers)
    assert state.status == 200 and state.json()["ok"] is True


@pytest.mark.parametrize("token", [None, "", "wrong", "é", "x" * 500])
def test_a_missing_or_wrong_token_is_refused(sandbox: SandboxServer, token: str | None) -> None:
    headers = {"Content-Type": "application/json", "Origin": own_origin(sandbox)}
    if token is not None:
        headers[ADMIN_TOKEN_HEADER] = token
    install = request(
        "POST", f"{sandbox.url}sandbox/admin/install", body={"user_id": ALICE, "scope": "commands"}, headers=headers
    )
    assert install.status == 401 and install.json()["error"] in ("admin_token_required", "invalid_admin_token")
    for path in ("state", "tokens", "counters", "messages", "deliveries", "faults"):
        assert request("GET", f"{sandbox.url}sandbox/admin/{path}", headers=headers).status == 401, path
    assert request("DELETE", f"{sandbox.url}sandbox/admin/faults", headers=headers).status == 401
    assert nothing_issued(sandbox)


def test_each_run_has_its_own_token(sandbox: SandboxServer) -> None:
    with SandboxServer() as other:
        assert other.admin_token != sandbox.admin_token and len(other.admin_token) >= 32
        stale = {**other.admin_headers, ADMIN_TOKEN_HEADER: sandbox.admin_token}
        assert request("GET", f"{other.url}sandbox/admin/state", headers=stale).status == 401
    assert sandbox.admin_token not in repr(sandbox) and sandbox.admin_token not in repr(sandbox.runtime)
    restarted = SandboxServer()
    with restarted:
        first = restarted.admin_token
    with restarted:
        assert restarted.admin_token != first


def test_the_consoles_own_calls_work(sandbox: SandboxServer) -> None:
    page = request("GET", sandbox.url)
    token = re.search(r'<meta name="sandbox-admin-token" content="([^"]+)">', page.text)
    assert token is not None
    headers = console_calls(sandbox, token.group(1))
    said = raw(
        sandbox,
        "POST",
        "/sandbox/admin/say",
        body=json.dumps({"user_id": BOB, "channel_id": GENERAL, "text": "from the console"}).encode(),
        headers=headers,
    )
    assert said.status == 200 and said.json()["ok"] is True
    assert [m["text"] for m in sandbox.messages(GENERAL)] == ["from the console"]
    advanced = raw(sandbox, "POST", "/sandbox/admin/clock/advance", body=b'{"seconds": 60}', headers=headers)
    assert advanced.status == 200 and advanced.json()["offset"] == 60
    assert raw(sandbox, "GET", "/sandbox/admin/state", headers=headers).json()["messages"][0]["text"] == "from the console"
    empty = raw(sandbox, "POST", f"/sandbox/admin/users/{ALICE}/revoke_tokens", headers={ADMIN_TOKEN_HEADER: token.group(1)})
    assert empty.status == 200  # no body, so no content type needed


def test_the_token_never_reaches_a_log_line(sandbox: SandboxServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request("GET", sandbox.url)
    admin(sandbox, "POST", "say", {"user_id": BOB, "channel_id": GENERAL, "text": "hi"})
    request("GET", f"{sandbox.url}sandbox/admin/state?token={sandbox.admin_token}", headers={ADMIN_TOKEN_HEADER: "bad"})
    bad = request("GET", f"{sandbox.url}sandbox/admin/state", headers={ADMIN_TOKEN_HEADER: sandbox.admin_token + "x"})
    assert bad.status == 401 and sandbox.admin_token not in bad.text
    assert caplog.records and not any(sandbox.admin_token in record.getMessage() for record in caplog.records)


# ----- the URL the sandbox posts to -----

NOT_LOOPBACK = [
    "http://evil.example/slack/events",
    "http://10.0.0.1:3000/slack/events",
    "http://127.0.0.1@evil.example/slack/events",
    "http://user:secret@127.0.0.1:3000/slack/events",
    "http://127.0.0.1.evil.example/slack/events",
    "http://[::ffff:10.0.0.1]/slack/events",
    "file:///etc/passwd",
    "ftp://127.0.0.1/x",
    "127.0.0.1:3000/slack/events",
    "http://0.0.0.0:3000/slack/events",
    "",
]


@pytest.mark.parametrize("url", NOT_LOOPBACK)
def test_a_request_url_off_loopback_is_refused_on_configure(sandbox: SandboxServer, url: str) -> None:
    before = sandbox.config.request_url
    reply = admin(sandbox, "POST", "config", {"request_url": url, "expires_in": 5})
    assert reply.status == 400 and reply.json()["error"] == "invalid_arguments"
    assert "loopback" in reply.json()["detail"] and "secret" not in reply.text
    with pytest.raises(SlackError, match="invalid_arguments"):
        sandbox.configure(request_url=url)
    assert sandbox.config.request_url == before and sandbox.config.expires_in == 43200


@pytest.mark.parametrize("url", NOT_LOOPBACK)
def test_a_request_url_off_loopback_is_refused_in_config(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(request_url=url)


def test_a_request_url_off_loopback_is_refused_by_the_cli() -> None:
    result = CliRunner().invoke(sandbox_command, ["serve", "--print-config", "--request-url", "http://evil.example/x"])
    assert result.exit_code == 2 and "--request-url" in result.output and "loopback" in result.output


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3000/slack/events", "http://localhost:3000/x", "http://[::1]:3000/x", "https://127.0.0.2/x"]
)
def test_loopback_request_urls_are_accepted(sandbox: SandboxServer, url: str) -> None:
    assert is_loopback_url(url) and SandboxConfig(request_url=url).request_url == url
    assert admin(sandbox, "POST", "config", {"request_url": url}).json()["config"]["request_url"] == url
    assert admin(sandbox, "POST", "config", {"request_url": None}).json()["config"]["request_url"] is None
    assert SandboxConfig().request_url == "http://127.0.0.1:3000/slack/events"


def test_other_bad_settings_are_a_400_that_changes_nothing(sandbox: SandboxServer) -> None:
    for changes in ({"expires_in": 60, "rate_limits": "nope"}, {"expires_in": "soon"}, {"event_retry_delays": 5}):
        reply = admin(sandbox, "POST", "config", changes)
        assert reply.status == 400 and reply.json()["error"] == "invalid_arguments", changes
    assert sandbox.config.expires_in == 43200 and sandbox.config.rate_limits == {}
    assert admin(sandbox, "POST", "clock/advance", {"seconds": "a while"}).status == 400


class Recorder(BaseHTTPRequestHandler):
    """Answers POSTs with `answer` and remembers the paths it was sent."""

    answer: tuple[int, dict[str, str]] = (200, {})
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the base class's naming
        type(self).seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers = self.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"inside")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def local_servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    """A loopback server that redirects every POST to a second one, which records what reaches it."""
    target_class = type("Target", (Recorder,), {"seen": [], "answer": (200, {})})
    target = ThreadingHTTPServer(("127.0.0.1", 0), target_class)
    location = f"http://127.0.0.1:{target.server_port}/inside"
    redirect_class = type("Redirect", (Recorder,), {"seen": [], "answer": (307, {"Location": location})})
    redirect = ThreadingHTTPServer(("127.0.0.1", 0), redirect_class)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (target, redirect)]
    for thread in threads:
        thread.start()
    yield redirect, target
    for server in (target, redirect):
        server.shutdown()
        server.server_close()


def test_deliveries_do_not_follow_redirects(
    sandbox: SandboxServer, local_servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer]
) -> None:
    redirect, target = local_servers
    sandbox.configure(request_url=f"http://127.0.0.1:{redirect.server_port}/slack/events")
    record = sandbox.send_slash_command(ALICE, "/delegate", "x", channel_id=GENERAL)
    assert record["status"] == 307 and record["error"] == "http_service_error" and record["body"] is None
    assert redirect.RequestHandlerClass.seen == ["/slack/events"]  # type: ignore[attr-defined]
    assert target.RequestHandlerClass.seen == []  # type: ignore[attr-defined]


def test_a_request_url_set_around_the_checks_is_not_posted_to(sandbox: SandboxServer) -> None:
    sandbox.config.request_url = "http://evil.example/slack/events"  # the dataclass is mutable; the delivery checks again
    record = sandbox.send_slash_command(ALICE, "/delegate", "x", channel_id=GENERAL)
    assert record["error"] == "request_url_not_loopback" and record["status"] is None


# ----- the consent page's Allow -----


def consent_form(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    query = {"client_id": sandbox.config.client_id, "scope": "commands", "state": "s1"}
    return {**query, "action": "allow", "user_id": ALICE, **extra}


def test_a_forged_allow_mints_no_code(sandbox: SandboxServer) -> None:
    forged = request("POST", sandbox.authorize_url, form=consent_form(sandbox))
    assert forged.status == 403 and "Location" not in forged.headers and "invalid_consent" in forged.text
    made_up = request("POST", sandbox.authorize_url, form=consent_form(sandbox, consent_token=f"{int(time.time())}.00"))
    assert made_up.status == 403
    query = {"client_id": sandbox.config.client_id, "scope": "commands", "state": "s1"}
    token = consent_token(sandbox, query)
    cross_site = request(
        "POST", sandbox.authorize_url, form=consent_form(sandbox, consent_token=token), headers={"Origin": EVIL}
    )
    assert cross_site.status == 403 and "Location" not in cross_site.headers
    with SandboxServer() as other:  # a token from another run's page does not count here
        other_token = consent_token(other, {**query, "client_id": other.config.client_id})
    assert request("POST", sandbox.authorize_url, form=consent_form(sandbox, consent_token=other_token)).status == 403
    assert sandbox.state.codes == {}


def test_allow_from_the_consent_page_still_works(sandbox: SandboxServer) -> None:
    query = {"client_id": sandbox.config.client_id, "scope": "commands", "state": "s1"}
    token = consent_token(sandbox, query)
    reply = request(
        "POST",
        sandbox.authorize_url,
        form=consent_form(sandbox, consent_token=token),
        headers={"Origin": own_origin(sandbox)},
    )
    assert reply.status == 302 and "code=" in reply.headers["Location"] and len(sandbox.state.codes) == 1
    page = request("GET", f"{sandbox.authorize_url}?{urlencode(query)}")
    assert sandbox.admin_token not in page.text


# ----- `python app.py sandbox serve` for scripts -----


def test_the_cli_writes_its_admin_token_for_scripts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token_file = tmp_path / "admin-token"
    process = subprocess.Popen(
        [sys.executable, "app.py", "sandbox", "serve", "--port", str(port), "--admin-token-file", str(token_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = request("GET", f"http://127.0.0.1:{port}/api/api.test")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
        assert reply.status == 200
        token = token_file.read_text(encoding="utf-8")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}/sandbox/admin/counters"
        assert request("GET", url).status == 401
        assert request("GET", url, headers={ADMIN_TOKEN_HEADER: token}).json()["ok"] is True
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "written to" in output and token not in output
