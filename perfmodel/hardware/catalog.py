"""The :class:`Catalog` (chips, systems, links, aliases, sources, link defaults): parsing
and validating TOML files, the built-in catalog and user files merged on top of it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfmodel.errors import path_error
from perfmodel.hardware.figures import Figure, _where, parse_figure
from perfmodel.hardware.precision import PRECISION_KEYS
from perfmodel.hardware.records import ChipRecord, LinkRecord, SystemRecord
from perfmodel.hardware.schema import (
    CHIP_FIELDS,
    CHIP_KINDS,
    CHIP_TEXT_FIELDS,
    LINK_DEFAULT_FIELDS,
    LINK_FLAG_FIELDS,
    LINK_TEXT_FIELDS,
    REQUIRED_CHIP_FIELDS,
    SYSTEM_TEXT_FIELDS,
    UNIT_SUFFIXES,
    CatalogError,
    unit_of,
)

if TYPE_CHECKING:  # built by ChipRecord.to_chip, which imports JAX only when it runs
    from perfmodel.hardware.pytree import Chip

#: Short names accepted wherever a chip name is.
ALIASES: dict[str, str] = {}


@dataclasses.dataclass
class Catalog:
    """All chips, systems and links; look-ups by key or alias with clear errors.
    ``link_defaults`` holds the ``[link_defaults]`` figures by key."""

    chips: dict[str, ChipRecord]
    systems: dict[str, SystemRecord]
    links: dict[str, LinkRecord]
    aliases: dict[str, str]
    sources: dict[str, str]
    link_defaults: dict[str, Figure] = dataclasses.field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """Canonical chip key for ``name`` (a key or an alias, case-insensitive)."""
        n = name.strip().lower().replace("-", "_")
        if n in self.chips:
            return n
        if n in self.aliases:
            return self.aliases[n]
        raise CatalogError(
            f"unknown chip '{name}'; known chips: {', '.join(sorted(self.chips))}"
            f" (aliases: {', '.join(sorted(self.aliases))})"
        )

    def record(self, name: str) -> ChipRecord:
        return self.chips[self.resolve(name)]

    def chip(self, name: str, pick: str = "best", **overrides: float) -> Chip:
        """The :class:`Chip` pytree for ``name`` (``pick`` = best/low/high estimates)."""
        return self.record(name).to_chip(pick, **overrides)

    def system(self, name: str) -> SystemRecord:
        n = name.strip().lower().replace("-", "_")
        if n not in self.systems:
            raise CatalogError(
                f"unknown system '{name}'; known systems: {', '.join(sorted(self.systems))}"
            )
        return self.systems[n]

    def link(self, name: str) -> LinkRecord:
        n = name.strip().lower().replace("-", "_")
        if n not in self.links:
            raise CatalogError(
                f"unknown link '{name}'; known links: {', '.join(sorted(self.links))}"
            )
        return self.links[n]

    def merged(self, other: Catalog) -> Catalog:
        """This catalog with ``other``'s entries added or replacing same-named ones."""
        return Catalog(
            {**self.chips, **other.chips},
            {**self.systems, **other.systems},
            {**self.links, **other.links},
            {**self.aliases, **other.aliases},
            {**self.sources, **other.sources},
            {**self.link_defaults, **other.link_defaults},
        )


def _parse_entries(
    table: Mapping[str, Any],
    section: str,
    path: str,
    sources: Mapping[str, str],
    *,
    text_fields: tuple[str, ...],
    allowed: Mapping[str, tuple[float, float]] | None,
    extra_text: tuple[str, ...] = (),
    flag_fields: tuple[str, ...] = (),
) -> dict[str, tuple[dict, dict]]:
    out = {}
    if not isinstance(table, Mapping):
        raise CatalogError(f"{path}: [{section}] must be a table of entries")
    for key, body in table.items():
        entry = f"{section}.{key}"
        if not isinstance(body, Mapping):
            raise CatalogError(f"{_where(path, entry)}: must be a table")
        text, figs = {}, {}
        for k, v in body.items():
            if k in flag_fields:
                if not isinstance(v, bool):
                    raise CatalogError(
                        f"{_where(path, entry, k)}: must be true or false, got {v!r}"
                    )
                text[k] = v
                continue
            if k in text_fields or k in extra_text:
                if not isinstance(v, (str, list)):
                    raise CatalogError(f"{_where(path, entry, k)}: must be text, got {v!r}")
                text[k] = v
                continue
            if allowed is not None and k not in allowed:
                hint = (
                    "key has no unit suffix (numeric keys end with one of "
                    f"{', '.join(UNIT_SUFFIXES)}) and is an "
                    if unit_of(k) is None
                    else ""
                )
                raise CatalogError(
                    f"{_where(path, entry, k)}: {hint}unknown key; allowed numeric keys: "
                    f"{', '.join(sorted(allowed))}; text keys: {', '.join(text_fields)}"
                )
            rng = (allowed or {}).get(k, (0.0, math.inf))
            figs[k] = parse_figure(v, k, path=path, entry=entry, sources=sources, allowed=rng)
        out[key] = (text, figs)
    return out


