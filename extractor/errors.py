"""Errors that reach the user as one line: ``file:line: expected X, found Y; hint``."""

from __future__ import annotations

from pathlib import Path


class ExtractorError(Exception):
    """Base class of every error the CLI reports without a traceback."""


class InputError(ExtractorError):
    """Bad input at a place in a file.

    ``str(err)`` is the one-line message: ``path[:line]: expected ..., found ...; hint``.
    """

    def __init__(
        self,
        path: str | Path | None,
        expected: str,
        found: str,
        *,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.message)

    @property
    def where(self) -> str:
        if self.path is None:
            return "<record>"
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    @property
    def message(self) -> str:
        msg = f"{self.where}: expected {self.expected}, found {self.found}"
        return f"{msg}; {self.hint}" if self.hint else msg


class RecordError(InputError):
    """A record (one JSON object) whose field has the wrong type; readers add the file and line."""

    def __init__(self, expected: str, found: str, *, hint: str | None = None) -> None:
        super().__init__(None, expected, found, hint=hint)

    def at(self, path: str | Path, line: int | None = None) -> InputError:
        """The same error located at ``path:line``."""
        return InputError(path, self.expected, self.found, line=line, hint=self.hint)


class ModelError(ExtractorError):
    """A model directory that is missing, tampered with or incompatible."""
