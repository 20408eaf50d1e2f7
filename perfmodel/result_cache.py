"""The result cache of the command line: a repeated ``perfmodel roofline``, ``net``,
``train``, ``equiv`` or ``claims`` prints what the first identical call printed, without
importing JAX or running the model.

An entry is keyed (SHA-256, :func:`result_key`) by everything the output depends on:

* the command line, token by token, as typed (another spelling is another entry);
* each file a token names (``--catalog my.toml``, ``--claims-file x.toml``,
  ``--workload-file w.toml``, also ``--opt=PATH``): its absolute path and its content;
* every file of the perfmodel package, code and data
  (:func:`perfmodel.model_cache.package_fingerprint`);
* the installed distributions (names and versions on ``sys.path``: JAX, NumPy, HiGHS,
  ...), the Python version, and the accelerator device nodes present;
* the environment variables that steer JAX, XLA or perfmodel (``JAX_*``, ``XLA_*``,
  ``CUDA_*``, ``PERFMODEL_*``, ...).

So a changed input, model file, library or setting computes anew; nothing can return a
stale answer. Only a successful run (exit 0) is stored, with what it wrote to
``sys.stdout`` and ``sys.stderr``; a command line that writes a file (``--plot``) or names
a directory is never cached. The cache is used only by the ``perfmodel`` program itself
(:func:`perfmodel.cli.main` called without ``argv``): code calling ``main(argv)`` in a
process, where a test may have patched the model, always computes. ``--verbose`` says
whether the output came from the cache. ``PERFMODEL_RESULT_CACHE=0`` turns it off.

The entries live in :data:`perfmodel.model_cache.RESULTS_FILE` (atomic merge-writes, at
most :data:`perfmodel.model_cache.MAX_RESULTS`). Nothing here imports JAX or NumPy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from perfmodel import model_cache

#: The commands whose output is cached, and their options that write a file (a command
#: line with one of these, or an abbreviation argparse would accept, is not cached).
CACHED_COMMANDS: dict[str, tuple[str, ...]] = {
    "roofline": ("--plot",),
    "net": ("--plot",),
    "train": ("--plot",),
    "equiv": ("--plot",),
    "claims": (),
}
#: Environment variables (by prefix) that can change what a command computes.
ENV_PREFIXES = ("JAX_", "XLA_", "PERFMODEL_", "CUDA_", "ROCR_", "HIP_", "TPU_", "NVIDIA_")
#: Device nodes whose presence decides which accelerator JAX would use.
DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd", "/dev/accel0", "/dev/vfio")
#: A named input file larger than this is not hashed: the command line is not cached.
MAX_INPUT_BYTES = 64 * 2**20
#: The version of the key layout (a new one orphans the old entries).
KEY_VERSION = "perfmodel-result-v1"


@dataclasses.dataclass
class Lookup:
    """A cacheable command line: its key, and the stored entry (None on a miss)."""

    key: str
    entry: dict[str, Any] | None


def path_tokens(argv: Sequence[str]) -> Iterator[str]:
    """Every token, and the value of each ``--opt=value`` token: what may name a file."""
    for tok in argv:
        yield tok
        if tok.startswith("-") and "=" in tok:
            yield tok.split("=", 1)[1]


def writes_file(argv: Sequence[str], outputs: Iterable[str]) -> bool:
    """Whether a token is one of the ``outputs`` options or a prefix of one that argparse
    would accept as it (``--pl`` for ``--plot``)."""
    outs = tuple(outputs)
    for tok in argv:
        opt = tok.split("=", 1)[0]
        if opt.startswith("--") and len(opt) > 2 and any(o.startswith(opt) for o in outs):
            return True
    return False


def _file_digest(path: Path) -> str | None:
    """SHA-256 of a regular file's content; None if it is too large or unreadable."""
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def input_files(argv: Sequence[str]) -> list[str] | None:
    """``path\\0sha256`` of each file the tokens name (in token order); None when a
    token names a directory or a file that cannot be hashed (not cacheable)."""
    out = []
    for tok in path_tokens(argv):
        if not tok or "\0" in tok:
            continue
        p = Path(os.path.expanduser(tok))
        try:
            is_dir, is_file = p.is_dir(), p.is_file()
        except (OSError, ValueError):  # a name too long for the file system, ...
            continue
        if is_dir:
            return None
        if is_file:
            digest = _file_digest(p)
            if digest is None:
                return None
            out.append(f"{p.resolve()}\0{digest}")
    return out


