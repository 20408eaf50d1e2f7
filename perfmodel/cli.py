"""The ``perfmodel`` command line: ``perfmodel --help`` lists the sub-commands.

Each feature registers its sub-commands from a module in :mod:`perfmodel.commands`;
errors in user input print one clear line (``error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that register sub-commands (in help order).
COMMAND_MODULES = (
    "perfmodel.commands.plan",  # plan (the main job)
    "perfmodel.commands.catalog",  # chips, chip, roofline
    "perfmodel.commands.train",  # train
    "perfmodel.commands.net",  # net (interconnect: links and collective times)
    "perfmodel.commands.equiv",  # equiv, claims
    "perfmodel.commands.sweep",  # sweep
    "perfmodel.commands.calibrate",  # calibrate
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfmodel",
        description="Performance model of AI accelerators and planner for their fleets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMAND_MODULES:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:  # feature not installed in this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as e:  # user errors: one clear line
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"perfmodel {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
