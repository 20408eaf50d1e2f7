"""The ``perfmodel`` command line: ``perfmodel --help`` lists the sub-commands.

Each feature registers its sub-commands from a module in :mod:`perfmodel.commands`
(:data:`COMMANDS`); a command imports only its own module, so ``perfmodel chips`` and
``perfmodel --help`` run without JAX.

One error path (:mod:`perfmodel.errors`):

* a user error (:class:`~perfmodel.errors.PerfmodelError`: bad input, no feasible
  solution, a solver failure, a resource limit; a bad command line; a file or directory
  that is missing, a directory, unreadable, not UTF-8 or too long a name) prints one
  line, ``perfmodel CMD: error: ...``, on stderr and exits with status 2;
* any other exception is a bug and shows as one (a traceback, exit 1). During the move
  to :mod:`perfmodel.errors`, a ``ValueError``/``KeyError`` raised by an explicit
  ``raise`` statement inside perfmodel (or a ``FileNotFoundError`` naming the file) still
  counts as a user error (:func:`_legacy_user_error`);
  one raised by a library (NumPy, JAX) or by a failing builtin (``int("x")``,
  ``d[k]``) is a bug;
* no float option may be NaN or infinite;
* with ``--json``, stdout holds exactly one strict JSON document (no ``NaN`` or
  ``Infinity``): whatever else the command or a library (e.g. the HiGHS banner, written
  by C code to file descriptor 1) prints goes to stderr;
* writing to a closed pipe (``perfmodel chips --json | head -1``) ends quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dis
import importlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from perfmodel import result_cache
from perfmodel.errors import PerfmodelError, path_error

#: The sub-commands in help order: name -> (the module that registers it, its help line).
#: ``perfmodel CMD`` imports only CMD's module and ``perfmodel --help`` none. A command
#: module imports its model (JAX: 1.5 s on 2 cores) when the command runs, never to build
#: its parser (the lists a parser offers live in :mod:`perfmodel.choices`), so ``chips``,
#: ``chip``, ``systems`` and every ``CMD --help`` run without JAX. A test checks these
#: lines against what each module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": (
        "perfmodel.commands.plan",
        "plan a fleet (chips x sites x quarters) under power, capex and supply limits",
    ),
    "compare": (
        "perfmodel.commands.compare",
        "compare two fleet plans (scenarios or plan JSON files) side by side",
    ),
    "chips": ("perfmodel.commands.catalog", "table of catalog chips (peaks, memory, power, price)"),
    "chip": (
        "perfmodel.commands.catalog",
        "every field of one chip with unit, range, confidence, source",
    ),
    "systems": (
        "perfmodel.commands.catalog",
        "catalog systems (DGX, NVL72, Dojo tray/ExaPOD) and links",
    ),
    "roofline": (
        "perfmodel.commands.roofline",
        "roofline time/bound of one op on a chip (or all chips)",
    ),
    "train": (
        "perfmodel.commands.train",
        "training step time / throughput / MFU of a workload on N chips",
    ),
    "net": (
        "perfmodel.commands.net",
        "network of a chip's system and collective times (alpha-beta model)",
    ),
    "equiv": (
        "perfmodel.commands.equiv",
        "H100-equivalents of chips, a budget or a power envelope",
    ),
    "claims": ("perfmodel.commands.equiv", "check public H100-equivalent claims with the model"),
    "sweep": (
        "perfmodel.commands.sweep",
        "batch what-if runs over uncertain inputs (resumable, sharded)",
    ),
    "calibrate": (
        "perfmodel.commands.calibrate",
        "measure this device and calibrate the roofline efficiencies",
    ),
    "serve": (
        "perfmodel.commands.serve",
        "LLM serving tokens/s at MLPerf latency limits (Offline/Server/Interactive)",
    ),
}

#: The modules that register sub-commands (each has ``register(subparsers)``), in help order.
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))

#: Exit status of a user error (bad input, no solution, ...), as argparse uses.
EXIT_USER_ERROR = 2
#: Exit status after the reader of stdout went away (128 + SIGPIPE, as a shell reports).
EXIT_BROKEN_PIPE = 141

_PACKAGE_DIR = Path(__file__).resolve().parent


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage block)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser. By default every command module registers its commands;
    with ``command``, only the module of that command (none for ``""`` or a name not in
    :data:`COMMANDS`) and the other commands are listed by their help line alone (what
    ``perfmodel --help`` and the error for an unknown command show)."""
    parser = _Parser(
        prog="perfmodel",
        description="Performance model of AI accelerators and planner for their fleets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for mod in COMMAND_MODULES:
        names = [name for name, (m, _) in COMMANDS.items() if m == mod]
        if command is not None and command not in names:
            for name in names:
                sub.add_parser(name, help=COMMANDS[name][1])
            continue
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:  # feature not installed in this build
                continue
            raise
        module.register(sub)
    for p in sub.choices.values():  # every command: --verbose (compile apart from run)
        if "--verbose" not in p._option_string_actions:
            p.add_argument(
                "--verbose",
                action="store_true",
                help="also print, on stderr, the time spent tracing and compiling (JAX) "
                "apart from the run",
            )
    return parser


#: JAX monitoring events (seconds) reported by ``--verbose``.
_JAX_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "tracing",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lowering",
    "/jax/core/compile/backend_compile_duration": "compile",
}


