#!/usr/bin/env python3
"""Deterministic generator of realistic RudderStack events, for benchmarks and samples.

Events look like what the RudderStack gateway stores from the JavaScript, Android, iOS and
server SDKs: full envelopes (context, integrations, the four time fields, rudderId,
request_ip), sessions of one user interleaved by arrival time. Everything comes from one
seeded ``random.Random``, so the same ``(n, seed, options)`` always gives the same bytes.

Library::

    from bench.gen_events import generate, lines, write
    events = list(generate(1000, seed=1))          # plain events (dicts)
    rows = list(lines("legacy", 1000, seed=1))     # the line objects of any shape
    write("bench/data/archive.json.gz", 1_000_000, seed=0, shape="archive")

Command line::

    python bench/gen_events.py bench/data/events.ndjson --events 1000000 --seed 0

Shapes (shared/spec/rudderstack-inputs.md):
- ``plain``: one event a line.
- ``batch``: HTTP ``/v1/batch`` request bodies ``{"batch": [...], "context", "integrations"}``
  as a client sends them (no gateway fields, no ``timestamp``; common context sometimes moved
  to the envelope).
- ``archive``: Event Replay archive lines ``{"userId", "payload", "createdAt", "messageId"}``,
  ``timestamp`` removed from the payload as the archiver does.
- ``legacy``: jobsdb ``gw_jobs`` rows with ``event_payload: {"batch": [...], ...}``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import heapq
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Final, TypeVar, cast

import orjson

SHAPES: Final = ("plain", "batch", "archive", "legacy")
EVENT_TYPES: Final = ("track", "identify", "page", "screen", "alias", "group")

# The type mix of ``generate``: page comes only from web, screen only from mobile apps.
DEFAULT_MIX: Final[Mapping[str, float]] = {"track": 60, "identify": 15, "page": 15, "screen": 10}

_PLATFORMS: Final = (("web", 0.42), ("android", 0.2), ("ios", 0.16), ("server", 0.22))
_SHARE: Final = dict(_PLATFORMS)
_MOBILE_SHARE: Final = _SHARE["android"] + _SHARE["ios"]

_START_MS: Final = 1_705_276_800_000  # 2024-01-15T00:00:00Z
_SESSION_GAP_S: Final = 20.0  # mean seconds between session starts
_USER_POOL: Final = 5000  # returning users remembered (keeps memory flat for any n)

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Country:
    code: str
    locales: tuple[str, ...]
    timezone: str
    currency: str
    phone_prefix: str
    phone_digits: int
    cities: tuple[tuple[str, str, str], ...]  # city, state, postal code


_COUNTRIES: Final = (
    _Country("US", ("en-US", "es-US"), "America/Los_Angeles", "USD", "+1415555", 4,
             (("San Francisco", "CA", "94105"), ("Austin", "TX", "78701"),
              ("New York", "NY", "10001"), ("Seattle", "WA", "98101"))),
    _Country("IN", ("en-IN", "hi-IN"), "Asia/Kolkata", "INR", "+9198", 8,
             (("Bengaluru", "KA", "560001"), ("Mumbai", "MH", "400001"),
              ("Pune", "MH", "411001"), ("New Delhi", "DL", "110001"))),
    _Country("GB", ("en-GB",), "Europe/London", "GBP", "+447700900", 3,
             (("London", "England", "EC1A 1BB"), ("Manchester", "England", "M1 1AE"))),
    _Country("DE", ("de-DE",), "Europe/Berlin", "EUR", "+49151", 8,
             (("Berlin", "BE", "10115"), ("München", "BY", "80331"))),
    _Country("BR", ("pt-BR",), "America/Sao_Paulo", "BRL", "+5511 9", 8,
             (("São Paulo", "SP", "01001-000"), ("Rio de Janeiro", "RJ", "20010-000"))),
    _Country("SG", ("en-SG", "zh-SG"), "Asia/Singapore", "SGD", "+659", 7,
             (("Singapore", "", "018956"),)),
    _Country("AE", ("ar-AE", "en-AE"), "Asia/Dubai", "AED", "+97150", 7,
             (("Dubai", "Dubai", "00000"), ("Abu Dhabi", "Abu Dhabi", "00000"))),
    _Country("JP", ("ja-JP",), "Asia/Tokyo", "JPY", "+8190", 8,
             (("Tokyo", "Tokyo", "100-0001"), ("Osaka", "Osaka", "530-0001"))),
)
_COUNTRY_WEIGHTS: Final = (40, 22, 9, 8, 7, 5, 4, 5)

_FIRST_NAMES: Final = (
    "Olivia", "Liam", "Priya", "Arjun", "Mei", "Hiroshi", "Fatima", "Omar", "Sofia", "Mateo",
    "Chloé", "Zoë", "Jürgen", "Ngozi", "Aarav", "Emma", "Noah", "Ananya", "Lucas", "Yuki",
    "Amelia", "Ethan", "Isabela", "Kwame", "Layla", "Diego", "Hannah", "Rohan", "Sara", "Wei",
)
_LAST_NAMES: Final = (
    "Smith", "Nguyen", "Sharma", "García", "Müller", "Tanaka", "Okafor", "Silva", "Kim",
    "Johnson", "Patel", "Rossi", "Haddad", "O'Brien", "Kowalski", "Chen", "Iyer", "Dubois",
    "Andersson", "Mensah", "López", "Schmidt", "Reddy", "Costa", "Ito",
)
_STREETS: Final = ("Market St", "Main Street", "MG Road", "High Street", "Hauptstraße",
                   "Rua Augusta", "Orchard Rd", "Sheikh Zayed Rd", "Chuo-dori", "Elm Avenue")
_EMAIL_DOMAINS: Final = ("example.com", "example.net", "example.org", "mail.example.com")
_GENDERS: Final = (("female", 22), ("male", 22), ("F", 10), ("M", 10), ("Female", 8),
                   ("Male", 8), ("f", 4), ("m", 4), ("other", 5), ("FEMALE", 2),
                   ("non-binary", 3), ("prefer_not_to_say", 2))
_PLANS: Final = ("free", "free", "basic", "pro", "pro", "enterprise")
_CATEGORIES: Final = ("Shoes", "Apparel", "Electronics", "Home & Kitchen", "Beauty", "Books",
                      "Sports", "Toys")
_BRANDS: Final = ("Acme", "Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Stark",
                  "Wayne")
_ADJECTIVES: Final = ("Classic", "Ultra", "Eco", "Pro", "Mini", "Smart", "Vintage", "Urban",
                      "Trail", "Cozy")
_NOUNS: Final = {
    "Shoes": ("Runner", "Sneaker", "Loafer", "Boot"),
    "Apparel": ("Hoodie", "T-Shirt", "Denim Jacket", "Rain Coat"),
    "Electronics": ("Earbuds", "Smartwatch", "Power Bank", "Speaker"),
    "Home & Kitchen": ("French Press", "Skillet", "Throw Blanket", "Desk Lamp"),
    "Beauty": ("Face Serum", "Lip Balm", "Shampoo Bar", "Sunscreen SPF 50"),
    "Books": ("Cookbook", "Sci-Fi Novel", "Travel Guide", "Notebook"),
    "Sports": ("Yoga Mat", "Water Bottle", "Tennis Racket", "Dumbbell Set"),
    "Toys": ("Puzzle 1000pc", "Building Blocks", "Plush Bear", "RC Car"),
}
_VARIANTS: Final = ("Black", "White", "Navy", "Red", "Olive", "42", "M", "L", "128GB", None)
_CURRENCIES_RATE: Final = {"USD": 1.0, "INR": 83.0, "GBP": 0.79, "EUR": 0.92, "BRL": 4.9,
                           "SGD": 1.34, "AED": 3.67, "JPY": 148.0}
_SITE: Final = "https://shop.example.com"
_REFERRERS: Final = ("$direct", "$direct", "https://www.google.com/", "https://www.bing.com/",
                     "https://t.co/", "https://www.facebook.com/", "https://news.example.org/")
_UTM: Final[tuple[dict[str, str], ...]] = (
    {}, {}, {}, {"name": "spring_sale", "source": "newsletter", "medium": "email"},
    {"name": "brand", "source": "google", "medium": "cpc", "term": "running shoes"},
    {"name": "retargeting", "source": "facebook", "medium": "social"})
_WEB_UAS: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
)
_WEB_SCREENS: Final = ((1440, 900, 2), (1920, 1080, 1), (1536, 864, 1.25), (390, 844, 3),
                       (412, 915, 2.625))
_ANDROID_DEVICES: Final = (("samsung", "SM-S911B", "dm1q", "14"), ("Google", "Pixel 7",
                           "panther", "13"), ("Xiaomi", "2201117TG", "spes", "13"),
                           ("OnePlus", "CPH2449", "OP5929L1", "14"), ("motorola",
                           "moto g54 5G", "cancunf", "13"))
_IOS_DEVICES: Final = (("iPhone14,2", "17.2"), ("iPhone15,3", "17.1.2"), ("iPhone13,1", "16.6.1"),
                       ("iPad13,4", "17.2"), ("iPhone16,1", "17.3"))
_CARRIERS: Final = ("T-Mobile", "Verizon", "Jio", "Airtel", "Vodafone", "O2", "Singtel",
                    "Etisalat", "NTT DOCOMO", "unavailable")
_SERVER_LIBS: Final = (("@rudderstack/rudder-sdk-node", "2.0.7"), ("rudder-sdk-python", "2.0.8"),
                       ("rudder-sdk-go", "1.1.1"), ("rudder-sdk-java", "3.0.2"))
_SERVER_IPS: Final = ("10.12.4.21", "10.12.7.3", "34.120.45.9", "52.14.230.17")
_WEB_LIB_VERSIONS: Final = ("3.0.0-beta.20", "3.7.2", "2.48.1", "1.1.11")
_ALNUM: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_URLSAFE: Final = _ALNUM + "-_"

# Track events: (name, weight, platforms or None for all). Order Completed is 10% of tracks.
_TRACK_EVENTS: Final = (
    ("Order Completed", 10, None), ("Product Viewed", 20, None), ("Product Added", 10, None),
    ("Product List Viewed", 6, None), ("Products Searched", 6, None), ("Cart Viewed", 5, None),
    ("Checkout Started", 6, None), ("Product Removed", 3, None), ("Coupon Applied", 3, None),
    ("Signed Up", 5, None), ("Logged In", 5, None), ("Video Played", 8, None),
    ("Subscription Started", 3, None), ("Application Opened", 6, ("android", "ios")),
    ("Push Notification Opened", 2, ("android", "ios")), ("Form Submitted", 2, ("web",)),
)
_WEB_PAGES: Final = (
    ("/", "Acme Shop", "Home", "Landing"),
    ("/products/{slug}", "{product} | Acme Shop", "Product Detail", "Catalog"),
    ("/products/{slug}", "{product} | Acme Shop", "Product Detail", "Catalog"),
    ("/category/{category}", "{category} | Acme Shop", "Category", "Catalog"),
    ("/cart", "Your Cart", "Cart", "Checkout"),
    ("/checkout", "Checkout", "Checkout", "Checkout"),
    ("/search", "Search results", "Search", "Catalog"),
    ("/blog/{slug}", "{product}: the guide | Acme Blog", "Blog Post", "Content"),
    ("/account", "My Account", "Account", "Account"),
    ("/pricing", "Pricing", "Pricing", "Marketing"),
)
_SCREENS: Final = (("Home", "Main"), ("Product Detail", "Catalog"), ("Cart", "Checkout"),
                   ("Checkout", "Checkout"), ("Search", "Catalog"), ("Profile", "Account"),
                   ("Settings", "Account"), ("Order History", "Account"), ("Video Player", "Media"))


@dataclass(frozen=True)
class _Product:
    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    price: float
    variant: str | None
    slug: str


@dataclass
class _User:
    platform: str
    country: _Country
    anonymous_id: str | None
    user_id: str | None
    traits: dict[str, Any]
    context: dict[str, Any]
    ip: str
    request_ip: str  # the address the gateway sees: the user's, or the backend's for server SDKs
    skew_ms: int
    identified_traits_in_context: bool = False


@dataclass
class _Timed:
    """An event with the times behind its ISO strings (ms since the epoch)."""

    orig: int
    sent: int
    recv: int
    event: dict[str, Any]


@dataclass
class _Options:
    user_id_rate: float
    mix: dict[str, float]
    identified_tracks: bool
    session_events: float
    weights: dict[str, tuple[list[str], list[float]]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """``2024-01-15T10:22:11.123Z`` for milliseconds since the epoch (what the SDKs send)."""
    t = time.gmtime(ms // 1000)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ms % 1000:03d}Z")


def _iso_us(us: int) -> str:
    """RFC 3339 with microseconds, as Postgres/Go write job timestamps."""
    t = time.gmtime(us // 1_000_000)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{us % 1_000_000:06d}Z")


def rudder_id(user_id: str | None, anonymous_id: str | None) -> str:
    """The gateway's rudderId: an MD5-based UUID of ``userId:anonymousId``."""
    digest = hashlib.md5(f"{user_id or ''}:{anonymous_id or ''}".encode()).digest()
    return str(uuid.UUID(bytes=digest, version=3))


