"""Reading and writing dotted paths the way the reference does.

``get`` follows get-value 3.0.1: a whole dotted path that is itself a key wins; otherwise the
path is walked, and a missing segment is retried joined with the following ones, so literal
dotted keys (``{"a.b": 1}``) are found. ``set_path`` follows set-value 4.1.0 for custom keys
(spec/reference-mapping.md section 5): ``a.b`` nests, numeric segments are normalised.
"""

from __future__ import annotations

from typing import Any, Final

from clevertap_mapper.mapping.js import JS_WHITESPACE, MISSING, number_to_string, to_number

RESERVED_KEYS: Final = frozenset({"__proto__", "constructor", "prototype"})

# Members of Object.prototype: JS's `in` finds them on every object (spec section 5).
OBJECT_PROTOTYPE_MEMBERS: Final = frozenset({
    "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString",
    "toString", "valueOf", "__defineGetter__", "__defineSetter__", "__lookupGetter__",
    "__lookupSetter__", "__proto__",
})


class Path:
    """A compiled source path: its text (for traces) and its segments (for lookups)."""

    __slots__ = ("depth", "j01", "j12", "s0", "s1", "s2", "segments", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.segments = tuple(text.split("."))
        self.depth = len(self.segments)
        # The first segments and their joined forms, for get()'s unrolled fast path.
        padded = (*self.segments, "", "")
        self.s0, self.s1, self.s2 = padded[:3]
        self.j01 = f"{self.s0}.{self.s1}"
        self.j12 = f"{self.s1}.{self.s2}"

    def __repr__(self) -> str:
        return f"Path({self.text!r})"


def _child(target: Any, key: str) -> Any:
    t = type(target)
    if t is dict:
        return target.get(key, MISSING)
    if t is list and key.isdigit() and (key == "0" or key[0] != "0"):
        i = int(key)
        return target[i] if i < len(target) else MISSING
    return MISSING


def get(root: Any, path: Path) -> Any:
    """Value at ``path`` in ``root`` or MISSING (get-value semantics, see module docstring).

    Paths of one to three segments on an object, which is every lookup of the mapping tables,
    take an unrolled path with the same results as the general walk (``_walk``).
    """
    if type(root) is not dict or path.depth > 3:
        return _walk(root, path)
    value = root.get(path.text, MISSING)
    depth = path.depth
    if value is not MISSING or depth == 1:
        return value
    a = root.get(path.s0, MISSING)
    if depth == 2:
        if type(a) is dict:
            return a.get(path.s1, MISSING)
        return _child(a, path.s1) if type(a) is list else MISSING
    # depth 3
    if a is MISSING:
        b = root.get(path.j01, MISSING)  # a literal "a.b" key at the root
    elif type(a) is dict:
        b = a.get(path.s1, MISSING)
        if b is MISSING:
            return a.get(path.j12, MISSING)  # a literal "b.c" key inside a
    elif type(a) is list:
        b = _child(a, path.s1)
        if b is MISSING:
            return MISSING
    else:
        return MISSING
    if type(b) is dict:
        return b.get(path.s2, MISSING)
    return _child(b, path.s2) if type(b) is list else MISSING


def _walk(root: Any, path: Path) -> Any:
    """The general get-value walk: any depth, arrays, literal dotted keys at any level."""
    if type(root) is not dict and type(root) is not list:
        return root  # get-value returns a non-object target as it is
    if type(root) is dict and path.text in root:
        return root[path.text]
    segs = path.segments
    n = len(segs)
    target: Any = root  # declared Any: narrowing above must not type the values walked to
    i = 0
    while True:
        value = _child(target, segs[i])
        if value is MISSING:
            # Retry the segment joined with the following ones: finds {"a.b": ...}.
            joined = segs[i]
            j = i + 1
            while j < n:
                joined = joined + "." + segs[j]
                j += 1
                value = _child(target, joined)
                if value is not MISSING:
                    i = j - 1
                    break
            if value is MISSING:
                return MISSING
        target = value
        i += 1
        if i >= n:
            return target
        if type(target) is not dict and type(target) is not list:
            return MISSING


_NUMERIC_START: Final = frozenset("0123456789+-.I" + JS_WHITESPACE)


def _split_key(key: str) -> list[str]:
    """Split on '.', a backslash escaping the next character (set-value's splitter)."""
    if "\\" not in key:
        return key.split(".")
    segs: list[str] = []
    cur = []
    it = iter(key)
    for ch in it:
        if ch == "\\":
            cur.append(next(it, ""))
        elif ch == ".":
            segs.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    segs.append("".join(cur))
    return segs


def _numeric_segment(seg: str) -> str | None:
    """set-value turns a segment that is an integer per JS Number() into that number."""
    if not seg or seg[0] not in _NUMERIC_START or not seg.strip(JS_WHITESPACE):
        return None
    n = to_number(seg)
    if n != n or n in (float("inf"), float("-inf")) or not n.is_integer():
        return None
    return number_to_string(n)


def set_path(target: dict[str, Any], key: str, value: Any) -> None:
    """Set a custom key as the reference's set-value does: ``a.b`` nests, ``1e3`` -> ``1000``."""
    if key == "":
        return  # set-value ignores the empty key
    if "." not in key and "\\" not in key and key[0] not in _NUMERIC_START:
        target[key] = value  # the common case: a plain key
        return
    if "/" in key:
        target[key] = value
        return
    segs = _split_key(key)
    if any(s in RESERVED_KEYS for s in segs):
        target[key] = value
        return
    if len(segs) > 1 and segs[-1] == "":
        segs.pop()
    names: list[tuple[str, bool]] = []
    for s in segs:
        num = _numeric_segment(s)
        names.append((num, True) if num is not None else (s, False))
    cur: Any = target
    for idx, (name, _) in enumerate(names):
        last = idx == len(names) - 1
        if last:
            _assign(cur, name, value)
            return
        nxt_numeric = names[idx + 1][1]
        existing = _read(cur, name)
        if type(existing) is not dict and type(existing) is not list:
            existing = [] if nxt_numeric else {}
            _assign(cur, name, existing)
        cur = existing


def _read(container: Any, name: str) -> Any:
    if type(container) is dict:
        return container.get(name, MISSING)
    if name.isdigit():
        i = int(name)
        return container[i] if i < len(container) else MISSING
    return MISSING


def _assign(container: Any, name: str, value: Any) -> None:
    if type(container) is dict:
        container[name] = value
        return
    if name.isdigit() and int(name) < 2**20:
        i = int(name)
        while len(container) <= i:
            container.append(None)  # a JS sparse array serialises holes as null
        container[i] = value
    # Non-index properties of a JS array vanish from its JSON: nothing to keep.


def own_items(obj: Any) -> list[tuple[str, Any]]:
    """``Object.keys(obj)`` with ``obj[k]`` for JSON values (strings and arrays by index)."""
    t = type(obj)
    if t is dict:
        return list(obj.items())
    if t is list:
        return [(str(i), v) for i, v in enumerate(obj)]
    if t is str:
        return [(str(i), c) for i, c in enumerate(obj)]
    return []
