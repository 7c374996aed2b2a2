"""The pieces one running sandbox is made of, shared by the HTTP handlers, the admin API and SandboxServer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from sandbox.config import SandboxConfig
from sandbox.delivery import Delivery
from sandbox.socket_mode import SocketHub
from sandbox.state import SandboxState


@dataclass
class Runtime:
    """Config, state, Socket Mode hub and delivery of one sandbox, the URL the app reaches it at, and its reset hook."""

    config: SandboxConfig
    state: SandboxState
    hub: SocketHub
    delivery: Delivery
    on_reset: Callable[[], None] | None = None

    @classmethod
    def build(cls, config: SandboxConfig, state: SandboxState | None = None) -> Runtime:
        """Wire a fresh runtime for `config`."""
        state = state or SandboxState(config)
        hub = SocketHub(state)
        return cls(config=config, state=state, hub=hub, delivery=Delivery(state, hub))

    @property
    def base_url(self) -> str:
        """The sandbox's root URL as the app sees it, ending in `/`."""
        return self.delivery.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.delivery.base_url = value.rstrip("/") + "/"


RUNTIME = web.AppKey("sandbox_runtime", Runtime)
