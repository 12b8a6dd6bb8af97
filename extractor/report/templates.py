"""The jinja2 environment of the report's HTML and SVG templates (``extractor/data/report/``).

Templates (``*.j2``) are written for people to read: a line break followed by indentation
in a template is layout only and is removed when the template is loaded, so the output is
what the markup says and nothing more; ``{{ NL }}`` writes a line break into the output.
Never break a ``{% %}`` / ``{{ }}`` tag or a run of text across lines.

Every value a template prints is escaped with :func:`html.escape` (``quote=True``: in text
and in attributes), unless it is :class:`markupsafe.Markup` (the output of a macro, or the
packaged CSS and script).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from extractor.report.words import plural
from extractor.resources import package_data_dir

_LAYOUT = re.compile(r"\n[ \t]*")


def template_dir() -> Path:
    """Where the report's templates, CSS and script live (package data)."""
    return package_data_dir() / "report"


class LayoutLoader(jinja2.FileSystemLoader):
    """Loads ``*.j2`` templates with their layout line breaks removed (see the module docstring)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, path, uptodate = super().get_source(environment, template)
        if template.endswith(".j2"):
            source = _LAYOUT.sub("", source)
        return source, path, uptodate


def escape(value: Any) -> Markup:
    """What every ``{{ value }}`` becomes: Markup as it is, anything else through ``html.escape``."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def asset(name: str) -> Markup:
    """A packaged static file (CSS, script) to inline as it is: it holds no input."""
    return Markup((template_dir() / name).read_text("utf-8"))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=LayoutLoader(str(template_dir())), autoescape=True, finalize=escape,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals.update(NL=Markup("\n"), plural=plural, asset=asset)
    env.filters["fmt"] = format
    return env


def render(name: str, **context: Any) -> str:
    """Render the packaged template ``name`` with ``context``."""
    return environment().get_template(name).render(**context)
