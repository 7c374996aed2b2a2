"""What a browser sees: the OAuth install and connect flows, their result pages, and the WSGI entry point."""

from .oauth import DelegateOAuthFlow, build_oauth_settings
from .wsgi import DelegateWSGI

__all__ = ["DelegateOAuthFlow", "DelegateWSGI", "build_oauth_settings"]
