"""``--pick``: one meaning in every command.

A catalog estimate carries ``low``/``best``/``high``; ``--pick low`` takes every estimate
the command uses at its low end (peaks, bandwidths, prices, link rates alike: ``low`` is
the low number, not "the pessimistic case"), ``--pick high`` at its high end and
``--pick best`` (the default; ``plan`` and ``compare``: the scenario's ``pick``) at its
best value. Figures that are not
estimates have one value. Commands that report a low..high range themselves (``equiv``,
``claims``) do not take ``--pick``.
"""

from __future__ import annotations

import argparse

from perfmodel.hardware import PICKS

PICK_HELP = (
    "which end of the catalog's estimate ranges to use: low, best or high (every "
    "estimate the command uses at that end; default {default})"
)


def add_pick_arg(p: argparse.ArgumentParser, default: str | None = "best", note: str = "") -> None:
    """Add ``--pick {best,low,high}`` with the shared meaning (``default`` None: the
    command's input file decides, named in ``note``)."""
    shown = default if default is not None else note or "from the input"
    p.add_argument("--pick", choices=PICKS, default=default, help=PICK_HELP.format(default=shown))
