"""Test helpers: `running_sandbox()` starts a sandbox on a free port, and `sandbox_fixture` wraps it for pytest.

Use it from any conftest::

    from sandbox.testing import sandbox_fixture
    sandbox = sandbox_fixture()                       # a fresh sandbox per test
    shared_sandbox = sandbox_fixture(scope="module")  # one per module
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer


@contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SandboxServer]:
    """A started SandboxServer (on a free port unless `port` is given), stopped on exit."""
    server = SandboxServer(config, host=host, port=port).start()
    try:
        yield server
    finally:
        server.stop()


def sandbox_fixture(config_factory: Callable[[], SandboxConfig] | None = None, *, scope: str = "function") -> Any:
    """A pytest fixture yielding a running SandboxServer built from `config_factory()` (default config if None)."""
    import pytest

    @pytest.fixture(scope=scope)  # type: ignore[call-overload, untyped-decorator]
    def _sandbox() -> Iterator[SandboxServer]:
        with running_sandbox(config_factory() if config_factory else None) as server:
            yield server

    return _sandbox