def parse_catalog(data: Mapping[str, Any], path: str = "<memory>") -> Catalog:
    """Validate a parsed TOML mapping and build a :class:`Catalog`."""
    allowed_top = {"sources", "chips", "systems", "links", "link_defaults", "aliases", "meta"}
    unknown = set(data) - allowed_top
    if unknown:
        raise CatalogError(
            f"{path}: unknown top-level table(s) {sorted(unknown)}; allowed: {sorted(allowed_top)}"
        )
    sources = dict(data.get("sources", {}))
    for k, v in sources.items():
        if not isinstance(v, str):
            raise CatalogError(f"{path}: [sources] '{k}' must be text")
    chips = {}
    for key, (text, figs) in _parse_entries(
        data.get("chips", {}),
        "chips",
        path,
        sources,
        text_fields=CHIP_TEXT_FIELDS,
        allowed=CHIP_FIELDS,
    ).items():
        for req in REQUIRED_CHIP_FIELDS:
            if req not in figs:
                raise CatalogError(
                    f"{_where(path, 'chips.' + key, req)}: required field is missing"
                )
        if not any(k in figs for k in PRECISION_KEYS.values()):
            raise CatalogError(
                f"{_where(path, 'chips.' + key)}: needs a peak rate for at least one "
                f"precision ({', '.join(PRECISION_KEYS.values())})"
            )
        kind = text.get("kind", "gpu")
        if kind not in CHIP_KINDS:
            raise CatalogError(
                f"{_where(path, 'chips.' + key, 'kind')}: {kind!r} must be one of {CHIP_KINDS}"
            )
        chips[key] = ChipRecord(key, text, figs, path)
    systems = {}
    for key, (text, figs) in _parse_entries(
        data.get("systems", {}),
        "systems",
        path,
        sources,
        text_fields=SYSTEM_TEXT_FIELDS,
        allowed=None,
    ).items():
        if "chip" not in text:
            raise CatalogError(
                f"{_where(path, 'systems.' + key, 'chip')}: required field is missing"
            )
        if "chips_count" not in figs:
            raise CatalogError(
                f"{_where(path, 'systems.' + key, 'chips_count')}: required field is missing"
            )
        systems[key] = SystemRecord(key, text, figs, path)
    links = {}
    for key, (text, figs) in _parse_entries(
        data.get("links", {}),
        "links",
        path,
        sources,
        text_fields=LINK_TEXT_FIELDS,
        allowed=None,
        flag_fields=LINK_FLAG_FIELDS,
    ).items():
        links[key] = LinkRecord(key, text, figs, path)
    link_defaults = {}
    raw_defaults = data.get("link_defaults", {})
    if not isinstance(raw_defaults, Mapping):
        raise CatalogError(f"{path}: [link_defaults] must be a table of figures")
    for k, v in raw_defaults.items():
        if k not in LINK_DEFAULT_FIELDS:
            raise CatalogError(
                f"{_where(path, 'link_defaults', k)}: unknown key; allowed: "
                f"{', '.join(LINK_DEFAULT_FIELDS)}"
            )
        link_defaults[k] = parse_figure(
            v, k, path=path, entry="link_defaults", sources=sources, allowed=LINK_DEFAULT_FIELDS[k]
        )
    aliases = {}
    for a, target in dict(data.get("aliases", {})).items():
        aliases[a.lower()] = str(target)
    return Catalog(chips, systems, links, aliases, sources, link_defaults)


def _check_references(cat: Catalog, path: str) -> None:
    for a, target in cat.aliases.items():
        if target not in cat.chips:
            raise CatalogError(f"{path}: [aliases] '{a}' points to unknown chip '{target}'")
    for key, s in cat.systems.items():
        if s.chip not in cat.chips:
            raise CatalogError(
                f"{s.path}: [systems.{key}] field 'chip': unknown chip '{s.chip}'; "
                f"known chips: {', '.join(sorted(cat.chips))}"
            )
        for lk in ("link_scaleup", "link_scaleout"):
            if lk in s.text and s.text[lk] not in cat.links:
                raise CatalogError(
                    f"{s.path}: [systems.{key}] field '{lk}': unknown link "
                    f"'{s.text[lk]}'; known links: {', '.join(sorted(cat.links))}"
                )


def read_toml(
    path: str | Path,
    what: str,
    *,
    error: type[Exception] = ValueError,
    missing: type[Exception] = FileNotFoundError,
    missing_hint: str = "",
) -> dict:
    """Parse the TOML file at ``path`` (``~`` expanded). A missing file raises ``missing``
    ("<path>: <what> file not found<missing_hint>"), bad TOML raises ``error``
    ("<path>: not valid TOML: ..."); both name the file, never a parser traceback."""
    p = Path(path).expanduser()
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise missing(f"{p}: {what} file not found{missing_hint}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{p}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise path_error(p, e, f"{what} file") from None


def load_catalog_file(path: str | Path) -> Catalog:
    """Load and validate one catalog TOML file (references checked on merge)."""
    p = Path(path).expanduser()
    data = read_toml(p, "catalog", error=CatalogError, missing=CatalogError)
    return parse_catalog(data, str(p))


_BUILTIN: Catalog | None = None


def builtin_catalog_paths() -> list[Path]:
    d = resources.files("perfmodel") / "data"
    return sorted(Path(str(d)).glob("catalog_*.toml"))


def load_catalog(*extra: str | Path, builtin: bool = True) -> Catalog:
    """Load the built-in catalog, then each ``extra`` file on top of it (later files
    add chips or replace same-named entries). References are checked at the end."""
    global _BUILTIN
    cat = Catalog({}, {}, {}, {}, {})
    if builtin:
        if _BUILTIN is None:
            b = Catalog({}, {}, {}, {}, {})
            for p in builtin_catalog_paths():
                b = b.merged(load_catalog_file(p))
            _check_references(b, "built-in catalog")
            _BUILTIN = b
        cat = _BUILTIN
    for p in extra:
        cat = cat.merged(load_catalog_file(p))
    _check_references(cat, ", ".join(str(p) for p in extra) or "catalog")
    return cat


def chip(name: str, pick: str = "best", **overrides: float) -> Chip:
    """Shortcut: the built-in catalog's chip ``name`` as a pytree."""
    return load_catalog().chip(name, pick, **overrides)
