"""The reference's mapping tables, as data (spec/reference-mapping.md sections 3, 4.1, 5, 8.4).

Each row names the CleverTap key, the ordered source paths and any value transform. The
paths are compiled once at import; the mapping code only walks these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from clevertap_mapper.mapping.paths import Path


def _paths(*texts: str) -> tuple[Path, ...]:
    return tuple(Path(t) for t in texts)


# Generic lookups (GenericFieldMapping.json): first usable value wins (spec section 3).
USER_ID_ONLY: Final = _paths(
    "userId", "traits.userId", "traits.id", "context.traits.userId", "context.traits.id")
ANONYMOUS_ID: Final = Path("anonymousId")
USER_ID: Final[tuple[Path, ...]] = (*USER_ID_ONLY, ANONYMOUS_ID)
EMAIL_ONLY: Final = _paths("traits.email", "context.traits.email", "properties.email")
FIRST_NAME: Final = _paths(
    "traits.firstName", "traits.firstname", "traits.first_name",
    "context.traits.firstName", "context.traits.firstname", "context.traits.first_name")
LAST_NAME: Final = _paths(
    "traits.lastName", "traits.lastname", "traits.last_name",
    "context.traits.lastName", "context.traits.lastname", "context.traits.last_name")


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One row of CleverTapIdentify: ``key`` <- first usable value of ``sources``."""

    key: str
    sources: tuple[Path, ...]
    # multikeyMap: strict, case-sensitive matches; anything unmatched drops the field.
    value_map: dict[str, str] | None = None


def _both(name: str) -> tuple[Path, ...]:
    return _paths(f"traits.{name}", f"context.traits.{name}")


GENDER_MAP: Final = {
    **dict.fromkeys(("f", "F", "Female", "female", "FEMALE"), "F"),
    **dict.fromkeys(("m", "M", "Male", "male", "MALE"), "M"),
}

IDENTIFY_ROWS: Final[tuple[ProfileRow, ...]] = (
    ProfileRow("Email", EMAIL_ONLY),
    ProfileRow("Name", _both("name")),
    ProfileRow("Phone", _both("phone")),
    ProfileRow("Gender", _both("gender"), GENDER_MAP),
    ProfileRow("Employed", _both("employed")),
    ProfileRow("DOB", _both("birthday")),
    ProfileRow("Education", _both("education")),
    ProfileRow("Married", _both("married")),
    ProfileRow("Customer Type", _both("customerType")),
    ProfileRow("Photo", _both("avatar")),
)

# Trait keys that never become custom profile fields (CLEVERTAP_DEFAULT_EXCLUSION, exact case).
IDENTIFY_EXCLUDED: Final = frozenset({
    "email", "firstName", "firstname", "first_name", "lastName", "lastname", "last_name", "name",
    "phone", "gender", "education", "employed", "birthday", "married", "customerType",
    "anonymousId", "avatar", "userId", "id", "ts", "overrideFields",
})
TRAIT_ROOTS: Final = _paths("traits", "context.traits")

# Where each identify source path starts: the root it is under (an index into TRAIT_ROOT_NAMES)
# and the key inside it, for the fast lookups of core._TraitRoots.
TRAIT_ROOT_NAMES: Final[tuple[str, ...]] = ("traits", "context.traits", "properties")
ROOT_AND_NAME: Final = {
    p.text: (TRAIT_ROOT_NAMES.index(p.text.rsplit(".", 1)[0]), p.segments[-1])
    for row_paths in (*(r.sources for r in IDENTIFY_ROWS), FIRST_NAME, LAST_NAME)
    for p in row_paths
}

# Order Completed -> Charged (CleverTapEcom): raw single paths, no fallbacks.
CHARGED_ROWS: Final[tuple[tuple[str, Path], ...]] = (
    ("Charged ID", Path("properties.checkout_id")),
    ("Amount", Path("properties.revenue")),
    ("Items", Path("properties.products")),
)
CHARGED_EXCLUDED: Final = frozenset({"checkout_id", "revenue", "products", "ts"})
CHARGED_EVENT: Final = "order completed"

# Page and screen names: first usable of these, templated (CleverTapPage / CleverTapScreen).
PAGE_NAME_SOURCES: Final = _paths("event", "properties.event", "name", "properties.name")
PAGE_PREFIX: Final = {"page": "Web Page Viewed", "screen": "Screen Viewed"}

# Keys convertObjectAndArrayToString leaves structured (subscription groups).
UNSTRINGIFIED_KEYS: Final = frozenset({"category-unsubscribe", "category-resubscribe"})

# Device tokens (spec section 8.4).
TOKEN_OS_ANDROID: Final = "android"
TOKEN_OS_APPLE: Final = frozenset({"ios", "watchos", "ipados", "tvos"})
TOKEN_TYPES: Final = frozenset({"chrome", "fcm", "gcm", "apns", "wns", "mpns"})
INTEGRATION_KEYS: Final[tuple[str, ...]] = ("clevertap", "Clevertap", "CleverTap", "CLEVERTAP")

# The event's own times (s7, D1): what RudderStack's processor sets on every event.
EVENT_TIME_FIELDS: Final[tuple[str, ...]] = (
    "timestamp", "originalTimestamp", "sentAt", "receivedAt")

PROPERTIES: Final = Path("properties")
PROPERTIES_TS: Final = Path("properties.ts")
TRAITS_TS: Final = Path("traits.ts")
CONTEXT_TRAITS_TS: Final = Path("context.traits.ts")
TRAITS_OVERRIDES: Final = Path("traits.overrideFields")
CONTEXT_TRAITS_OVERRIDES: Final = Path("context.traits.overrideFields")
DEVICE_TOKEN: Final = Path("context.device.token")
OS_NAME: Final = Path("context.os.name")
