"""Claim files: the built-in ones and user files of the same form, parsed and validated."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from perfmodel.claims.checks import EVALUATORS
from perfmodel.claims.verdicts import Claim
from perfmodel.hardware import read_toml


def builtin_claims_path() -> Path:
    return Path(str(resources.files("perfmodel") / "data" / "claims.toml"))


def builtin_claims_paths() -> list[Path]:
    """The built-in claim files: ``claims.toml`` and the inference claims checked with
    the serving model (``serving_claims.toml``)."""
    data = Path(str(resources.files("perfmodel") / "data"))
    return [builtin_claims_path(), data / "serving_claims.toml"]


def parse_claims(data: Mapping[str, Any], path: str = "<memory>") -> list[Claim]:
    """Validate a parsed claims TOML mapping (``[[claims]]`` entries)."""
    raw = data.get("claims")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: expected one or more [[claims]] entries")
    out = []
    for i, c in enumerate(raw):
        where = f"{path}: claims[{i}]"
        if not isinstance(c, Mapping):
            raise ValueError(f"{where}: must be a table")
        for k in ("id", "date", "quote", "sources", "check"):
            if k not in c:
                raise ValueError(f"{where}: field '{k}' is missing")
        src = c["sources"]
        if isinstance(src, str):
            src = [src]
        if not src or not all(isinstance(s, str) and s.strip() for s in src):
            raise ValueError(f"{where} ({c['id']}): 'sources' must list at least one source")
        if c["check"] not in EVALUATORS:
            raise ValueError(
                f"{where} ({c['id']}): check {c['check']!r} must be one of {sorted(EVALUATORS)}"
            )
        params = c.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"{where} ({c['id']}): 'params' must be a table")
        out.append(
            Claim(
                str(c["id"]),
                str(c["date"]),
                str(c.get("speaker", "")),
                str(c["quote"]),
                tuple(src),
                str(c["check"]),
                dict(params),
            )
        )
    return out


def load_claims(*extra: str | Path, builtin: bool = True) -> list[Claim]:
    """The built-in claims, then those of each ``extra`` file (same id replaces)."""
    files = (builtin_claims_paths() if builtin else []) + [Path(p) for p in extra]
    by_id: dict[str, Claim] = {}
    for p in files:
        data = read_toml(p, "claims", missing=ValueError)
        for c in parse_claims(data, str(p)):
            by_id[c.id] = c
    return list(by_id.values())
