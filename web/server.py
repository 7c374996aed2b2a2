"""Delegate's HTTP server: waitress's I/O loop and request threads, run on its own or as a gunicorn worker class.

Why not gunicorn's sync workers (what `python app.py run` used before): a sync worker reads a request on the one
thread it has, so a client that sends a header line every 5 s owns that worker until gunicorn's 30 s timeout
SIGKILLs it, taking the lazy listeners' work after the ack and the refresher with it. Measured on this 2-core
machine with benchmarks/slow_clients.py (two workers, two slow connections): `/healthz` took 31 s and both
workers were killed; with four or twenty, `/healthz` had no answer within 40 s. gunicorn's gthread worker
(gunicorn 27) only waits 5 s for a connection's first byte off a thread; once a byte has come it parses the rest
on a request thread with a blocking read, so slow clients hold its threads and it never closes them (measured, two
workers of 4 threads: four slow connections landed on one worker and a `/healthz` probe got no answer within 40 s;
with twenty, none did). gevent was not tried: it needs the whole process monkey-patched (the database drivers, the
token manager's locks and threads) for a server that only needs to parse requests off its threads.

waitress reads and parses every request in one I/O loop (poll) and hands a request to its threads only once its
headers and body have arrived whole, so slow clients cost a file descriptor each, never a thread. It only has an
idle timeout, which a client sending a byte every few seconds never trips, so the channel here adds a deadline for
the headers and one for the body (a 408, then the connection closes). `WaitressWorker` runs that server on the
listening sockets a gunicorn worker inherits, keeping gunicorn's arbiter (processes, restarts, signals, the
refresh budget per process), and heartbeats the arbiter from the I/O loop, which slow clients cannot stall. With
that worker the same benchmark answers every `/healthz` probe for 35 s (median 1.6 to 2.3 ms) with 2, 4 and 20 slow
connections, each cut after about 5.5 s, and no worker killed (README, Benchmarks). The price is the hand-off from
the I/O loop to a request thread: benchmarks/ack_throughput.py, run alternately with sync workers on a quiet machine,
spent about 0.5 ms more CPU per slash command (2.2-2.5 ms against 1.75-1.9 ms); Delegate still acknowledges about
42 times as many commands per second as stock Bolt (median of 13 runs).

gunicorn settings the worker honours: bind, workers, `threads` (when above 1; else 8 per worker),
`worker_connections` (open connections per worker), backlog, timeout (the heartbeat), graceful_timeout, max_requests,
accesslog and access_log_format. It serves plain HTTP only (terminate TLS in front of it). Since the heartbeat
comes from the I/O loop, gunicorn restarts a worker whose loop is stuck, not one whose request threads all hang on
something (gthread's heartbeat is the same); pre_request and post_request hooks are not called.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer, UnixWSGIServer
from waitress.task import ThreadedTaskDispatcher

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "BODY_LIMIT",
    "BODY_TIMEOUT",
    "HEADER_LIMIT",
    "HEADER_TIMEOUT",
    "IDLE_TIMEOUT",
    "BufferedServer",
    "WaitressWorker",
    "serve_threaded",
]

HEADER_LIMIT = 16 * 1024  # the request line and every header together: 431 past it
BODY_LIMIT = 1024 * 1024 + 64 * 1024  # a little over the app's own 1 MiB limit, so that the app answers first: 413
HEADER_TIMEOUT = 5.0  # seconds from a request's first byte to the end of its headers: 408
BODY_TIMEOUT = 10.0  # seconds from the end of its headers to the end of its body: 408
IDLE_TIMEOUT = 5  # seconds a connection may stay silent both ways (between requests too) before it is closed
THREADS = 8  # request threads per server; the slow work runs on Bolt's lazy-listener threads
CONNECTION_LIMIT = 1000  # open connections per server; past it, new ones wait in the listen backlog
LOOP_TIMEOUT = 0.5  # seconds the I/O loop sleeps at most, between heartbeats and stop checks

AccessLogger = Callable[["WSGIEnvironment", str, list[tuple[str, str]], int, float], None]

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\n"
    b"Connection: close\r\n\r\nThe request took too long to arrive.\n"
)


class _DeadlineChannel(HTTPChannel):  # type: ignore[misc]
    """waitress's connection, which also knows when the request it is receiving began and when its headers ended."""

    _receiving: Any = None  # the partial request the two times below belong to
    _started = 0.0
    _headers_ended = 0.0

    def received(self, data: bytes) -> bool:
        now = time.monotonic()
        result = bool(super().received(data))
        request = self.request
        if request is not None:
            if request is not self._receiving:
                self._receiving, self._started, self._headers_ended = request, now, 0.0
            if request.headers_finished and not self._headers_ended:
                self._headers_ended = now
        return result

    def overdue(self, now: float, *, silent_since: float) -> bool:
        """Whether the request being received has missed a deadline, or stalled (never while one is being served)."""
        request = self.request
        if request is None or request is not self._receiving or self.requests or self.close_when_flushed:
            return False
        if self.last_activity < silent_since:
            return True
        if not self._headers_ended:
            return now - self._started > self.server.header_timeout
        return now - self._headers_ended > self.server.body_timeout

    def time_out(self) -> None:
        """Answer 408 and close once it is sent (no thread is serving this connection, so the I/O loop writes)."""
        with self.outbuf_lock:
            self.outbufs[-1].append(_TIMED_OUT)
            self.total_outbufs_len += len(_TIMED_OUT)
        with self.requests_lock:
            self.request = self._receiving = None
            self.close_when_flushed = True


