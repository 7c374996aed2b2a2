"""The load generator of benchmarks/ack_throughput.py: signed slash commands from processes of their own.

Two clients, each sending every command on a new connection (as the benchmark always has) for a fixed time:
- `wrk` (Debian's package: C, one epoll loop per thread), driven by a Lua script that cycles through commands
  signed here just before the run (a signature holds for 5 minutes; each run is shorter);
- a Python client, for machines without wrk and for the smoke test: `processes` processes of threads, forked.
Both return the same figures: requests answered, errors by kind, p50 and p99 latency, and the client's own CPU time.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox.delivery import sign as slack_signature

from .report import percentile

__all__ = ["slash_command", "wrk_available", "run_python", "run_wrk"]

USER, TEAM, CHANNEL = "U0ALICE001", "T0SANDBOX1", "C0GENERAL1"
COMMAND, TEXT = "/post-as-me", "benchmark message"
PATH = "/slack/events"


def slash_command(signing_secret: str, trigger: int = 0) -> tuple[str, dict[str, str]]:
    """One signed /post-as-me as Slack sends it: the form body and its headers."""
    body = urlencode(
        {
            "team_id": TEAM, "team_domain": "sandbox-inc", "channel_id": CHANNEL, "channel_name": "general",
            "user_id": USER, "user_name": "alice", "command": COMMAND, "text": TEXT, "api_app_id": "A0SANDBOXAP",
            "is_enterprise_install": "false", "response_url": "http://127.0.0.1:9/none", "trigger_id": f"1.2.{trigger}",
        }
    )  # fmt: skip
    timestamp = str(int(time.time()))
    return body, {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": slack_signature(signing_secret, timestamp, body.encode()),
    }


def _figures(answered: int, seconds: float, latencies_ms: list[float], errors: dict[str, int], cpu: float) -> dict[str, Any]:
    return {
        "answered": answered,
        "seconds": seconds,
        "p50_ms": percentile(latencies_ms, 0.5) if latencies_ms else None,
        "p99_ms": percentile(latencies_ms, 0.99) if latencies_ms else None,
        "errors": errors,
        "client_cpu_s": cpu,
    }


# -- wrk ---------------------------------------------------------------------------------------------------------

_LUA = """
local raw = {
%s
}
local requests = {}
local next = 0
init = function(args)
  for i, r in ipairs(raw) do
    requests[i] = wrk.format("POST", "%s", r[1], r[2])
  end
end
request = function()
  next = next %% #requests + 1
  return requests[next]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, '
    .. '"timeout": %%d, "p50_us": %%.1f, "p99_us": %%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua(signing_secret: str, count: int = 64) -> str:
    entries = []
    for trigger in range(count):
        body, headers = slash_command(signing_secret, trigger)
        headers = {**headers, "connection": "close"}  # a new connection per command, as before
        fields = ", ".join(f'["{name}"] = "{value}"' for name, value in headers.items())
        entries.append(f"  {{ {{ {fields} }}, [==[{body}]==] }},")
    return _LUA % ("\n".join(entries), PATH)


def run_wrk(port: int, concurrency: int, seconds: float, signing_secret: str) -> dict[str, Any]:
    """wrk for `seconds` with `concurrency` connections at once (on one or two threads)."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "commands.lua"
        script.write_text(_lua(signing_secret), encoding="utf-8")
        threads = min(concurrency, 2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s",
             str(script), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"^WRK (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    result = json.loads(found.group(1))
    errors = {name: int(result[name]) for name in ("connect", "read", "write", "status", "timeout") if result[name]}
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    figures = _figures(int(result["requests"]), result["duration_us"] / 1e6, [], errors, cpu)
    figures.update(p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000)
    return figures


# -- Python ------------------------------------------------------------------------------------------------------


def _one_process(port: int, threads: int, seconds: float, signing_secret: str, queue: Any) -> None:
    """threads threads sending commands one after another until the time is up; puts (latencies, errors, cpu, s)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    started, began = time.process_time(), time.perf_counter()
    deadline = time.monotonic() + seconds

    def send() -> None:
        trigger = 0
        while time.monotonic() < deadline:
            trigger += 1
            body, headers = slash_command(signing_secret, trigger)
            began = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("POST", PATH, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                kind = None if response.status == 200 else "status"
            except OSError:
                kind = "connect"
            finally:
                connection.close()
            with lock:
                if kind is None:
                    latencies.append(1000 * (time.perf_counter() - began))
                else:
                    errors[kind] = errors.get(kind, 0) + 1

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, errors, time.process_time() - started, time.perf_counter() - began))


def run_python(port: int, concurrency: int, seconds: float, signing_secret: str) -> dict[str, Any]:
    """Python processes (up to 4) of threads, `concurrency` threads in all, forked from this process."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    count = min(concurrency, 4, os.cpu_count() or 1) or 1
    shares = [concurrency // count + (1 if i < concurrency % count else 0) for i in range(count)]
    processes = [context.Process(target=_one_process, args=(port, n, seconds, signing_secret, queue)) for n in shares]
    for process in processes:
        process.start()
    results = [queue.get(timeout=seconds + 60) for _ in processes]
    for process in processes:
        process.join(10)
    elapsed = max(result[3] for result in results)
    latencies = [latency for result in results for latency in result[0]]
    errors: dict[str, int] = {}
    for result in results:
        for kind, number in result[1].items():
            errors[kind] = errors.get(kind, 0) + number
    return _figures(len(latencies), elapsed, latencies, errors, sum(result[2] for result in results))
