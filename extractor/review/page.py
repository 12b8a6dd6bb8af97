"""The web reviewer's pages: an HTML file of ``extractor/data/review/`` with the shared head
(``head.html``), its CSS and its JS (after the shared ``common.js``) inlined, served under a
Content-Security-Policy that lets only those inline blocks run (no external requests)."""

from __future__ import annotations

import base64
import hashlib
from importlib import resources


def asset(name: str) -> str:
    """A file of ``extractor/data/review/`` as text."""
    return (resources.files("extractor") / "data" / "review" / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-...'``) that allows one inline block."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render(html: str, css: str, js: str, *, images: bool = False) -> tuple[str, str]:
    """The page ``html`` with ``css`` and ``js`` inlined, and its Content-Security-Policy
    (``images``: data: and same-origin images allowed)."""
    style, script = asset(css), asset("common.js") + asset(js)
    page = (asset(html).replace("<!--HEAD-->\n", asset("head.html"))
            .replace("/*STYLE*/", style).replace("/*SCRIPT*/", script))
    img = "img-src 'self' data:; " if images else ""
    csp = (f"default-src 'none'; style-src {csp_hash(style)}; script-src {csp_hash(script)}; connect-src 'self'; "
           f"{img}base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, csp
