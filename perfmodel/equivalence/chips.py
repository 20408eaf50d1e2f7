"""A chip resolved once from the catalog it was named in: :class:`ChipSpec`.

A user's chip (``--catalog my.toml``) must reach every model and cache as itself, not
as a name that something further down looks up again in the built-in catalog. A
:class:`ChipSpec` carries the canonical key, the :class:`~perfmodel.hardware.Catalog`
it came from (for the network of its systems and links) and a **content digest** of the
catalog records the models read for it: the chip's figures and text, the systems built
from it, their links and the ``[link_defaults]``. The :class:`~perfmodel.hardware.Chip`
pytree the models evaluate is :meth:`ChipSpec.chip`.

Caches key a chip by :attr:`ChipSpec.cache_name`: the bare key when the records are
those of the built-in catalog (so the shipped curves and existing caches still serve
it), ``key@digest`` otherwise. A user chip that shadows a built-in name with different
figures therefore never gets the built-in's curve.

:func:`check_trainable` says, in one line naming the chip and the field, why the
training model cannot value a chip (a missing rate it needs), instead of a NaN or a
silent stand-in further on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from perfmodel.errors import InputError
from perfmodel.hardware import (
    PRECISION_FALLBACK,
    PRECISION_KEYS,
    Catalog,
    Chip,
    Figure,
    load_catalog,
)

__all__ = ["ChipSpec", "chip_spec", "chip_digest", "check_trainable"]


#: Chip figures no performance model reads (the planner takes a unit's price and power
#: from the scenario's offer; budget and power equivalence read them uncached), and text
#: that only labels: left out of :func:`chip_digest`, so a user's own H100 price keeps
#: the shipped curves.
PRICE_FIELDS = ("price_usd", "allin_price_usd", "allin_power_w", "unit_count")
LABEL_TEXT = ("name", "vendor", "note", "available", "purchase_unit", "unit_name")


def _fig(f: Figure) -> list[float]:
    return [float(f.best), float(f.low), float(f.high)]


def _text(t) -> dict:
    return {
        str(k): (v if isinstance(v, (str, bool)) else str(v))
        for k, v in t.items()
        if k not in LABEL_TEXT
    }


def chip_digest(cat: Catalog, key: str) -> str:
    """SHA-256 (16 hex digits) of what the performance models read of chip ``key`` in
    ``cat``: its figures (best/low/high) but prices and all-in power
    (:data:`PRICE_FIELDS`) and its kind; every system built from it and their links
    (figures and non-label text: link names, topology); the ``[link_defaults]``. Sources, notes and file paths are left out (they
    change no number). ``key`` must be a canonical key of ``cat``."""
    rec = cat.chips[key]
    systems = {k: s for k, s in cat.systems.items() if s.chip == key}
    links = {
        str(s.text[lk])
        for s in systems.values()
        for lk in ("link_scaleup", "link_scaleout")
        if lk in s.text
    }
    doc = {
        "chip": [
            {"kind": str(rec.text.get("kind", "gpu"))},  # a chip's other text only labels
            {k: _fig(f) for k, f in sorted(rec.figures.items()) if k not in PRICE_FIELDS},
        ],
        "systems": {
            k: [_text(s.text), {f: _fig(v) for f, v in sorted(s.figures.items())}]
            for k, s in sorted(systems.items())
        },
        "links": {
            k: [_text(cat.links[k].text), {f: _fig(v) for f, v in cat.links[k].figures.items()}]
            for k in sorted(links)
            if k in cat.links
        },
        "link_defaults": {k: _fig(f) for k, f in sorted(cat.link_defaults.items())},
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.cache
def _builtin_digest(key: str) -> str | None:
    cat = load_catalog()
    return chip_digest(cat, key) if key in cat.chips else None


@dataclasses.dataclass(frozen=True)
class ChipSpec:
    """One catalog chip, resolved: canonical ``key``, content ``digest`` (see
    :func:`chip_digest`), whether that content is the built-in catalog's, and the
    ``catalog`` it came from (not part of equality or the hash: the digest stands for
    it). Hashable, so it can key an ``lru_cache``."""

    key: str
    digest: str
    builtin: bool
    catalog: Catalog = dataclasses.field(compare=False, repr=False)

    @property
    def cache_name(self) -> str:
        """The key caches use: ``key`` for built-in content, else ``key@digest``."""
        return self.key if self.builtin else f"{self.key}@{self.digest}"

    @property
    def source(self) -> str:
        """Where the chip's figures come from (the catalog file of its record)."""
        return self.catalog.chips[self.key].path

    def chip(self, pick: str = "best") -> Chip:
        """The :class:`~perfmodel.hardware.Chip` pytree at ``pick`` (best/low/high)."""
        return self.catalog.chip(self.key, pick)


def chip_spec(chip: str | ChipSpec, catalog: Catalog | None = None) -> ChipSpec:
    """``chip`` (a key or alias of ``catalog``, default the built-in one) as a
    :class:`ChipSpec`; a :class:`ChipSpec` is returned as it is. Raises
    :class:`~perfmodel.hardware.CatalogError` naming the known chips for an unknown
    name."""
    if isinstance(chip, ChipSpec):
        return chip
    cat = load_catalog() if catalog is None else catalog
    key = cat.resolve(chip)
    digest = chip_digest(cat, key)
    return ChipSpec(key, digest, digest == _builtin_digest(key), cat)


#: Precisions the training model runs besides the workload's: element-wise work
#: (online softmax, norms, the optimizer) at fp32.
VECTOR_PRECISION = "fp32"


def check_trainable(spec: ChipSpec, precision: str, *, what: str = "the training model") -> None:
    """An :class:`~perfmodel.errors.InputError` in one line naming the chip and the
    field when ``what`` cannot run a job at ``precision`` on it: no rate for
    ``precision`` (nor a fallback of :data:`~perfmodel.hardware.PRECISION_FALLBACK`),
    or none for the fp32 element-wise work every step does."""
    rec = spec.catalog.chips[spec.key]
    for p, why in ((precision, "the job's matmuls"), (VECTOR_PRECISION, "element-wise work")):
        if rec.rate_precision(p) is None:
            fields = [PRECISION_KEYS[q] for q in PRECISION_FALLBACK[p]]
            alt = f" (or {' / '.join(fields[1:])})" if len(fields) > 1 else ""
            raise InputError(
                f"chips.{spec.key}.{fields[0]} is missing in {rec.path}: {what} runs "
                f"{why} at {p} and needs that figure{alt}"
            )
