r"""Segmentation: transcripts -> speaker turns (:class:`~extractor.types.Turn`).

Reads plain-text and Markdown transcripts (inline ``Speaker: text`` lines, speaker
headings ``## Interviewee`` / ``**Interviewer 1**``, unlabelled continuation lines,
timestamps), WebVTT and SRT captions (``<v Name>`` and ``Name:`` speakers) and ``.docx``.

Rules (they reproduce how the study's coded transcripts were cut into turns):

* every speaker label starts a new turn, even when the same speaker talks on; lines
  without a label continue the current turn (joined with a space); text before the
  first label is *unattributed* and reported, never silently dropped;
* a label indented deeper than the file's usual speaker lines is quoted text, not a
  new turn (transcription tools put such lines inside a turn);
* ``question`` is the text of the nearest preceding interviewer turn when it is at
  most :data:`QUESTION_WINDOW` turns back, else ``""``;
* roles: labels like ``Interviewer 2``, ``interviewr``, ``Interviewee1``, ``Q``/``A``,
  ``Moderator``, ``Participant`` carry their role. Named speakers (``Alice:``) are
  interviewers when listed in ``interviewers``, interviewees when listed in
  ``interviewees``; otherwise the named speaker who speaks the most words is the
  interviewee and every other named speaker an interviewer;
* captions (VTT/SRT) split speech into short cues, so consecutive cues of one
  speaker are merged into one turn.

Text is data: every line-ending style is a line break (``\n``, ``\r\n``, a lone ``\r``, NEL,
U+2028/U+2029, ...); control characters are dropped and invisible formatting characters
(zero-width, bidi, BOM, soft hyphen) removed before speaker labels are matched
(:mod:`extractor.textsafe`); each result counts what was removed and which ``Name:`` lines
were kept inside the turn before, so a summary never claims nothing was lost.

Modules: :mod:`.decode` (bytes -> text), :mod:`.textlines` (plain text / Markdown / Otter /
Delve lines), :mod:`.captions` (WebVTT / SRT), :mod:`.word` (.docx), :mod:`.speakers`
(labels and roles), :mod:`.api` (the public functions below).
"""

from extractor.segment.api import (
                                   DEFAULT_MAX_BYTES,
                                   QUESTION_WINDOW,
                                   detect_format,
                                   expand_paths,
                                   interview_name,
                                   segment_file,
                                   segment_paths,
                                   segment_text,
)
from extractor.segment.decode import decode_bytes
from extractor.segment.records import BatchReport, SegmentResult
from extractor.segment.speakers import role_of_label
from extractor.segment.word import MAX_DOCX_XML_BYTES

__all__ = [
    "BatchReport", "DEFAULT_MAX_BYTES", "MAX_DOCX_XML_BYTES", "QUESTION_WINDOW", "SegmentResult", "decode_bytes",
    "detect_format", "expand_paths", "interview_name", "role_of_label", "segment_file", "segment_paths",
    "segment_text",
]