def _watch_jax() -> dict:
    """Record JAX tracing, lowering and XLA compile (or persistent-cache load) seconds
    and cache hits/misses from now on, into the returned dict."""
    import jax.monitoring  # here: only --verbose needs JAX (1.5 s); `perfmodel chips` does not

    acc: dict = {"tracing": 0.0, "lowering": 0.0, "compile": 0.0, "programs": 0}
    acc.update(hits=0, misses=0)

    def on_duration(event: str, duration_secs: float, **_kw) -> None:
        name = _JAX_EVENTS.get(event)
        if name:
            acc[name] += duration_secs
            acc["programs"] += name == "compile"

    def on_event(event: str, **_kw) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            acc["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            acc["misses"] += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    return acc


def _timing_line(command: str, wall_s: float, acc: dict) -> str:
    jit = acc["tracing"] + acc["lowering"] + acc["compile"]
    return (
        f"perfmodel {command}: {wall_s:.2f} s = tracing {acc['tracing']:.2f} s + lowering "
        f"{acc['lowering']:.2f} s + compile {acc['compile']:.2f} s ({acc['programs']} programs; "
        f"persistent cache {acc['hits']} hits, {acc['misses']} misses) + run "
        f"{max(wall_s - jit, 0.0):.2f} s (parse, imports, model, output)"
    )


def _one_line(text: str) -> str:
    lines = [s.strip() for s in str(text).splitlines() if s.strip()]
    return "; ".join(lines)


def _legacy_user_error(e: BaseException) -> bool:
    """A ``ValueError``/``KeyError``/``FileNotFoundError`` raised by a ``raise`` statement in perfmodel's own
    code: a validation message written before :mod:`perfmodel.errors` existed. One
    raised inside NumPy/JAX, or by a builtin call that failed (its last frame is then
    not a ``raise`` line), is a bug."""
    if type(e) not in (ValueError, KeyError, FileNotFoundError):
        return False
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    try:
        inside = Path(code.co_filename).resolve().is_relative_to(_PACKAGE_DIR)
    except (OSError, ValueError):
        return False
    # the instruction that raised, from the loaded code (not the file, which may have
    # changed since): a `raise` statement, not a call or a subscript that failed
    at = next((i for i in dis.get_instructions(code) if i.offset == tb.tb_lasti), None)
    return inside and at is not None and at.opname == "RAISE_VARARGS"


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e) or type(e).__name__


def _nonfinite_option(args: argparse.Namespace) -> str | None:
    """The first float option that is NaN or infinite, as an error message."""
    for k, v in vars(args).items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, float) and not math.isfinite(x):
                return f"--{k.replace('_', '-')} = {x!r} must be a finite number"
    return None


