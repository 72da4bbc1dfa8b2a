"""Small wording helpers shared by the library's reports and the command line."""

from __future__ import annotations


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 event``, ``2 events``; ``words`` for an irregular plural (``bodies``)."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
