"""The pure mapping core: RudderStack event dicts in, CleverTap record dicts out."""

from clevertap_mapper.mapping.core import Record, map_event
from clevertap_mapper.mapping.trace import FIXES, Decision, Trace

__all__ = ["FIXES", "Decision", "Record", "Trace", "map_event"]