def _flush_c_stdio() -> None:
    """Flush C ``stdio`` buffers (what a C/C++ library such as HiGHS printed)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _json_stdout() -> Iterator[io.StringIO]:
    """Collect what Python prints to ``sys.stdout`` in a buffer, and point file
    descriptor 1 at stderr meanwhile, so C code printing to stdout lands on stderr."""
    buf = io.StringIO()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 (or 2): nothing to redirect
        saved = None
    try:
        with contextlib.redirect_stdout(buf):
            yield buf
    finally:
        if saved is not None:
            _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def check_strict_json(text: str, command: str) -> None:
    """Raise ``RuntimeError`` (a bug: the command broke the ``--json`` contract)
    unless ``text`` is one strict JSON document."""
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise RuntimeError(
            f"bug: `perfmodel {command} --json` printed something other than one strict "
            f"JSON document ({e}); output starts {text[:120]!r}"
        ) from e


def _quiet_broken_pipe() -> int:
    """stdout's reader went away: point stdout at /dev/null so the final flush at exit
    stays quiet, and exit like a tool killed by SIGPIPE."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _error(command: str, msg: str) -> int:
    print(f"perfmodel {command}: error: {_one_line(msg)}", file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run ``perfmodel ARGV``; the exit status. Called without ``argv`` (the ``perfmodel``
    program: ``sys.argv``), a repeated roofline/net/train/equiv/claims call prints the
    stored output of the first (:mod:`perfmodel.result_cache`)."""
    cached = result_cache.lookup(sys.argv[1:]) if argv is None else None
    argv = sys.argv[1:] if argv is None else list(argv)
    if cached is not None and cached.entry is not None:
        return _replay(argv, cached.entry)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad command line (2, one line printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    command = str(args.command)
    bad = _nonfinite_option(args)
    if bad:
        return _error(command, bad)
    as_json = getattr(args, "json", None) is True
    verbose = getattr(args, "verbose", False)
    watch = _watch_jax() if verbose else None
    t0 = time.perf_counter()
    try:
        if cached is None:
            return _run(args, command, as_json)
        with result_cache.recording() as (out, err):
            rc = _run(args, command, as_json)
        if rc == 0:
            result_cache.store(cached.key, out.getvalue(), err.getvalue(), time.perf_counter() - t0)
            if verbose:
                print(result_cache.miss_note(command), file=sys.stderr)
        return rc
    finally:
        if watch is not None:
            print(_timing_line(command, time.perf_counter() - t0, watch), file=sys.stderr)


def _replay(argv: list[str], entry: dict) -> int:
    """Print a cached result (what the stored run wrote to stdout and stderr)."""
    try:
        sys.stderr.write(entry["stderr"])
        sys.stdout.write(entry["stdout"])
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    # always said (on stderr, so stdout stays the stored document): no model code ran
    print(result_cache.hit_note(argv[0], entry, long="--verbose" in argv), file=sys.stderr)
    return 0


def _run(args: argparse.Namespace, command: str, as_json: bool) -> int:
    try:
        if as_json:
            with _json_stdout() as buf:
                rc = int(args.func(args) or 0)
            text = buf.getvalue()
            if text.strip() or rc == 0:
                check_strict_json(text, command)
            sys.stdout.write(text)
        else:
            rc = int(args.func(args) or 0)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except PerfmodelError as e:
        return _error(command, _message(e))
    except (OSError, UnicodeDecodeError) as e:
        path = getattr(e, "filename", None)
        if path is not None:
            return _error(command, str(path_error(path, e)))
        if _legacy_user_error(e):  # e.g. "<path>: scenario file not found"
            return _error(command, _message(e))
        raise  # not about a path the user named: a bug
    except (ValueError, KeyError) as e:
        if _legacy_user_error(e):
            return _error(command, _message(e))
        raise


if __name__ == "__main__":
    sys.exit(main())
