"""manifest.yml's listing information within Slack's limits, and its Marketplace block pointing at Delegate's pages.

The limits are those of Slack's published manifest schema (github.com/slackapi/manifest-schema,
schemas/manifest.schema.1.0.0.json: `display_information` and `app_directory`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from listeners.manifest import MANIFEST_PATH, load
from web.oauth import INSTALL_PATH
from web.wsgi import PRIVACY_PATH, SUPPORT_PATH

DISPLAY_LENGTHS = {"name": (1, 35), "description": (1, 140), "long_description": (175, 4000)}
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?")
URL_LENGTHS = {"direct_install_url": 255, "installation_landing_page": 255, "privacy_policy_url": 500, "support_url": 350}
DIRECTORY_REQUIRED = {
    "installation_landing_page",
    "privacy_policy_url",
    "support_url",
    "support_email",
    "supported_languages",
    "pricing",
}
EMAIL = re.compile(  # the schema's (HTML5's) pattern for an email address
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def display_problems(display: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a display_information section: unknown fields, lengths, the colour's form."""
    problems = [f"unknown field {key}" for key in display if key not in (*DISPLAY_LENGTHS, "background_color")]
    if "name" not in display:
        problems.append("name is required")
    for key, (least, most) in DISPLAY_LENGTHS.items():
        if key in display and not (isinstance(display[key], str) and least <= len(display[key]) <= most):
            problems.append(f"{key} must be {least} to {most} characters")
    color = display.get("background_color")
    if color is not None and not (isinstance(color, str) and HEX_COLOR.fullmatch(color)):
        problems.append("background_color must be #rgb or #rrggbb")
    return problems


def marketplace_block() -> dict[str, Any]:
    """The commented-out app_directory section at the end of manifest.yml, parsed as it reads once uncommented."""
    lines = MANIFEST_PATH.read_text(encoding="utf-8").splitlines()
    start = lines.index("# app_directory:")
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    return dict(yaml.safe_load("\n".join(block))["app_directory"])


def test_display_information_has_every_listing_field_within_slacks_limits() -> None:
    display = load()["display_information"]
    assert set(display) == {"name", "description", "long_description", "background_color"}
    assert display_problems(display) == []


@pytest.mark.parametrize(
    "change",
    [
        {"long_description": "Too short for the listing."},
        {"long_description": "x" * 4001},
        {"description": "x" * 141},
        {"name": "x" * 36},
        {"background_color": "2c3e50"},
        {"background_color": "#2c3e5"},
        {"background_color": "#2c3e5g"},
        {"tagline": "not a field Slack knows"},
    ],
)
def test_the_check_refuses_what_slack_refuses(change: dict[str, str]) -> None:
    assert display_problems({**load()["display_information"], **change})


def test_the_marketplace_block_is_complete_and_points_at_delegates_own_pages() -> None:
    section = marketplace_block()
    assert DIRECTORY_REQUIRED <= set(section) <= DIRECTORY_REQUIRED | {"use_direct_install", "direct_install_url"}
    for key, most in URL_LENGTHS.items():
        assert re.match(r"https?://", section[key]) and len(section[key]) <= most, key
    assert EMAIL.fullmatch(section["support_email"]) and len(section["support_email"]) <= 100
    assert 1 <= len(section["supported_languages"]) <= 50 and 1 <= len(section["pricing"]) <= 30
    assert section["use_direct_install"] is True
    paths = {key: urlsplit(section[key]).path for key in URL_LENGTHS}
    assert paths == {
        "direct_install_url": INSTALL_PATH,
        "installation_landing_page": "/",
        "privacy_policy_url": PRIVACY_PATH,
        "support_url": SUPPORT_PATH,
    }
    hosts = {urlsplit(section[key]).netloc for key in URL_LENGTHS}
    assert hosts == {urlsplit(load()["oauth_config"]["redirect_urls"][0]).netloc}  # the one host to replace