def _without_timestamp(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "timestamp"}


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, seed: int, options: _Options) -> None:
        self.rng = random.Random(seed)
        # Shape-level choices (request sizes, job ids, createdAt) draw from their own stream,
        # so every shape of one seed carries the same events.
        self.shape_rng = random.Random(f"shape-{seed}")
        self.opts = options
        self.clock_ms = _START_MS
        self.users: list[_User] = []
        self.products = [self._product(i) for i in range(80)]
        self.workspace_id = self._ksuid()
        self.source_id = self._ksuid()
        self.write_key = self._ksuid()
        self._platform_weights()
        # Server users always have a userId; web/mobile users make up the rest of the rate.
        server = _SHARE["server"]
        self.client_rate = max(0.0, (options.user_id_rate - server) / (1.0 - server))

    # ---- ids ---------------------------------------------------------------------------------

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def _chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choices(alphabet, k=n))

    def _ksuid(self) -> str:
        return "2" + self._chars(_ALNUM, 26)

    def _ip(self) -> str:
        r = self.rng
        return f"{r.choice((24, 49, 73, 86, 103, 117, 152, 185, 203))}.{r.randint(1, 254)}." \
               f"{r.randint(0, 255)}.{r.randint(1, 254)}"

    # ---- catalog -----------------------------------------------------------------------------

    def _product(self, i: int) -> _Product:
        r = self.rng
        category = r.choice(_CATEGORIES)
        name = f"{r.choice(_ADJECTIVES)} {r.choice(_NOUNS[category])}"
        price = round(r.choice((4.99, 9.99, 14.5, 19.99, 24.0, 39.95, 59.99, 89.0, 129.99,
                                249.0)) * r.choice((1, 1, 1, 1.5, 2)), 2)
        slug = name.lower().replace(" ", "-").replace("&", "and") + f"-{i}"
        return _Product(f"{100000 + i * 37}", f"SKU-{r.randint(10000, 99999)}", name, category,
                        r.choice(_BRANDS), price, r.choice(_VARIANTS), slug)

    def _product_props(self, p: _Product, currency: str, *, position: bool = False
                       ) -> dict[str, Any]:
        props: dict[str, Any] = {
            "product_id": p.product_id, "sku": p.sku, "name": p.name, "category": p.category,
            "brand": p.brand, "price": self._price(p.price, currency),
        }
        if p.variant is not None:
            props["variant"] = p.variant
        if self.rng.random() < 0.6:
            props["url"] = f"{_SITE}/products/{p.slug}"
        if self.rng.random() < 0.3:
            props["image_url"] = f"https://cdn.example.com/img/{p.product_id}.jpg"
        if position:
            props["position"] = self.rng.randint(1, 24)
        return props

    @staticmethod
    def _price(usd: float, currency: str) -> float:
        value = usd * _CURRENCIES_RATE[currency]
        return float(round(value)) if currency == "JPY" else round(value, 2)

    # ---- type mix ----------------------------------------------------------------------------

    def _platform_weights(self) -> None:
        """Per-platform type weights that add up to the global mix (page web, screen mobile)."""
        mix = self.opts.mix
        total = sum(mix.values())
        share = {k: v / total for k, v in mix.items()}
        page = share.get("page", 0.0) / _SHARE["web"]
        screen = share.get("screen", 0.0) / _MOBILE_SHARE
        if page > 1 or screen > 1:
            raise ValueError("mix: too many page or screen events for the platform shares")
        rest = {k: v for k, v in share.items() if k not in ("page", "screen")}
        rest_total = sum(rest.values()) or 1.0
        for platform, _ in _PLATFORMS:
            own = page if platform == "web" else screen if platform in ("android", "ios") else 0
            left = 1.0 - own
            weights = {k: left * v / rest_total for k, v in rest.items()}
            if platform == "web" and page:
                weights["page"] = page
            if platform in ("android", "ios") and screen:
                weights["screen"] = screen
            if platform == "server" and not rest:
                weights["track"] = 1.0
            self.opts.weights[platform] = (list(weights), list(weights.values()))

    # ---- users -------------------------------------------------------------------------------

    def _user(self) -> _User:
        r = self.rng
        pool = len(self.users)
        if pool and r.random() < 0.55 * pool / (pool + 150):  # returning users, once there are some
            return r.choice(self.users)
        platform = r.choices([p for p, _ in _PLATFORMS], [w for _, w in _PLATFORMS])[0]
        country = r.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
        user_id = self._user_id() if platform == "server" or r.random() < self.client_rate \
            else None
        anonymous_id: str | None
        if platform == "server":
            anonymous_id = self.uuid4() if r.random() < 0.2 else None
        elif platform == "ios":
            anonymous_id = self.uuid4().upper()
        else:
            anonymous_id = self.uuid4()
        ip = self._ip()
        request_ip = r.choice(_SERVER_IPS) if platform == "server" else ip
        user = _User(platform, country, anonymous_id, user_id, self._traits(country),
                     {}, ip, request_ip, self._skew())
        user.context = self._base_context(user)
        if len(self.users) < _USER_POOL:
            self.users.append(user)
        else:
            self.users[r.randrange(_USER_POOL)] = user
        return user

    def _user_id(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.5:
            return str(r.randint(10_000, 9_999_999))
        if kind < 0.8:
            return f"usr_{self._hex(12)}"
        return self.uuid4()

    def _skew(self) -> int:
        r = self.rng
        return r.randint(-300_000, 300_000) if r.random() < 0.15 else 0

    def _traits(self, country: _Country) -> dict[str, Any]:
        r = self.rng
        first, last = r.choice(_FIRST_NAMES), r.choice(_LAST_NAMES)
        local = f"{first}.{last}".lower().replace("'", "")
        traits: dict[str, Any] = {
            "email": f"{local}{r.randint(1, 999)}@{r.choice(_EMAIL_DOMAINS)}",
        }
        style = r.random()
        if style < 0.55:
            traits["firstName"], traits["lastName"] = first, last
        elif style < 0.9:
            traits["name"] = f"{first} {last}"
        else:
            traits["name"] = f"{first} {last}"
            traits["firstName"], traits["lastName"] = first, last
        if r.random() < 0.85:
            digits = "".join(r.choices("0123456789", k=country.phone_digits))
            traits["phone"] = (country.phone_prefix + digits).replace(" ", "")
        if r.random() < 0.85:
            traits["gender"] = r.choices([g for g, _ in _GENDERS], [w for _, w in _GENDERS])[0]
        if r.random() < 0.8:
            day = f"{r.randint(1955, 2006):04d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
            traits["birthday"] = day if r.random() < 0.75 else f"{day}T00:00:00.000Z"
        if r.random() < 0.6:
            city, state, postal = r.choice(country.cities)
            traits["address"] = {"street": f"{r.randint(1, 999)} {r.choice(_STREETS)}",
                                 "city": city, "state": state, "postalCode": postal,
                                 "country": country.code}
        traits["plan"] = r.choice(_PLANS)
        if r.random() < 0.5:
            traits["loyalty_points"] = r.randint(0, 25_000)
        if r.random() < 0.6:
            traits["newsletter_opt_in"] = r.random() < 0.6
        if r.random() < 0.25:
            traits["company"] = {"name": f"{r.choice(_BRANDS)} {r.choice(('Inc', 'GmbH', 'Ltd'))}",
                                 "id": f"co_{self._hex(6)}", "employee_count": r.randint(2, 5000)}
        if r.random() < 0.15:
            traits["tags"] = r.sample(["beta", "vip", "early_adopter", "wholesale", "churn_risk"],
                                      r.randint(1, 3))
        if r.random() < 0.3:
            traits["preferred_language"] = r.choice(country.locales)[:2]
        signup = _START_MS - r.randint(0, 3 * 365 * 86_400_000)
        traits["createdAt"] = iso_ms(signup)
        return traits

    def _base_context(self, user: _User) -> dict[str, Any]:
        r = self.rng
        country = user.country
        locale = r.choice(country.locales)
        ctx: dict[str, Any]
        if user.platform == "web":
            width, height, density = r.choice(_WEB_SCREENS)
            version = r.choice(_WEB_LIB_VERSIONS)
            ctx = {"library": {"name": "RudderLabs JavaScript SDK", "version": version},
                   "userAgent": r.choice(_WEB_UAS), "locale": locale, "timezone": country.timezone}
            screen: dict[str, Any] = {"density": density}
            if not version.startswith("1."):
                screen.update(width=width, height=height)
            if version.startswith("3."):  # the v3 SDK sends more
                ctx["os"] = {"name": "", "version": ""}
                screen.update(innerWidth=width, innerHeight=height - r.randint(60, 140))
            ctx["screen"] = screen
            ctx["ip"] = user.ip
            return ctx
        if user.platform == "server":
            lib_name, version = r.choice(_SERVER_LIBS)
            ctx = {"library": {"name": lib_name, "version": version}}
            if r.random() < 0.5:
                ctx["ip"] = user.ip
            if r.random() < 0.3:
                ctx["locale"] = locale
            return ctx
        has_token = r.random() < 0.3
        app = {"build": str(r.randint(30, 420)), "name": "Acme Shop",
               "namespace": "com.example.shop", "version": r.choice(("4.2.0", "4.3.1", "5.0.0"))}
        if user.platform == "android":
            maker, model, codename, os_version = r.choice(_ANDROID_DEVICES)
            device: dict[str, Any] = {
                "id": self._hex(16), "manufacturer": maker, "model": model, "name": codename,
                "type": "Android", "adTrackingEnabled": r.random() < 0.5,
            }
            if device["adTrackingEnabled"]:
                device["advertisingId"] = self.uuid4()
            if has_token:
                device["token"] = (f"{self._chars(_URLSAFE, 22)}:APA91b"
                                   f"{self._chars(_URLSAFE, 134)}")
            lib = {"name": "com.rudderstack.android.sdk.core",
                   "version": r.choice(("1.20.1", "1.21.0", "1.19.2"))}
            os_ = {"name": "Android", "version": os_version}
            screen = {"density": r.choice((2, 3)), "width": 1080, "height": 2400}
            agent: str | None = (f"Dalvik/2.1.0 (Linux; U; Android {os_version}; {model} "
                                 f"Build/UP1A.231005.007)")
        else:
            model, os_version = r.choice(_IOS_DEVICES)
            device = {"id": user.anonymous_id or self.uuid4().upper(), "manufacturer": "Apple",
                      "model": model, "name": "iPhone" if "iPhone" in model else "iPad",
                      "type": "iOS"}
            if has_token:
                device["token"] = self._hex(64)
            lib = {"name": "rudder-ios-library", "version": r.choice(("1.25.0", "1.24.1"))}
            os_ = {"name": "iOS", "version": os_version}
            screen = {"density": 3, "width": 390, "height": 844}
            agent = None
        ctx = {
            "library": lib, "app": app, "device": device, "os": os_, "screen": screen,
            "network": {"carrier": r.choice(_CARRIERS), "wifi": r.random() < 0.6,
                        "cellular": r.random() < 0.4},
            "locale": locale, "timezone": country.timezone, "ip": user.ip,
        }
        if agent:
            ctx["userAgent"] = agent
        return ctx

    # ---- sessions ----------------------------------------------------------------------------

    def sessions(self, n: int) -> Iterator[tuple[int, list[_Timed]]]:
        """(start, events) of sessions of one user each, in start order; ``n`` events in all.

        Every event arrives (``receivedAt``) after its session's start.
        """
        r = self.rng
        made = 0
        while made < n:
            self.clock_ms += int(r.expovariate(1.0 / _SESSION_GAP_S) * 1000) + 1
            user = self._user()
            mean = self.opts.session_events
            length = min(n - made, 1 + int(r.expovariate(1 / mean)) if r.random() < 0.9
                         else r.randint(int(2.5 * mean), int(10 * mean)))
            made += length
            yield self.clock_ms, self._session(user, length)

    def _session(self, user: _User, length: int) -> list[_Timed]:
        r = self.rng
        session_id = self.clock_ms if user.platform == "web" else self.clock_ms // 1000
        t = self.clock_ms
        names, weights = self.opts.weights[user.platform]
        campaign = r.choice(_UTM) if user.platform == "web" else {}
        referrer = r.choice(_REFERRERS)
        out = []
        for _ in range(length):
            t += r.randint(800, 90_000)
            etype = r.choices(names, weights)[0]
            event = self._event(user, etype, session_id, campaign, referrer)
            out.append(self._times(user, t, event))
        return out

    def _times(self, user: _User, true_ms: int, event: dict[str, Any]) -> _Timed:
        r = self.rng
        if user.platform == "server":
            delay = r.randint(2, 400)
        elif user.platform == "web":
            delay = r.randint(150, 2500)
        else:
            delay = r.randint(500, 30_000) if r.random() < 0.97 else r.randint(1, 36) * 3_600_000
        orig = true_ms + user.skew_ms
        sent = orig + delay
        recv = true_ms + delay + r.randint(25, 900)
        event["originalTimestamp"] = iso_ms(orig)
        event["sentAt"] = iso_ms(sent)
        event["receivedAt"] = iso_ms(recv)
        event["timestamp"] = iso_ms(recv - (sent - orig))
        event["rudderId"] = rudder_id(event.get("userId"), event.get("anonymousId"))
        event["request_ip"] = user.request_ip
        event["integrations"] = {"All": True}
        payload = event.pop("_payload")
        event.update(payload)
        return _Timed(orig, sent, recv, event)

    # ---- events ------------------------------------------------------------------------------

    def _event(self, user: _User, etype: str, session_id: int, campaign: dict[str, Any],
               referrer: str) -> dict[str, Any]:
        r = self.rng
        if etype == "alias" and not user.user_id:
            etype = "track"
        channel = "web" if user.platform == "web" else (
            "server" if user.platform == "server" else "mobile")
        event: dict[str, Any] = {"messageId": self.uuid4(), "type": etype, "channel": channel}
        anonymous = user.anonymous_id
        user_id = user.user_id
        if (user_id is None and self.opts.identified_tracks
                and etype in ("track", "page", "screen")):
            user_id = user.user_id = self._user_id()
        if anonymous:
            event["anonymousId"] = anonymous
        if user_id:
            event["userId"] = user_id
        ctx = {k: dict(v) if isinstance(v, dict) else v for k, v in user.context.items()}
        if user.platform != "server":
            ctx["sessionId"] = session_id
        if campaign:
            ctx["campaign"] = dict(campaign)
        event["context"] = ctx
        if etype == "identify":
            payload = self._identify(user, ctx)
        elif etype == "alias":
            payload = {"previousId": anonymous or f"guest-{self._hex(8)}"}
            if r.random() < 0.3:
                payload["traits"] = {"email": user.traits["email"]}
        elif etype == "group":
            payload = {"groupId": f"co_{self._hex(6)}", "traits": {
                "name": f"{r.choice(_BRANDS)} {r.choice(('Inc', 'GmbH', 'Ltd'))}",
                "industry": r.choice(("Retail", "Software", "Logistics")),
                "employees": r.randint(2, 5000)}}
        elif etype == "page":
            payload = self._page(ctx, referrer)
        elif etype == "screen":
            payload = self._screen(user)
        else:
            payload = self._track(user, ctx)
        self._context_traits(user, ctx, etype)
        if user.platform == "web" and etype != "page":
            ctx["page"] = self._page_context(self._pick_page(), referrer)
        event["_payload"] = payload
        return event

    def _context_traits(self, user: _User, ctx: dict[str, Any], etype: str) -> None:
        """What the SDKs put in context.traits on every call: the ids and stored traits."""
        if etype == "identify":
            return
        r = self.rng
        traits: dict[str, Any] = {}
        if user.platform in ("android", "ios"):
            traits["anonymousId"] = user.anonymous_id
            if user.user_id:
                traits["userId"] = user.user_id
        if user.user_id and user.platform != "server" and r.random() < 0.3:
            traits["email"] = user.traits["email"]
            if "firstName" in user.traits:
                traits["firstName"] = user.traits["firstName"]
        if traits:
            ctx["traits"] = traits

    def _identify(self, user: _User, ctx: dict[str, Any]) -> dict[str, Any]:
        r = self.rng
        # A copy: callers may edit an event without touching the user's stored traits.
        full = {k: dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
                for k, v in user.traits.items()}
        if r.random() < 0.6:
            traits = full
        else:  # a partial update: email plus a few keys
            keys = ["email", *r.sample(sorted(k for k in full if k != "email"),
                                       min(len(full) - 1, r.randint(1, 5)))]
            traits = {k: full[k] for k in full if k in keys}
        if r.random() < 0.05:
            traits["ts"] = self._ts()
        if user.platform in ("android", "ios"):
            traits = {"anonymousId": user.anonymous_id, **traits}
            if user.user_id:
                traits["userId"] = user.user_id
        where = r.random()
        in_context = {"web": 0.3, "android": 0.6, "ios": 0.6}.get(user.platform, 0.15)
        if where < in_context:
            ctx["traits"] = traits
            return {}
        if where < in_context + 0.15:  # both: the SDK's stored traits plus this call's traits
            ctx["traits"] = {k: traits[k] for k in list(traits)[:3]}
        return {"traits": traits}

    def _ts(self) -> Any:
        """An explicit ``ts``: epoch seconds (number or numeric string) or an ISO string."""
        r = self.rng
        ms = self.clock_ms - r.randint(0, 30 * 86_400_000)
        kind = r.random()
        if kind < 0.35:
            return ms // 1000
        if kind < 0.55:
            return str(ms // 1000)
        if kind < 0.85:
            return iso_ms(ms)
        t = time.gmtime(ms // 1000 + 19_800)
        return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
                f"{t.tm_sec:02d}+05:30")

    def _pick_page(self) -> tuple[str, str, str, str]:
        r = self.rng
        path, title, name, category = r.choice(_WEB_PAGES)
        p = r.choice(self.products)
        path = path.format(slug=p.slug, category=p.category.lower().replace(" & ", "-"))
        title = title.format(product=p.name, category=p.category)
        return path, title, name, category

    def _page_context(self, page: tuple[str, str, str, str], referrer: str) -> dict[str, Any]:
        path, title, _, _ = page
        search = "?q=" + self.rng.choice(("shoes", "gift", "sale")) if path == "/search" else ""
        out = {"path": path, "referrer": referrer, "search": search, "title": title,
               "url": f"{_SITE}{path}{search}"}
        if not search:
            del out["search"]
        return out

    def _page(self, ctx: dict[str, Any], referrer: str) -> dict[str, Any]:
        r = self.rng
        page = self._pick_page()
        pctx = self._page_context(page, referrer)
        ctx["page"] = pctx
        _, _, name, category = page
        props: dict[str, Any] = {"name": name, "category": category}
        props.update(pctx)
        if r.random() < 0.05:
            props["ts"] = self._ts()
        payload: dict[str, Any] = {"name": name, "category": category, "properties": props}
        if r.random() < 0.1:
            del payload["name"], props["name"]
        return payload

    def _screen(self, user: _User) -> dict[str, Any]:
        r = self.rng
        name, category = r.choice(_SCREENS)
        props: dict[str, Any] = {"name": name, "category": category}
        if name == "Product Detail":
            p = r.choice(self.products)
            props.update(product_id=p.product_id, product_name=p.name)
        if user.platform == "ios":
            props["screen_class"] = f"{name.replace(' ', '')}ViewController"
        elif r.random() < 0.5:
            props["automatic"] = False
        if r.random() < 0.05:
            props["ts"] = self._ts()
        return {"name": name, "properties": props}

    def _track(self, user: _User, ctx: dict[str, Any]) -> dict[str, Any]:
        r = self.rng
        candidates = [(n, w) for n, w, plat in _TRACK_EVENTS if plat is None
                      or user.platform in plat]
        name = r.choices([n for n, _ in candidates], [w for _, w in candidates])[0]
        currency = user.country.currency
        props = self._track_props(name, currency, user)
        if r.random() < 0.05:
            props["ts"] = self._ts()
        return {"event": name, "properties": props}

    def _track_props(self, name: str, currency: str, user: _User) -> dict[str, Any]:
        r = self.rng
        p = r.choice(self.products)
        if name == "Order Completed":
            return self._order(currency)
        if name == "Product Viewed":
            props = self._product_props(p, currency, position=r.random() < 0.3)
            props["currency"] = currency
            if r.random() < 0.3:
                props["dimensions"] = {"width_cm": r.randint(5, 60), "height_cm":
                                       r.randint(5, 60), "weight_kg": round(r.uniform(.1, 4), 2)}
            return props
        if name in ("Product Added", "Product Removed"):
            props = self._product_props(p, currency)
            props.update(quantity=r.randint(1, 3), currency=currency, cart_id=self._hex(16))
            return props
        if name == "Product List Viewed":
            slug = p.category.lower().replace(" & ", "-")
            return {"list_id": f"{slug}-list", "category": p.category,
                    "product_ids": [q.product_id for q in r.sample(self.products, 4)],
                    "sort": r.choice(("relevance", "price_asc", "newest"))}
        if name == "Products Searched":
            filters: dict[str, Any] = {"brand": r.choice(_BRANDS), "in_stock": True}
            if r.random() < 0.5:
                filters["price_max"] = r.choice((50, 100, 250))
            return {"query": r.choice(("running shoes", "gift for dad", "yoga", "earbuds",
                                       "blanket", "sunscreen")),
                    "results_count": r.randint(0, 240), "filters": filters}
        if name == "Cart Viewed":
            return {"cart_id": self._hex(16), "item_count": r.randint(1, 6),
                    "value": self._price(round(r.uniform(10, 400), 2), currency),
                    "currency": currency}
        if name == "Checkout Started":
            value = self._price(round(r.uniform(15, 600), 2), currency)
            city, state, postal = r.choice(user.country.cities)
            return {"order_id": f"ORD-{r.randint(10000, 99999)}", "value": value,
                    "revenue": value, "currency": currency,
                    "shipping_method": r.choice(("standard", "express", "pickup")),
                    "shipping_address": {"city": city, "state": state, "postal_code": postal,
                                         "country": user.country.code}}
        if name == "Coupon Applied":
            code = r.choice(("SPRING10", "WELCOME15", "FREESHIP", "VIP20"))
            return {"coupon_id": code, "coupon_name": code.title(), "order_id":
                    f"ORD-{r.randint(10000, 99999)}", "discount": r.choice((5, 10, 15, 20))}
        if name == "Signed Up":
            props = {"method": r.choice(("email", "google", "apple", "facebook")),
                     "plan": r.choice(_PLANS), "trial": r.random() < 0.4}
            if r.random() < 0.4:
                props["referral"] = {"source": r.choice(("friend", "podcast", "ad")),
                                     "code": f"REF-{self._hex(6).upper()}"}
            return props
        if name == "Logged In":
            return {"method": r.choice(("password", "google", "apple", "magic_link")),
                    "remember_me": r.random() < 0.5}
        if name == "Video Played":
            duration = r.randint(30, 1800)
            return {"video_id": f"vid_{self._hex(8)}", "title": f"How to style your {p.name}",
                    "content_type": r.choice(("tutorial", "ad", "review")),
                    "video": {"duration": duration, "position": r.randint(0, duration),
                              "quality": r.choice(("720p", "1080p", "auto")),
                              "player": {"name": "html5", "muted": r.random() < 0.3}},
                    "full_screen": r.random() < 0.2, "sound": r.randint(0, 100)}
        if name == "Subscription Started":
            return {"plan": r.choice(("pro", "enterprise", "basic")),
                    "billing_period": r.choice(("monthly", "annual")),
                    "amount": self._price(r.choice((9.99, 19.99, 99.0)), currency),
                    "currency": currency, "trial_days": r.choice((0, 7, 14))}
        if name == "Application Opened":
            return {"from_background": r.random() < 0.6,
                    "version": user.context["app"]["version"],
                    "build": user.context["app"]["build"]}
        if name == "Push Notification Opened":
            return {"campaign": {"id": f"cmp_{self._hex(6)}", "name": r.choice(
                ("Back in stock", "Flash sale", "Cart reminder")), "medium": "push"},
                    "action": r.choice(("open", "deeplink"))}
        return {"form_id": r.choice(("newsletter", "contact", "b2b-inquiry")),
                "fields": r.randint(1, 8), "success": r.random() < 0.9}

    def _order(self, currency: str) -> dict[str, Any]:
        r = self.rng
        products = []
        subtotal = 0.0
        for p in r.sample(self.products, r.randint(1, 4)):
            item = self._product_props(p, currency)
            item["quantity"] = r.choice((1, 1, 1, 2, 3))
            subtotal += item["price"] * item["quantity"]
            products.append(item)
        subtotal = round(subtotal, 2)
        discount = round(subtotal * r.choice((0, 0, 0, 0.1, 0.15)), 2)
        shipping = 0.0 if subtotal > 50 else self._price(4.99, currency)
        tax = round((subtotal - discount) * 0.08, 2)
        revenue = round(subtotal - discount, 2)
        props: dict[str, Any] = {
            "checkout_id": self._hex(12) if r.random() < 0.7 else self.uuid4(),
            "order_id": f"ORD-{r.randint(10000, 99999)}",
            "affiliation": r.choice(("Acme Shop", "Acme App", "Marketplace")),
            "total": round(revenue + shipping + tax, 2), "subtotal": subtotal,
            "revenue": revenue, "shipping": shipping, "tax": tax, "discount": discount,
            "currency": currency,
        }
        if discount:
            props["coupon"] = r.choice(("SPRING10", "WELCOME15", "VIP20"))
        props["products"] = products
        return props

    # ---- shapes ------------------------------------------------------------------------------

    def chunks(self, session: list[_Timed]) -> Iterator[list[_Timed]]:
        """Split a session into the requests an SDK would flush (1 to 20 events each)."""
        r = self.shape_rng
        i = 0
        while i < len(session):
            size = min(20, 1 + int(r.expovariate(1 / 3.0)))
            chunk = session[i:i + size]
            i += size
            last = chunk[-1]
            for t in chunk:  # one request: one sentAt, one receivedAt
                t.event["sentAt"] = iso_ms(last.sent)
                t.event["receivedAt"] = iso_ms(last.recv)
                t.sent, t.recv = last.sent, last.recv
            yield chunk

    def batch_line(self, chunk: list[_Timed]) -> dict[str, Any]:
        """A client's ``/v1/batch`` body: no gateway fields, common context sometimes lifted."""
        drop = ("timestamp", "receivedAt", "rudderId", "request_ip")
        events = [{k: v for k, v in t.event.items() if k not in drop} for t in chunk]
        line: dict[str, Any] = {"batch": events}
        if self.shape_rng.random() < 0.5:
            contexts = [e["context"] for e in events]
            common = {k: v for k, v in contexts[0].items()
                      if all(c.get(k, None) == v for c in contexts[1:])}
            for e in events:
                e["context"] = {k: v for k, v in e["context"].items() if k not in common}
                if not e["context"]:
                    del e["context"]
                e.pop("integrations", None)
            line["context"] = common
            line["integrations"] = {"All": True}
        return line

    def legacy_row(self, chunk: list[_Timed], job_id: int) -> dict[str, Any]:
        first = chunk[0].event
        events = [_without_timestamp(t.event) for t in chunk]
        created_us = chunk[-1].recv * 1000 + self.shape_rng.randint(100, 9_999)
        received = first["receivedAt"]
        return {
            "job_id": job_id, "workspace_id": self.workspace_id,
            "uuid": str(uuid.UUID(int=self.shape_rng.getrandbits(128), version=4)),
            "user_id": _job_user(first),
            "parameters": {"source_id": self.source_id, "batch_id": 1,
                           "source_job_run_id": "", "source_task_run_id": ""},
            "custom_val": "GW",
            "event_payload": {"batch": events, "writeKey": self.write_key,
                              "requestIP": first["request_ip"], "receivedAt": received},
            "event_count": len(events), "created_at": _iso_us(created_us),
            "expire_at": _iso_us(created_us + 10 * 86_400_000_000),
        }

    def archive_line(self, timed: _Timed) -> dict[str, Any]:
        event = timed.event
        created_us = timed.recv * 1000 + self.shape_rng.randint(20_000, 3_000_000)
        return {"userId": _job_user(event), "payload": _without_timestamp(event),
                "createdAt": _iso_us(created_us), "messageId": event["messageId"]}


def _job_user(event: Mapping[str, Any]) -> str:
    """The gateway job's user key, ``<header><<>>anonymousId<<>>userId`` (header empty)."""
    return f"<<>>{event.get('anonymousId') or ''}<<>>{event.get('userId') or ''}"


def _interleave(groups: Iterable[tuple[int, list[tuple[int, T]]]]) -> Iterator[T]:
    """Merge groups of (time, item) by time.

    Each group comes with a start time no later than any of its items, and groups come in
    start order, so a group is admitted only once the merge reaches its start: the output is
    in time order and memory holds only the groups still open.
    """
    heap: list[tuple[int, int, int, list[tuple[int, T]]]] = []
    seq = 0
    it = iter(groups)
    pending = next(it, None)
    while pending is not None or heap:
        while pending is not None and (not heap or pending[0] <= heap[0][0]):
            items = sorted(pending[1], key=lambda pair: pair[0])
            if items:
                heapq.heappush(heap, (items[0][0], seq, 0, items))
                seq += 1
            pending = next(it, None)
        if not heap:
            break
        _, s, i, group = heapq.heappop(heap)
        yield group[i][1]
        if i + 1 < len(group):
            heapq.heappush(heap, (group[i + 1][0], s, i + 1, group))


def _make(seed: int, user_id_rate: float = 0.7, mix: Mapping[str, float] | None = None,
          identified_tracks: bool = False, session_events: float = 4.0) -> _Gen:
    if not 0.0 <= user_id_rate <= 1.0 or session_events < 1.0:
        raise ValueError("user_id_rate must be within 0..1 and session_events at least 1")
    unknown = set(mix or ()) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"mix: unknown types {sorted(unknown)}; use {', '.join(EVENT_TYPES)}")
    options = _Options(user_id_rate, dict(mix or DEFAULT_MIX), identified_tracks, session_events)
    return _Gen(seed, options)


def generate(n: int, seed: int = 0, *, user_id_rate: float = 0.7,
             mix: Mapping[str, float] | None = None, identified_tracks: bool = False,
             session_events: float = 4.0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` realistic RudderStack events (plain shape), in arrival order.

    ``user_id_rate``: share of users with a userId (server users always have one, so rates
    under their share give anonymous web/mobile users only).
    ``mix``: type weights (default 60 track / 15 identify / 15 page / 10 screen; ``alias`` and
    ``group`` are allowed). ``identified_tracks``: give every track/page/screen a userId.
    ``session_events``: typical events per user session (lower: more distinct users).
    """
    gen = _make(seed, user_id_rate, mix, identified_tracks, session_events)
    yield from _interleave((start, [(t.recv, t.event) for t in s])
                           for start, s in gen.sessions(n))


def _lines(shape: str, n: int, seed: int, **opts: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(events in the line, line object) for a shape; ``opts`` as for ``generate``."""
    gen = _make(seed, **opts)
    if shape == "plain":
        for event in _interleave((start, [(t.recv, t.event) for t in s])
                                 for start, s in gen.sessions(n)):
            yield 1, event
    elif shape == "archive":
        for timed in _interleave((start, [(t.recv, t) for t in s])
                                 for start, s in gen.sessions(n)):
            yield 1, gen.archive_line(timed)
    elif shape in ("batch", "legacy"):
        chunks = _interleave((start, [(c[-1].recv, c) for c in gen.chunks(s)])
                             for start, s in gen.sessions(n))
        for job_id, chunk in enumerate(chunks, start=1001):
            line = gen.batch_line(chunk) if shape == "batch" else gen.legacy_row(chunk, job_id)
            yield len(chunk), line
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def lines(shape: str, n: int, seed: int = 0, **opts: Any) -> Iterator[dict[str, Any]]:
    """The line objects of a shape (``plain``, ``batch``, ``archive``, ``legacy``)."""
    return (line for _, line in _lines(shape, n, seed, **opts))


@dataclass(frozen=True)
class WriteStats:
    events: int
    lines: int
    bytes: int  # uncompressed, newlines included

    @property
    def avg_event_bytes(self) -> float:
        return self.bytes / self.events if self.events else 0.0


@contextmanager
def open_output(path: str) -> Iterator[IO[bytes]]:
    """A binary writer for ``path`` (``-`` is stdout); ``.gz`` is gzip with a fixed header."""
    if path == "-":
        with _gzipped(path, sys.stdout.buffer) as out:
            yield out
    else:
        with open(path, "wb") as raw, _gzipped(path, raw) as out:
            yield out


@contextmanager
def _gzipped(path: str, raw: IO[bytes]) -> Iterator[IO[bytes]]:
    if path.endswith(".gz"):
        # mtime=0 and no file name in the header: the same input gives the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            yield cast(IO[bytes], gz)
    else:
        yield raw


def write(path: str, n: int, seed: int = 0, shape: str = "plain", **opts: Any) -> WriteStats:
    """Write ``n`` events as NDJSON in ``shape`` to ``path`` (gzip if it ends with ``.gz``)."""
    events = count = size = 0
    dumps: Callable[[Any], bytes] = orjson.dumps
    with open_output(path) as out:
        block: list[bytes] = []
        pending = 0
        for k, line in _lines(shape, n, seed, **opts):
            data = dumps(line) + b"\n"
            block.append(data)
            pending += len(data)
            events += k
            count += 1
            if pending >= 1 << 20:  # GzipFile compresses per write call: write big blocks
                out.write(b"".join(block))
                size += pending
                block, pending = [], 0
        out.write(b"".join(block))
        size += pending
        out.flush()
    return WriteStats(events, count, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write deterministic, realistic RudderStack events as NDJSON "
                    "(.gz if OUT ends with .gz; - for stdout).",
        epilog="Example: python bench/gen_events.py bench/data/events.ndjson.gz "
               "--events 1000000 --shape archive")
    parser.add_argument("out", metavar="OUT")
    parser.add_argument("--events", "-n", type=int, default=10_000, help="events to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", choices=SHAPES, default="plain")
    parser.add_argument("--user-id-rate", type=float, default=0.7,
                        help="share of users with a userId (default 0.7)")
    args = parser.parse_args(argv)
    if args.events < 0:
        parser.error("--events must be >= 0")
    if not 0.0 <= args.user_id_rate <= 1.0:
        parser.error("--user-id-rate must be between 0 and 1")
    started = time.perf_counter()
    stats = write(args.out, args.events, args.seed, args.shape, user_id_rate=args.user_id_rate)
    took = time.perf_counter() - started
    print(f"wrote {stats.events} events in {stats.lines} lines ({args.shape}) to {args.out}: "
          f"{stats.bytes} bytes uncompressed, average {stats.avg_event_bytes:.0f} bytes/event, "
          f"{took:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
