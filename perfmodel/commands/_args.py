"""Checks the sub-commands share: numbers in range, files that name their path, user
catalogs with safe keys that override the built-in one only when asked, and results
that are finite (an overflow is an error naming the inputs, never ``inf`` or ``NaN``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from perfmodel.errors import SAFE_NAME, SAFE_NAME_TEXT, InputError, read_text
from perfmodel.hardware import Catalog, CatalogError, load_catalog, load_catalog_file

#: What a catalog key (chip, system, link, alias) may look like: it can become a file
#: name (``calibration_<chip>.toml``), so no ``/``, ``..``, dots or spaces.
SAFE_KEY = SAFE_NAME
SAFE_KEY_TEXT = SAFE_NAME_TEXT


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e9 else f"{x:g}"


def number(
    v: Any, field: str, lo: float, hi: float, *, lo_open: bool = False, integer: bool = False
) -> float:
    """``v`` if it is a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``),
    else an :class:`InputError` naming the field, the value and the range."""
    kind = "an integer" if integer else "a finite number"
    rng = f"{'(' if lo_open else '['}{_bound(lo)}, {_bound(hi)}]"
    ok = (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and (lo < v if lo_open else lo <= v)
        and v <= hi
        and (not integer or float(v).is_integer())
    )
    if not ok:
        raise InputError(field, v, f"{kind} in {rng}")
    return v


def add_catalog_args(p: argparse.ArgumentParser, *, repeat: bool = True) -> None:
    """``--catalog FILE`` (repeatable) and ``--allow-override``."""
    p.add_argument(
        "--catalog",
        action="append" if repeat else "store",
        default=None,
        metavar="FILE",
        help="extra catalog TOML file(s) loaded on top of the built-in one",
    )
    p.add_argument(
        "--allow-override",
        action="store_true",
        help="let --catalog files replace built-in chips, systems, links or aliases "
        "(default: an error naming them)",
    )


def add_plot_catalog_json_args(p: argparse.ArgumentParser, plot_what: str) -> None:
    """``--plot PATH`` (a PNG file or an existing directory; ``plot_what``: what the chart
    shows), the catalog arguments (:func:`add_catalog_args`) and ``--json``."""
    p.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help=f"PNG file or existing directory: {plot_what}",
    )
    add_catalog_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def check_readable(path: str, field: str) -> None:
    """An :class:`InputError` naming ``path`` unless it is a readable UTF-8 file."""
    if not isinstance(path, str) or not path.strip():
        raise InputError(field, path, "a file path")
    what = field.lstrip("-").replace("-", " ")
    read_text(path, what if what.endswith("file") else f"{what} file")


def check_catalog_keys(cat: Catalog, where: str) -> None:
    """Every key and alias of ``cat`` matches :data:`SAFE_KEY`."""
    for kind, names in (
        ("chips", cat.chips),
        ("systems", cat.systems),
        ("links", cat.links),
        ("aliases", cat.aliases),
    ):
        for k in names:
            if not SAFE_KEY.fullmatch(k):
                raise CatalogError(f"{where}: {kind} key {k!r} must be {SAFE_KEY_TEXT}")
    for a, target in cat.aliases.items():
        if not SAFE_KEY.fullmatch(str(target)):
            raise CatalogError(f"{where}: aliases.{a} = {target!r} must be {SAFE_KEY_TEXT}")


def overridden(builtin: Catalog, user: Catalog) -> list[str]:
    """What ``user`` replaces in ``builtin``: ``"chips.h100_sxm"``, ``"aliases.h100"``
    (an alias pointing elsewhere, or a new key that shadows a built-in alias)."""
    out = [
        f"{kind}.{k}"
        for kind in ("chips", "systems", "links")
        for k in getattr(user, kind)
        if k in getattr(builtin, kind)
    ]
    out += [
        f"aliases.{a}"
        for a, t in user.aliases.items()
        if (a in builtin.aliases and builtin.aliases[a] != t) or a in builtin.chips
    ]
    out += [f"chips.{k} (a built-in alias)" for k in user.chips if k in builtin.aliases]
    return out


def user_catalog(paths: str | Sequence[str] | None, allow_override: bool = False) -> Catalog:
    """The built-in catalog with the user's ``--catalog`` files on top: each file named
    when it is missing, a directory, unreadable or not UTF-8; keys that can become file
    names checked against :data:`SAFE_KEY`; a file replacing a built-in entry is an
    error unless ``allow_override``."""
    files = [paths] if isinstance(paths, str) else list(paths or [])
    if not files:
        return load_catalog()
    builtin = load_catalog()
    for f in files:
        check_readable(f, "--catalog")
        one = load_catalog_file(f)
        check_catalog_keys(one, f)
        clash = overridden(builtin, one)
        if clash and not allow_override:
            shown = ", ".join(clash[:6]) + (" ..." if len(clash) > 6 else "")
            raise CatalogError(
                f"{f}: replaces built-in {shown}; pass --allow-override to replace them "
                "(or give the entries new keys)"
            )
    return load_catalog(*files)


def _nonfinite(x: Any, path: str) -> Iterable[str]:
    if isinstance(x, bool) or x is None:
        return
    if isinstance(x, float):
        if not math.isfinite(x):
            yield f"{path} = {x!r}"
    elif isinstance(x, Mapping):
        for k, v in x.items():
            yield from _nonfinite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _nonfinite(v, f"{path}[{i}]")


def check_finite(result: Any, inputs: str) -> None:
    """An :class:`InputError` naming the inputs when any number in ``result`` (nested
    dicts and lists) is NaN or infinite: the inputs overflow the model."""
    bad = list(_nonfinite(result, ""))
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(
            f"the inputs ({inputs}) give a result that is not finite: {bad[0]}{more}; "
            "use smaller sizes"
        )


def plot_file(
    arg: str, default_name: str, field: str = "--plot", suffixes: tuple[str, ...] = (".png",)
) -> Path:
    """The file a ``--plot`` argument names: ``DIR`` (an existing directory) ->
    ``DIR/default_name``, a name without suffix gets ``.png``; its directory must exist
    and its suffix be one of ``suffixes``. The command reports this path, the file it
    wrote."""
    kinds = " or ".join(suffixes)
    if not isinstance(arg, str) or not arg.strip():
        raise InputError(field, arg, f"a {kinds} file path (or an existing directory)")
    p = Path(arg).expanduser()
    if p.is_dir():
        p = p / default_name
    elif p.suffix.lower() not in suffixes:
        if p.suffix:
            raise InputError(field, arg, f"a {kinds} file (or an existing directory)")
        p = p.with_suffix(".png")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(
            field, arg, f"a file in an existing directory ({str(parent)!r} does not exist)"
        )
    if p.exists() and not p.is_file():
        raise InputError(f"{field}: {str(p)!r} exists and is not a file")
    return p
