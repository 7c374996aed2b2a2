"""Fixtures of the command-line tests: a sandbox for the commands that call Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox


@pytest.fixture
def slack() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server