def environment(env: Mapping[str, str]) -> list[str]:
    """The settings that steer JAX, XLA and perfmodel, as sorted ``NAME=value``."""
    return sorted(f"{k}={v}" for k, v in env.items() if k.startswith(ENV_PREFIXES))


def installed() -> list[str]:
    """The Python version, the distributions on ``sys.path`` (``name-version.dist-info``)
    and the accelerator device nodes present."""
    out = [sys.version, *(f"{d}={os.path.exists(d)}" for d in DEVICE_NODES)]
    for entry in sys.path:
        with contextlib.suppress(OSError):
            names = os.listdir(entry or ".")
            out += sorted(n for n in names if n.endswith((".dist-info", ".egg-info")))
    return out


def key_of(parts: Iterable[str]) -> str:
    """SHA-256 of the key material, NUL-separated (a token holds no NUL)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogateescape") + b"\0\0")
    return h.hexdigest()


def result_key(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The cache key of ``perfmodel ARGV`` (see the module docstring), or None when the
    command line is not cacheable (not a cached command, writes a file, names a
    directory)."""
    if not argv or argv[0] not in CACHED_COMMANDS or writes_file(argv, CACHED_COMMANDS[argv[0]]):
        return None
    files = input_files(argv[1:])
    if files is None:
        return None
    parts = [KEY_VERSION, model_cache.package_fingerprint(), *installed()]
    parts += ["env", *environment(env), "argv", *argv, "files", *files]
    return key_of(parts)


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("stdout"), str)
        and isinstance(entry.get("stderr"), str)
        and isinstance(entry.get("seconds"), (int, float))
        and isinstance(entry.get("stored"), str)
    )


def lookup(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Lookup | None:
    """The cache's answer for ``perfmodel ARGV``: None when not cacheable (or the cache
    is off), else the key and the stored entry (None on a miss or a malformed entry)."""
    env = os.environ if env is None else env
    if env.get("PERFMODEL_RESULT_CACHE", "1") == "0":
        return None
    key = result_key(argv, env)
    if key is None:
        return None
    entry = model_cache.get(key, model_cache.RESULTS_FILE)
    return Lookup(key, entry if _valid(entry) else None)


class _Tee(io.TextIOBase):
    """A text stream that writes to ``stream`` and records what it wrote."""

    def __init__(self, stream: TextIO):
        self.stream, self.seen = stream, io.StringIO()

    def write(self, s: str) -> int:
        self.seen.write(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")


@contextlib.contextmanager
def recording() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Record what is written to ``sys.stdout`` and ``sys.stderr`` meanwhile (and still
    write it): yields the two records."""
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        yield out.seen, err.seen
    finally:
        sys.stdout, sys.stderr = saved


def store(key: str, stdout: str, stderr: str, seconds: float) -> None:
    """Store a successful run's output under ``key``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry = dict(stdout=stdout, stderr=stderr, seconds=round(seconds, 3), stored=stamp)
    model_cache.put(key, entry, model_cache.RESULTS_FILE, model_cache.MAX_RESULTS)


def hit_note(command: str, entry: Mapping[str, Any], long: bool = True) -> str:
    """The stderr line of a cache hit (``long``: the ``--verbose`` one, with the key's
    parts)."""
    if not long:
        return (
            f"perfmodel {command}: result cache: the stored output of the identical call at "
            f"{entry['stored']} (timings in it are that run's; PERFMODEL_RESULT_CACHE=0 "
            "computes anew)"
        )
    return (
        f"perfmodel {command}: result cache hit: this is the output of the identical call "
        f"at {entry['stored']} (computed in {entry['seconds']:.2f} s after start-up; same arguments, input "
        f"files, perfmodel files {model_cache.package_fingerprint()}, libraries and "
        f"settings); no model code ran, and timings in it are that run's "
        f"(PERFMODEL_RESULT_CACHE=0 computes anew)"
    )


def miss_note(command: str) -> str:
    """The ``--verbose`` line of a computed, cacheable run."""
    return (
        f"perfmodel {command}: result cache miss: computed, and stored for the next "
        f"identical call (PERFMODEL_RESULT_CACHE=0 turns the cache off)"
    )
