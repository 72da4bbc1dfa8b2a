"""What the mapping reads of an event, and a decoder that parses only that.

A RudderStack event carries far more than the mapping uses: ``context`` (library, app,
device, os, screen, network, ...) is half of a typical line, and none of it is sent but
``context.traits``, the device token and the OS name. ``decode_event`` parses a line into a
dict of just the fields the mapping can read; the rest is checked as JSON and skipped, never
built into Python objects. For the bench's 1.2 KB events that is about 1.8 us a line against
orjson's 2.3 us for the whole of it, and there is less to free afterwards.

The fields are found, not listed: every ``Path`` the mapping tables hold (with the literal
dotted keys get-value also finds, such as a top-level ``"context.traits"``), and
``EVENT_KEYS``, the keys core.py reads itself. A path added to a table is read with no change
here. tests/test_reads.py maps events read both ways and compares the records.

Compiled with the hot path (the schema is built at import, through ``Any``, as mypy cannot
type a TypedDict made at run time).
"""

from __future__ import annotations

from typing import Any, Final, TypedDict

import msgspec

from clevertap_mapper.mapping import tables as T
from clevertap_mapper.mapping.paths import Path

# The top-level keys core.py reads with ``event.get`` rather than through a table's Path.
EVENT_KEYS: Final[tuple[str, ...]] = (
    "type", "userId", "anonymousId", "previousId", "event", "integrations", *T.EVENT_TIME_FIELDS)

Tree = dict[str, Any]  # a key -> WHOLE (read the value whole) or the Tree of what is read in it
WHOLE: Final = None


def table_paths() -> list[Path]:
    """Every Path in the mapping tables: alone, in a tuple, a ProfileRow or a (key, Path)."""
    found: list[Path] = []
    for value in vars(T).values():
        for item in value if type(value) is tuple else (value,):
            if isinstance(item, Path):
                found.append(item)
            elif isinstance(item, T.ProfileRow):
                found.extend(item.sources)
            elif type(item) is tuple:
                found.extend(p for p in item if isinstance(p, Path))
    return found


def read_tree(paths: list[Path], keys: tuple[str, ...]) -> Tree:
    """What a lookup of ``paths`` (get-value's, see paths.get) and of ``keys`` can touch."""
    tree: Tree = dict.fromkeys(keys, WHOLE)
    for path in paths:
        segs = path.segments
        node = tree
        for i, seg in enumerate(segs):
            # get-value also takes the rest of the path, or a part of it, as one literal key.
            for j in range(i + 2, len(segs) + 1):
                node[".".join(segs[i:j])] = WHOLE
            if i == len(segs) - 1:
                node[seg] = WHOLE  # the value is read: all of it
                break
            child = node.get(seg, {})
            if child is WHOLE:
                break  # read whole already
            node[seg] = child
            node = child
    return tree


def _schema(name: str, tree: Tree) -> Any:
    """A TypedDict of the tree: msgspec decodes it into a plain dict of the keys present,
    skips every other key, and refuses (ValidationError) a non-object where a Tree is."""
    fields = {k: Any if v is WHOLE else _schema(f"{name}_{k.replace('.', '_')}", v)
              for k, v in tree.items()}
    make: Any = TypedDict  # the functional form, with keys that are not identifiers
    return make(name, fields, total=False)


READ: Final = read_tree(table_paths(), EVENT_KEYS)
_decode = msgspec.json.Decoder(_schema("Event", READ)).decode


def decode_event(line: bytes) -> Any:
    """The line as a dict of the fields the mapping reads, or None when it needs a full read.

    None for a line that is not UTF-8, not JSON, not an object, or has a non-object where an
    object is read (``context``, say). The caller still decides by ``type`` whether the line
    is a plain event.
    """
    if not line.isascii():
        # The schema decode checks the UTF-8 of the strings it keeps, not of those it skips.
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        return _decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None
