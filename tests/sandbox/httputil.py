"""A tiny HTTP helper for the sandbox tests that never follows redirects, and the admin API and consent form on it."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.server import SandboxServer


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def request(
    method: str, url: str, *, form: dict[str, str] | None = None, body: Any = None, headers: dict[str, str] | None = None
) -> Reply:
    """Send one request and return status, headers and text, whatever the status."""
    data: bytes | None = None
    headers = dict(headers or {})
    if form is not None:
        data = urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=10) as response:
            return Reply(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read().decode())


def admin(sandbox: SandboxServer, method: str, path: str, body: Any = None) -> Reply:
    """An admin API call as a script makes it: the run's admin token, JSON, no Origin."""
    return request(method, f"{sandbox.url}sandbox/admin/{path}", body=body, headers=sandbox.admin_headers)


def consent_token(sandbox: SandboxServer, query: dict[str, str]) -> str:
    """The consent_token of the consent page the sandbox shows for `query`, as a browser would submit it."""
    page = request("GET", f"{sandbox.authorize_url}?{urlencode(query)}")
    found = re.search(r"name='consent_token' value='([^']+)'", page.text)
    assert found is not None, page.text
    return found.group(1)
