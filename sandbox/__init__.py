"""An offline stand-in for slack.com: OAuth, the Web API, delivery to the app, Socket Mode and a console."""

from sandbox.config import SandboxChannel, SandboxConfig, SandboxTeam, SandboxUser
from sandbox.errors import SlackError
from sandbox.server import SandboxServer, create_app
from sandbox.testing import running_sandbox, sandbox_fixture

__all__ = [
    "SandboxChannel",
    "SandboxConfig",
    "SandboxServer",
    "SandboxTeam",
    "SandboxUser",
    "SlackError",
    "create_app",
    "running_sandbox",
    "sandbox_fixture",
]
