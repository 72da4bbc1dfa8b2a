"""The exception tree: one root, subclasses grouped by how a caller reacts.

- ConfigError: fatal, before any work (bad settings, credentials, region) or on finding an
  upload state file damaged.
- InputError: a whole input cannot be read (missing file, corrupt gzip); the run stops with 1.
  DamagedInputError: its gzip data is damaged part way; the lines before are read (and an
  upload sends them) first.
- OutputError: an output cannot be written (disk full); the run stops with 1.
- MappingError: one event cannot be mapped; it goes to the rejects file and the run goes on.
- UploadError: retriable (RetriableUploadError) or fatal (FatalUploadError) delivery problems.
"""

from __future__ import annotations


class CtmapError(Exception):
    """Root of every error ctmap raises on purpose."""


class ConfigError(CtmapError):
    """Settings, credentials or options are wrong; nothing was sent."""


class InputError(CtmapError):
    """An input file as a whole cannot be read (missing, unreadable, corrupt gzip, UTF-16)."""

    def __init__(self, message: str, *, source: str, line: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line


class DamagedInputError(InputError):
    """An input's own bytes are damaged part way (truncated or corrupt gzip): the lines before
    ``line`` are intact and read the same every time; the rest cannot be read."""


class OutputError(CtmapError):
    """An output file cannot be written (disk full, no permission); the run stops with 1."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class MappingError(CtmapError):
    """One event cannot become CleverTap records.

    ``code`` is a stable snake_case id (``missing_identity``, ``invalid_timestamp``, ...);
    ``message`` is one sentence that says what to fix.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"MappingError({self.code!r}, {self.message!r})"


class UploadError(CtmapError):
    """Delivery to CleverTap failed."""


class RetriableUploadError(UploadError):
    """A transient failure (429, 5xx, timeout, dropped connection): try again later."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class FatalUploadError(UploadError):
    """A failure that retrying cannot fix (401/403, bad endpoint): stop the run."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
