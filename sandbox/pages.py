"""HTML pages from `sandbox/templates`, filled with `string.Template` (callers escape what they insert)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: str) -> str:
    """The template `name` with `$placeholders` replaced by already-escaped `values`."""
    return _template(name).substitute(values)