class _Deadlines:
    """What both kinds of listener do instead of waitress's idle check: idle, header and body deadlines, every second."""

    channel_class = _DeadlineChannel
    active_channels: dict[int, _DeadlineChannel]
    adj: Adjustments
    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def maintenance(self, now: float) -> None:
        clock = time.monotonic()
        silent_since = now - self.adj.channel_timeout  # waitress's last_activity is wall-clock time
        for channel in list(self.active_channels.values()):
            if channel.requests:
                continue  # a thread is serving it: the app's business, not the client's
            if channel.overdue(clock, silent_since=silent_since):
                channel.time_out()
            elif channel.last_activity < silent_since:
                channel.will_close = True


class _TcpListener(_Deadlines, TcpWSGIServer):  # type: ignore[misc]
    pass


class _UnixListener(_Deadlines, UnixWSGIServer):  # type: ignore[misc]
    pass


def _connection_limit(wanted: int) -> int:
    """Open connections allowed per server: what was asked, within the process's file descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + 256  # the database pool, the log files, Slack calls and the lazy listeners' sockets
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (OSError, ValueError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - 256))


class BufferedServer:
    """waitress serving one WSGI app on listening sockets, with Delegate's limits and deadlines."""

    def __init__(
        self,
        app: WSGIApplication,
        sockets: Sequence[socket.socket],
        *,
        threads: int = THREADS,
        connection_limit: int = CONNECTION_LIMIT,
        backlog: int = 1024,
        log: AccessLogger | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        idle_timeout: int = IDLE_TIMEOUT,
    ):
        self.log = log
        self.header_timeout, self.body_timeout = header_timeout, body_timeout
        self.adjustments = Adjustments(
            threads=threads,
            connection_limit=_connection_limit(connection_limit),
            backlog=backlog,
            channel_timeout=idle_timeout,
            cleanup_interval=1,
            max_request_header_size=HEADER_LIMIT,
            max_request_body_size=BODY_LIMIT,
            asyncore_use_poll=True,  # select() stops at file descriptor 1024
            ident="Delegate",  # the Server header, and SERVER_SOFTWARE (a string, as WSGI wants)
        )
        self.map: dict[int, Any] = {}
        self.dispatcher = ThreadedTaskDispatcher()
        self.dispatcher.set_thread_count(threads)
        self.listeners = [self._listener(self._logged(app), sock) for sock in sockets]
        self._stop = threading.Event()
        self._stopped = threading.Event()

    def _logged(self, app: WSGIApplication) -> WSGIApplication:
        return app if self.log is None else AccessLog(app, self.log)

    def _listener(self, app: WSGIApplication, sock: socket.socket) -> Any:
        kind = _UnixListener if sock.family == getattr(socket, "AF_UNIX", None) else _TcpListener
        listener = kind(
            app,
            self.map,
            _sock=sock,
            dispatcher=self.dispatcher,
            adj=self.adjustments,
            bind_socket=False,
            sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()),
        )
        listener.header_timeout, listener.body_timeout = self.header_timeout, self.body_timeout
        return listener

    @property
    def server_address(self) -> Any:
        return self.listeners[0].socket.getsockname()

    def set_app(self, app: WSGIApplication) -> None:
        """Serve another WSGI app from the next request on."""
        for listener in self.listeners:
            listener.application = self._logged(app)

    def serve(self, *, until: Callable[[], bool] = lambda: False, tick: Callable[[], None] = lambda: None) -> None:
        """Run the I/O loop until until() is true or shutdown() is called, calling tick() about every second."""
        next_tick = 0.0
        try:
            while not (self._stop.is_set() or until()):
                wasyncore.loop(timeout=LOOP_TIMEOUT, map=self.map, use_poll=True, count=1)
                now = time.monotonic()
                if now >= next_tick:
                    tick()
                    next_tick = now + 1.0
        finally:
            self._stopped.set()

    def serve_forever(self) -> None:
        self.serve()

    def drain(self, timeout: float, tick: Callable[[], None] = lambda: None) -> None:
        """Stop accepting, finish the requests already received (for at most timeout seconds), then close all."""
        for listener in self.listeners:
            listener.accepting = False
            listener.del_channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = False
            for channel in [c for c in self.map.values() if isinstance(c, HTTPChannel)]:
                if channel.requests or channel.total_outbufs_len:
                    busy = True
                elif not channel.will_close:
                    channel.will_close = True  # idle, or still receiving: nothing of it reached the app
            if not busy:
                break
            wasyncore.loop(timeout=0.1, map=self.map, use_poll=True, count=1)
            tick()
        self.dispatcher.shutdown(timeout=max(0.1, deadline - time.monotonic()))
        wasyncore.close_all(self.map, ignore_all=True)

    def shutdown(self) -> None:
        """Stop serve() from another thread and wait until it has returned (as socketserver's shutdown does)."""
        self._stop.set()
        if self.listeners:
            self.listeners[0].pull_trigger()
        self._stopped.wait(10)
        self.drain(timeout=5)

    def server_close(self) -> None:
        for listener in self.listeners:
            try:
                listener.socket.close()
            except OSError:
                pass


