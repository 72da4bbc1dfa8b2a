"""Settings: the mapping options (MapperConfig) and the ``ctmap.toml`` settings file.

The file is validated against a JSON Schema shipped in the package (``settings.schema.json``),
and every problem is reported at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from clevertap_mapper.errors import ConfigError

Compat = Literal["rudderstack"]


@dataclass(frozen=True, slots=True)
class MapperConfig:
    """How events are mapped.

    - ``track_anonymous``: send track/page/screen events that have no userId (RudderStack's
      "Track Anonymous Users"; off by default, as there).
    - ``object_id_mapping``: identify users by ``objectId = anonymousId`` (RudderStack's
      "Use CleverTap ObjectId for Mapping"); also required for device-token records.
    - ``compat``: ``"rudderstack"`` reproduces the reference record for record; ``None`` (the
      default) applies ctmap's fixes D1-D6 (shared/DESIGN.md section 2).
    """

    track_anonymous: bool = False
    object_id_mapping: bool = False
    compat: Compat | None = None

    def __post_init__(self) -> None:
        if self.compat not in (None, "rudderstack"):
            raise ConfigError(f"compat must be 'rudderstack' or None, not {self.compat!r}")


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of ``ctmap.toml`` (shipped as package data)."""
    from importlib import resources  # noqa: PLC0415 - (this and the other imports in
    # functions below: only when a settings file is read, not at every start)

    text = resources.files("clevertap_mapper").joinpath("settings.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def load_settings_file(path: str) -> dict[str, Any]:
    """Read and validate a ``ctmap.toml``; raise ConfigError listing every problem at once."""
    import tomllib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read settings file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}); fix the file") from None
    from jsonschema import Draft202012Validator, validators  # noqa: PLC0415 - only when read

    # JSON Schema's "integer" takes 4.0, which TOML reads as a float and a count cannot be.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: type(value) is int)
    # (Through Any: the build's mypy may run without jsonschema's type stubs.)
    extend: Any = validators.extend
    strict = extend(Draft202012Validator, type_checker=checker)
    validator = strict(settings_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines: list[str] = []
        for err in errors:
            lines.extend(f"  {line}" for line in _problems(err))
        raise ConfigError(f"{p}: {len(lines)} problem(s) in the settings file:\n"
                          + "\n".join(lines))
    return data


_TOML_TYPES: Final = {"boolean": "true or false", "integer": "a whole number such as 4",
                      "number": "a number such as 30", "string": 'a quoted string such as "x"',
                      "object": "a [section]"}


def _problems(err: Any) -> list[str]:
    """One line per problem of a schema error: the key, what is wrong and how to fix it.

    An unknown key names the keys allowed there (and the likeliest one); the passcode is
    refused with where it belongs, and its value is never repeated.
    """
    path = [str(x) for x in err.absolute_path]
    where = ".".join(path) or "(top level)"
    if err.validator == "additionalProperties" and type(err.instance) is dict:
        known = list(err.schema.get("properties", {}))
        out = []
        for key in err.instance:
            if key in known:
                continue
            name = ".".join([*path, key])
            if "passcode" in key.lower():
                out.append(f"{name}: the passcode is not read from the settings file, which "
                           "is easily shared or committed: remove it, and set "
                           "CLEVERTAP_PASSCODE or pass --passcode-file FILE to ctmap upload")
                continue
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            section = f"the [{'.'.join(path)}] section" if path else "the top level"
            out.append(f"{name}: unknown setting; {hint}{section} takes "
                       f"{', '.join(known)}")
        return out or [f"{where}: {err.message}"]
    if err.validator == "type" and err.validator_value in _TOML_TYPES:
        return [f"{where}: {err.message}; write {_TOML_TYPES[err.validator_value]}"]
    return [f"{where}: {err.message}"]
