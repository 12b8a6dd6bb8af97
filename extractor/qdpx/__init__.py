"""REFI-QDA exchange (QDA-XML 1.0): ``.qdpx`` projects and ``.qdc`` codebooks.

The format is read and written by ATLAS.ti, NVivo, MAXQDA and QualCoder. Export
(:mod:`~extractor.qdpx.export`): sources = the transcripts (plain text,
:mod:`~extractor.qdpx.sources`), codes = the catalog (categories, phases and a
``Mitigation`` code, each its own colour: :mod:`~extractor.qdpx.codes`), coded selections =
one per label on each turn's character range: a model's with its confidence, a reviewer's
as that reviewer's coding. Import (:mod:`~extractor.qdpx.read`, :mod:`~extractor.qdpx.labels`):
a project coded by humans -> :class:`Labels` per turn id, for training, through one capped
XML reader that refuses any DTD (:mod:`~extractor.qdpx.xmlsafe`).

A ``.qdpx`` is a zip holding ``project.qde`` (XML, namespace ``urn:QDA-XML:project:1.0``)
and ``sources/<guid>.txt``. GUIDs are UUID5 of stable names, so exporting the same
input twice gives the same bytes (given the same ``created`` time).
"""

from extractor.qdpx.codes import (
                                  MITIGATION_CODE,
                                  NS_CODEBOOK,
                                  NS_PROJECT,
                                  PALETTE,
                                  ROOT_CATEGORIES,
                                  ROOT_PHASES,
                                  code_colors,
                                  code_guids,
                                  codebook_xml,
                                  export_qdc,
                                  stable_guid,
)
from extractor.qdpx.export import coding_description, export_qdpx, project_xml
from extractor.qdpx.labels import import_labels, labelled_turns, resolve_codes
from extractor.qdpx.read import MAX_QDE_BYTES, Project, Selection, Source, read_qdpx
from extractor.qdpx.sources import MAX_SOURCE_BYTES, SourceText, build_sources
from extractor.qdpx.xmlsafe import MAX_ELEMENTS as MAX_QDE_ELEMENTS

__all__ = ["MAX_QDE_BYTES", "MAX_QDE_ELEMENTS", "MAX_SOURCE_BYTES", "MITIGATION_CODE", "NS_CODEBOOK", "NS_PROJECT",
           "PALETTE", "ROOT_CATEGORIES", "ROOT_PHASES", "Project", "Selection", "Source", "SourceText",
           "build_sources", "code_colors", "code_guids", "codebook_xml", "coding_description", "export_qdc",
           "export_qdpx", "import_labels", "labelled_turns", "project_xml", "read_qdpx", "resolve_codes",
           "stable_guid"]
