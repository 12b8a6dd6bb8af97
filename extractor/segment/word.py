"""Word ``.docx`` transcripts: paragraphs (and table rows) as lines, headings as ``## `` lines."""

from __future__ import annotations

from pathlib import Path

from extractor.errors import InputError
from extractor.segment.decode import format_size

MAX_DOCX_XML_BYTES = 16 * 1024 * 1024


def docx_text(path: Path, max_bytes: int = 0) -> str:
    """Paragraphs (and table rows as ``cell: cell``) joined by newlines; headings become ``## ``.

    The archive is checked first (:func:`extractor.safeio.check_zip`): a zip bomb is refused
    from its declared sizes before python-docx inflates anything, and ``max_bytes`` caps the
    uncompressed total too.
    """
    import docx  # python-docx; imported here to keep `import extractor` light
    from docx.table import Table

    from extractor.safeio import MAX_ARCHIVE_BYTES, MAX_MEMBER_BYTES, open_zip

    total = min(MAX_ARCHIVE_BYTES, max_bytes) if max_bytes else MAX_ARCHIVE_BYTES
    with open_zip(path, what="a Word .docx document", max_member=min(MAX_MEMBER_BYTES, total),
                  max_total=total) as zf:
        # XML parts become an lxml tree (~40 bytes of memory per byte): a tighter cap keeps
        # the peak under 1 GB. A long interview's document.xml is a few MiB.
        for info in zf.infolist():
            if info.filename.lower().endswith((".xml", ".rels")) and info.file_size > MAX_DOCX_XML_BYTES:
                raise InputError(path, f"Word XML parts of at most {format_size(MAX_DOCX_XML_BYTES)}",
                                 f"{info.filename!r} of {format_size(info.file_size)}",
                                 hint="split the document, or save it as .txt")
    try:
        document = docx.Document(str(path))
    except Exception as e:  # python-docx raises several unrelated types for broken files
        raise InputError(path, "a Word .docx document", f"an unreadable file ({type(e).__name__}: {e})"[:200]) from None
    # Style names looked up once: python-docx's Paragraph.style searches the styles part on
    # every call (about 2 ms per paragraph, minutes for a large document).
    style_names = {st.style_id: st.name or "" for st in document.styles}
    out: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for k, c in enumerate(cells) if c and c not in cells[:k]]
                if cells:
                    out.append(cells[0] + (": " + " ".join(cells[1:]) if len(cells) > 1 else ""))
            continue
        sid = block._p.style  # the paragraph's own style id; None = the default (Normal) style
        style = style_names.get(sid, sid or "") if sid else ""
        txt = block.text
        out.append(f"## {txt}" if style.lower().startswith(("heading", "title")) and txt.strip() else txt)
    return "\n".join(out)

