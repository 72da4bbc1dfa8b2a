"""ctmap's library: map RudderStack events to CleverTap records exactly as RudderStack's
cloud-mode CleverTap destination does (or with its correctness bugs fixed), and deliver them.

>>> from clevertap_mapper import MapperConfig, map_event
>>> map_event({"type": "identify", "userId": "u1", "traits": {"email": "a@b.co"}},
...           MapperConfig(compat="rudderstack"))
[{'type': 'profile', 'profileData': {'Email': 'a@b.co'}, 'identity': 'u1'}]
"""

from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import (
    ConfigError,
    CtmapError,
    FatalUploadError,
    InputError,
    MappingError,
    RetriableUploadError,
    UploadError,
)
from clevertap_mapper.mapping import FIXES, Decision, Record, Trace, map_event
from clevertap_mapper.mapping import core as _core


def compiled() -> bool:
    """Whether the mapping core runs compiled (mypyc, see setup.py) rather than as Python."""
    return not (_core.__file__ or "").endswith(".py")


__all__ = [
    "FIXES",
    "ConfigError",
    "CtmapError",
    "Decision",
    "FatalUploadError",
    "InputError",
    "MapperConfig",
    "MappingError",
    "Record",
    "RetriableUploadError",
    "Trace",
    "UploadError",
    "compiled",
    "map_event",
]
