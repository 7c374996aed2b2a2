"""What the sandbox's state file costs: oauth.v2.access refreshes per call, in memory and with a state file.

One sandbox per mode on a free port; a chain of refresh_token grants (each uses the refresh token the previous one
returned) sent one at a time over HTTP. With a state file every answer waits for its rows to be committed, and every
save serializes the whole state, so the cost grows with what the sandbox holds: the chain is measured from an empty
state and again after `--preload` more tokens have been issued.

    .venv/bin/python -m benchmarks.sandbox_state [--calls 300] [--preload 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from sandbox.server import SandboxServer


def refresh_chain(server: SandboxServer, refresh_token: str, calls: int) -> tuple[list[float], str]:
    """Milliseconds per oauth.v2.access refresh, `calls` times in a row on one keep-alive connection, and the last
    refresh token, unused."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    timings: list[float] = []
    try:
        for _ in range(calls):
            body = urlencode(
                {
                    "client_id": server.config.client_id,
                    "client_secret": server.config.client_secret,
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                }
            )
            started = time.perf_counter()
            connection.request(
                "POST", "/api/oauth.v2.access", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            answer = json.loads(connection.getresponse().read())
            timings.append((time.perf_counter() - started) * 1000)
            assert answer["ok"], answer
            refresh_token = answer["refresh_token"]
    finally:
        connection.close()
    return timings, refresh_token


def measure(state_path: Path | None, calls: int, preload: int) -> dict[str, float]:
    """Median and p95 per refresh from an empty state and after `preload` more tokens, for one mode."""
    figures: dict[str, float] = {}
    with SandboxServer(state_path=state_path) as server:
        installed = server.install("U0ALICE001", user_scope="chat:write")
        refresh_token = installed["authed_user"]["refresh_token"]
        for label, count in (("empty", 0), (f"+{preload} tokens", preload)):
            for _ in range(count):
                server.state.issue_token("user", "T0SANDBOX1", "U0BOB00002", ["chat:write"], "authorization_code")
            server.state.persist()
            timings, refresh_token = refresh_chain(server, refresh_token, calls)
            figures[f"{label} median"] = statistics.median(timings)
            figures[f"{label} p95"] = statistics.quantiles(timings, n=20)[-1]
        if server.state.store is not None:
            server.state.store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--preload", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = {
            "in memory": measure(None, args.calls, args.preload),
            "state file": measure(Path(folder) / "sandbox-slack.sqlite3", args.calls, args.preload),
        }
    columns = list(next(iter(rows.values())))
    print(f"oauth.v2.access refresh, ms per call ({args.calls} calls each)")
    print(f"{'':12}" + "".join(f"{column:>22}" for column in columns))
    for name, figures in rows.items():
        print(f"{name:12}" + "".join(f"{figures[column]:>22.2f}" for column in columns))


if __name__ == "__main__":
    main()
