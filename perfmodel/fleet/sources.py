"""The built-in scenarios' citations: a ``reference KEY`` in a scenario file (a comment or
a ``sources`` entry) names the entry KEY of ``perfmodel/data/scenario_sources.toml``,
shipped with the package, which holds the figures, the date and the primary URLs."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources

__all__ = ["citations", "resolve", "scenario_sources"]

#: ``reference SECTION.NAME`` and, for ``tesla_fleet.events``, the event's date
#: (``2024-04-23``, ``2024-06`` or a quoted label), possibly on the next comment line.
_CITE = re.compile(
    r"reference ([a-z_]+)\.([a-z_0-9]+)(?:\s+(?:#\s+)?(\d{4}-\d{2}(?:-\d{2})?|'[^']+'))?"
)


@cache
def scenario_sources() -> dict:
    """The shipped ``refs`` table: KEY -> entry (figures, date, sources, confidence)."""
    text = (resources.files("perfmodel") / "data" / "scenario_sources.toml").read_text()
    return tomllib.loads(text)["refs"]


def citations(text: str) -> list[str]:
    """The KEYs that ``text`` (a scenario file) cites as ``reference KEY``; an event with
    no date reads ``tesla_fleet.events`` (unresolvable)."""
    out = []
    for m in _CITE.finditer(text):
        sec, name, date = m.groups()
        key = f"{sec}.{name}"
        if key == "tesla_fleet.events" and date:
            key += " " + date.strip("'")
        out.append(key)
    return out


def resolve(key: str) -> dict:
    """The shipped entry of ``key``; KeyError naming the key if there is none."""
    refs = scenario_sources()
    if key not in refs:
        raise KeyError(f"reference {key!r} is not in perfmodel/data/scenario_sources.toml")
    return refs[key]