def _close_then_report(body: object, done: Callable[[int], None], sent: int) -> None:
    """Close the app's response body as WSGI asks (when it can be closed), then report how many bytes were sent."""
    try:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    finally:
        done(sent)


class _SentList(list[bytes]):
    """A response body that is a list (Bolt's): kept a list, so that the server still sees its length."""

    def __init__(self, body: list[bytes], done: Callable[[int], None]):
        super().__init__(body)
        self.done = done
        self.original = body

    def close(self) -> None:
        _close_then_report(self.original, self.done, sum(len(chunk) for chunk in self))


class _Sent:
    """Any other response body, passed through chunk by chunk and counted."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]):
        self.body = body
        self.done = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        _close_then_report(self.body, self.done, self.sent)


class AccessLog:
    """WSGI middleware that reports each request once its response is sent: log(environ, status, headers, bytes, s)."""

    def __init__(self, app: WSGIApplication, log: AccessLogger):
        self.app = app
        self.log = log

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": "500", "headers": []}

        def recording(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)

        def done(sent: int) -> None:
            self.log(environ, seen["status"], seen["headers"], sent, time.perf_counter() - started)

        body = self.app(environ, recording)
        return _SentList(body, done) if isinstance(body, list) else _Sent(body, done)


def _quiet_log(environ: WSGIEnvironment, status: str, headers: list[tuple[str, str]], sent: int, seconds: float) -> None:
    import logging

    # PATH_INFO has no query string, which may carry an OAuth code
    logging.getLogger("delegate.http").info(
        "%s %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status.split(" ", 1)[0]
    )


def serve_threaded(wsgi_app: WSGIApplication, host: str, port: int) -> tuple[BufferedServer, threading.Thread]:
    """The server in a background thread of this process (Socket Mode's OAuth pages, the sandbox mode, tests)."""
    sock = socket.create_server((host, port), backlog=1024)
    try:
        server = BufferedServer(wsgi_app, [sock], log=_quiet_log)
    except BaseException:
        sock.close()
        raise
    thread = threading.Thread(target=server.serve_forever, name="delegate-http", daemon=True)
    thread.start()
    return server, thread


class _Response:
    """What gunicorn's access log reads of a response."""

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int):
        self.status, self.headers, self.sent = status, headers, sent


class WaitressWorker(Worker):  # type: ignore[misc]
    """A gunicorn worker serving through BufferedServer: gunicorn -k web.server.WaitressWorker 'app:create_wsgi_app()'."""

    alive: bool  # set by gunicorn's Worker, which has no type hints
    nr: int
    max_requests: int

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if cfg.is_ssl:
            raise SystemExit("web.server.WaitressWorker serves plain HTTP: terminate TLS in front of gunicorn")

    def run(self) -> None:
        server = BufferedServer(
            self.wsgi,
            [listener.sock for listener in self.sockets],
            threads=self.cfg.threads if self.cfg.threads > 1 else THREADS,
            connection_limit=self.cfg.worker_connections,
            backlog=self.cfg.backlog,
            log=self._log_access,
        )
        server.serve(until=self._stopping, tick=self._heartbeat)
        stopping = time.monotonic()
        server.drain(self.cfg.graceful_timeout, tick=self._heartbeat)
        # What else the app runs (the refresher) stops within what is left of graceful_timeout; the work after the
        # ack, on the listener executor's threads, is waited for by the interpreter's exit.
        stop = getattr(self.wsgi, "stop", None)
        if callable(stop):
            stop(max(0.1, self.cfg.graceful_timeout - (time.monotonic() - stopping) - 0.5))

    def _stopping(self) -> bool:
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            return True
        return not self.alive

    def _heartbeat(self) -> None:
        self.notify()  # the arbiter kills a worker whose heartbeat file is older than its timeout
        try:
            while os.read(self.PIPE[0], 4096):  # the signal wakeup pipe, which nothing else reads here
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _log_access(
        self, environ: WSGIEnvironment, status: str, headers: list[tuple[str, str]], sent: int, seconds: float
    ) -> None:
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        request_headers = [(k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")]
        environ = {**environ, "RAW_URI": environ.get("REQUEST_URI", environ.get("PATH_INFO", ""))}
        self.log.access(_Response(status, headers, sent), request_headers, environ, timedelta(seconds=seconds))
