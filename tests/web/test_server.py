"""web/server.py over real sockets: only whole requests within the limits reach the app, and slow clients hold no thread."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from web.server import BODY_LIMIT, HEADER_LIMIT, BufferedServer, serve_threaded

LIVENESS = 30.0  # generous: only says the server answered at all


class Recorder:
    """A WSGI app that remembers every request it was handed and echoes its body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, dict[str, str]]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], body, headers))
        start_response("200 OK", [("content-type", "application/octet-stream"), ("content-length", str(len(body)))])
        return [body]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def port(recorder: Recorder) -> Iterator[int]:
    """serve_threaded, as Socket Mode's OAuth pages, the sandbox mode and the end-to-end tests use it."""
    server, thread = serve_threaded(recorder, "127.0.0.1", 0)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def quick_port(recorder: Recorder) -> Iterator[int]:
    """The same server with one request thread and deadlines of a second or two, so the tests wait less."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = BufferedServer(recorder, [sock], threads=1, header_timeout=1.0, body_timeout=2.0, idle_timeout=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, then read until the server closes the connection.

    A server that answers before it has read everything (431, 413) closes with bytes unread, which resets the
    connection: what it sent before the reset is its answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=LIVENESS) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_whole_requests_reach_the_app_on_one_kept_alive_connection(port: int, recorder: Recorder) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LIVENESS)
    try:
        for n in range(3):
            connection.request("POST", f"/slack/events?n={n}", body=f"payload {n}".encode())
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, f"payload {n}".encode())
    finally:
        connection.close()
    assert [(method, path, body) for method, path, body, _ in recorder.requests] == [
        ("POST", "/slack/events", f"payload {n}".encode()) for n in range(3)
    ]


def test_a_carriage_return_inside_a_header_value_is_refused(port: int, recorder: Recorder) -> None:
    answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\rSet-Cookie: b\r\n\r\n")
    assert status_of(answer) == 400
    assert recorder.requests == []


def test_a_line_feed_inside_a_header_value_is_refused(port: int, recorder: Recorder) -> None:
    answer = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\nSet-Cookie: b\r\n\r\n")
    assert status_of(answer) == 400
    assert recorder.requests == []


def test_headers_past_the_limit_get_431_and_never_reach_the_app(port: int, recorder: Recorder) -> None:
    answer = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * HEADER_LIMIT + b"\r\n\r\n")
    assert status_of(answer) == 431
    assert recorder.requests == []


def test_headers_under_the_limit_reach_the_app(port: int, recorder: Recorder) -> None:
    value = "a" * (HEADER_LIMIT - 1024)
    answer = exchange(port, f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {value}\r\nConnection: close\r\n\r\n".encode())
    assert status_of(answer) == 200
    assert recorder.requests[0][3]["HTTP_X_BIG"] == value


def test_a_body_past_the_limit_gets_413_before_it_is_sent(port: int, recorder: Recorder) -> None:
    answer = exchange(port, f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_LIMIT}\r\n\r\n".encode())
    assert status_of(answer) == 413
    assert recorder.requests == []


def test_a_chunked_body_past_the_limit_gets_413(port: int, recorder: Recorder) -> None:
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = exchange(port, head + chunk * (BODY_LIMIT // (64 * 1024) + 1) + b"0\r\n\r\n")
    assert status_of(answer) == 413
    assert recorder.requests == []


def test_a_body_a_little_over_one_mebibyte_reaches_the_app_whose_own_guard_answers_it(
    port: int, recorder: Recorder
) -> None:
    body = b"a" * (1024 * 1024 + 1)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    answer = exchange(port, head + body)
    assert status_of(answer) == 200
    assert recorder.requests[0][2] == body


def trickle(port: int, first: bytes, then: bytes, every: float) -> tuple[bytes, int]:
    """Send first, then one piece of then every `every` seconds until the server answers; returns its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=LIVENESS) as sock:
        sock.sendall(first)
        deadline = time.monotonic() + LIVENESS
        sent = 0
        sock.settimeout(every)
        while time.monotonic() < deadline:
            try:
                answer = sock.recv(65536)
                return answer, sent
            except TimeoutError:
                sock.sendall(then)
                sent += 1
        raise AssertionError("the server never let go of a slow client")


def test_headers_that_never_end_get_408_though_the_client_is_never_silent(quick_port: int, recorder: Recorder) -> None:
    answer, lines = trickle(quick_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n", every=0.2)
    assert status_of(answer) == 408
    assert lines > 0
    assert recorder.requests == []


def test_a_body_that_never_ends_gets_408_though_the_client_is_never_silent(quick_port: int, recorder: Recorder) -> None:
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    answer, pieces = trickle(quick_port, head, b"a", every=0.2)
    assert status_of(answer) == 408
    assert pieces > 0
    assert recorder.requests == []


def test_a_request_stalled_halfway_gets_408(quick_port: int, recorder: Recorder) -> None:
    answer = exchange(quick_port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    assert status_of(answer) == 408
    assert recorder.requests == []


def test_a_silent_connection_is_closed(quick_port: int) -> None:
    assert exchange(quick_port, b"") == b""


def test_slow_clients_hold_no_request_thread(quick_port: int, recorder: Recorder) -> None:
    """Ten connections halfway through their headers, and the server's only request thread still answers."""
    slow = [socket.create_connection(("127.0.0.1", quick_port), timeout=LIVENESS) for _ in range(10)]
    try:
        for sock in slow:
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
        connection = http.client.HTTPConnection("127.0.0.1", quick_port, timeout=LIVENESS)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        for sock in slow:
            sock.close()
    assert [path for _, path, _, _ in recorder.requests] == ["/healthz"]
