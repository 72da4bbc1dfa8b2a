"""What the mapping reads of an event, and a decoder that parses only that.

A RudderStack event carries far more than the mapping uses: ``context`` (library, app,
device, os, screen, network, ...) is half of a typical line, and none of it is sent but
``context.traits``, the device token and the OS name. ``decode_event`` parses a line into a
dict of just the fields the mapping can read; the rest is checked as JSON and skipped, never
built into Python objects. For the bench's 1.2 KB events that is about 1.7 us a line against
orjson's 2.0 us for the whole of it (lines in the cache), and there is less to free afterwards.

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
# The literal dotted keys get-value may find for a table's path, at the top level and in
# context: only these can make a lookup differ from a walk of the path's segments.
TOP_DOTTED: Final = frozenset(k for k in READ if "." in k)
CONTEXT_DOTTED: Final = frozenset(k for k in READ["context"] if "." in k)

# A line's keys in the order its lines give them (its top level's, its context's), as far as
# the schema has them: see ``decoder``.
KeyOrder = tuple[tuple[str, ...], tuple[str, ...]]
_DECODERS: dict[KeyOrder, Any] = {}
_DECODERS_MAX: Final = 16


def _ordered(tree: Tree, first: tuple[str, ...]) -> Tree:
    """``tree`` with the keys of ``first`` first, then its other plain keys, then the dotted
    ones."""
    out: Tree = {k: tree[k] for k in first if k in tree}
    for plain in (True, False):
        for k, v in tree.items():
            if ("." not in k) == plain and k not in out:
                out[k] = v
    return out


def decoder(order: KeyOrder = ((), ())) -> Any:
    """A decode of a line into the fields the mapping reads, for lines whose keys come in
    ``order`` (``key_order`` of one of them).

    msgspec finds each key of a line by a walk along the schema's fields from the one after
    the last found, and walks them all for a key the schema lacks; the literal dotted keys
    are 52 of the top level's 66 fields. So the fields go in the order lines give them, the
    dotted ones last: for the bench's lines, 0.11 us less a line than in the tables' order.
    The order changes nothing else: a decoded dict has the line's own order.
    """
    found = _DECODERS.get(order)
    if found is None:
        if len(_DECODERS) >= _DECODERS_MAX:  # lines of many shapes: keep the latest few
            _DECODERS.clear()
        tree = _ordered(READ, order[0])
        context = tree["context"]
        if type(context) is dict:
            tree["context"] = _ordered(context, order[1])
        found = msgspec.json.Decoder(_schema("Event", tree)).decode
        _DECODERS[order] = found
    return found


def key_order(event: dict[str, Any]) -> KeyOrder:
    """The order of a decoded event's keys, and of its context's: its line's order."""
    context = event.get("context")
    return tuple(event), (tuple(context) if type(context) is dict else ())


def decode_event(line: bytes, decode: Any = None) -> Any:
    """The line as a dict of the fields the mapping reads, or None when it needs a full read.

    None for a line that is not UTF-8, not JSON, not an object, or has a non-object where an
    object is read (``context``, say). The caller still decides by ``type`` whether the line
    is a plain event. ``decode``: a ``decoder``, for lines of its order.
    """
    if not line.isascii():
        # The schema decode checks the UTF-8 of the strings it keeps, not of those it skips.
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        return (decode or decoder())(line)
    except (msgspec.DecodeError, RecursionError):
        return None
