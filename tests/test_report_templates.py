"""The report's template environment: layout line breaks removed, every value escaped once."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from extractor.report import templates


def test_layout_line_breaks_are_removed_and_nl_writes_one(tmp_path, monkeypatch):
    (tmp_path / "t.html.j2").write_text('<p a="{{ x }}">\n    {{ x }}\n  </p>{{ NL }}\n<i>{{ m }}</i>\n')
    (tmp_path / "raw.txt").write_text("kept\n  as it is\n")
    monkeypatch.setattr(templates, "template_dir", lambda: tmp_path)
    templates.environment.cache_clear()
    try:
        out = templates.render("t.html.j2", x="<'\"&>", m=Markup("<b>ok</b>"))
        assert out == '<p a="&lt;&#x27;&quot;&amp;&gt;">&lt;&#x27;&quot;&amp;&gt;</p>\n<i><b>ok</b></i>'
        assert templates.asset("raw.txt") == "kept\n  as it is\n"  # static files are not reflowed
    finally:
        templates.environment.cache_clear()


def test_a_missing_value_is_an_error_not_an_empty_string(tmp_path, monkeypatch):
    import jinja2

    (tmp_path / "t.html.j2").write_text("{{ nothing.here }}")
    monkeypatch.setattr(templates, "template_dir", lambda: tmp_path)
    templates.environment.cache_clear()
    try:
        with pytest.raises(jinja2.UndefinedError):
            templates.render("t.html.j2")
    finally:
        templates.environment.cache_clear()
