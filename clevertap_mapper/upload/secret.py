"""``Secret``: a string that never shows itself by accident (STYLE.md rule 10).

The CleverTap passcode travels as a ``Secret`` from the moment it is read until the one place
that puts it on the wire (an HTTP header). ``repr``, ``str`` and ``format`` give ``***``, so a
passcode cannot reach a log line, an exception message, a summary or a state file through
string formatting; only an explicit ``reveal()`` gives the value.
"""

from __future__ import annotations

from typing import Final, NoReturn

REDACTED: Final = "***"


class Secret:
    """A redacted string.

    >>> s = Secret("hunter2")
    >>> s, str(s), f"{s}"
    (Secret('***'), '***', '***')
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: call this only where it must leave the process (the HTTP header)."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``.

        A last line of defence for messages that quote something we did not write (an error
        from a library), before they are printed or stored.
        """
        return text.replace(self._value, REDACTED) if self._value else text

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled (it would leave the process in clear)")
