"""Where a command's ``--plot`` chart goes: the file the user named, or a default name
inside the directory the user named (never anywhere else)."""

from __future__ import annotations

import re
from pathlib import Path

from perfmodel.commands._args import plot_file

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def chart_name(*parts: object) -> str:
    """A default chart file name from ``parts`` (workload, chip, count, ...): characters
    other than letters, digits, ``_``, ``-`` and ``.`` become ``_``, so a name from the
    user's input cannot leave the directory it is joined to.

    Example::

        >>> chart_name("train", "llama3-70b", "../h100", 64)
        'train_llama3-70b_.._h100_64.png'
        >>> chart_name("net", "a/b c")
        'net_a_b_c.png'
    """
    return "_".join(_UNSAFE.sub("_", str(p)) for p in parts) + ".png"


def chart_path(arg: str, *parts: object, suffixes: tuple[str, ...] = (".png",)) -> Path:
    """The file ``--plot arg`` names: ``arg`` itself (``.png`` added when it has no
    suffix; else one of ``suffixes``), or :func:`chart_name` of ``parts`` inside ``arg``
    when it is an existing directory. Bad paths are an
    :class:`~perfmodel.errors.InputError` (exit 2)."""
    return plot_file(arg, chart_name(*parts), suffixes=suffixes)
