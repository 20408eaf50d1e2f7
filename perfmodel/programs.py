"""Programs traced once per model version: jitted functions whose traced and lowered
program is kept on disk, so that a new process neither traces nor lowers them again.

JAX's persistent compilation cache (configured in :mod:`perfmodel`) stores compiled
programs, but every process still traces the Python function and lowers it to StableHLO
before it can look one up. For the step model that is most of a command's time: tracing
the layout search's evaluator takes about 1.3 s and lowering it 0.5 s on a 2-core CPU,
the serving model's operating point 3 s and 0.5 s, each time a command runs.

:func:`stored` wraps a function like :func:`jax.jit` does. The first call with a given
input structure traces and lowers it once, with :func:`jax.export.export`, and writes
the serialized program to ``$PERFMODEL_CACHE_DIR/programs`` (default
``~/.cache/perfmodel/programs``). A later process with the same key deserializes it and
compiles it (a hit in the compilation cache), without tracing. In a process, each key's
program is kept compiled.

The key (SHA-256) covers everything a trace can depend on:

* the function's name;
* every file of the perfmodel package, code and data
  (:func:`perfmodel.model_cache.package_fingerprint`): the fitted parameters and the
  catalog a trace may read are files of the package;
* the JAX and jaxlib versions, the backend and the 64-bit flag;
* the input's pytree structure, static fields included (its ``repr``), and each leaf's
  shape, dtype and weak type.

So an edited model file or a new JAX traces anew: a stored program never stands in for
another model. What the key cannot see is code changed in memory: a function patched at
run time (``monkeypatch``) inside a stored one is not traced again, in this process (as
with :func:`jax.jit`) or in a later one; set ``PERFMODEL_PROGRAM_CACHE=0`` for that. A function called under a transformation (a tracer among its inputs: it
is inside ``grad``, ``vmap`` or another ``jit``) runs as the plain jitted function.

An unreadable, truncated or foreign file reads as absent and is written again; a
read-only directory keeps the programs in memory only. At most :data:`MAX_PROGRAMS`
files are kept (the oldest are removed). ``PERFMODEL_PROGRAM_CACHE=0`` turns the store
off (every call is the plain :func:`jax.jit`).

Each file holds the output's pytree structure (a pickle of a ``PyTreeDef``: the node
classes by name and their static fields) and the program (``Exported.serialize``). Like
the compilation cache beside it, the directory is trusted as the package is: only
perfmodel writes it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import pickle
import secrets
import struct
from collections.abc import Callable
from pathlib import Path

import jax
import jax.core

from perfmodel import model_cache

__all__ = ["MAX_PROGRAMS", "Stored", "enabled", "programs_dir", "stored"]

#: The most program files kept in :func:`programs_dir` (about 0.1 MB each).
MAX_PROGRAMS = 512
#: The version of the key and of the file layout (a new one orphans the old files).
FORMAT = b"perfmodel-program-v1\n"


def enabled() -> bool:
    """Whether stored programs are used (``PERFMODEL_PROGRAM_CACHE`` is not ``0``)."""
    return os.environ.get("PERFMODEL_PROGRAM_CACHE", "1") != "0"


def programs_dir() -> Path:
    """Where the programs are kept: ``$PERFMODEL_CACHE_DIR/programs``."""
    return model_cache.cache_dir() / "programs"


def _leaf_key(x) -> tuple:
    if isinstance(x, (bool, int, float, complex)):
        return ((), str(jax.numpy.result_type(x)), True)
    weak = bool(getattr(x, "weak_type", False))
    dt = getattr(x, "dtype", None)
    name = _dtype_name(dt) if dt is not None else str(jax.numpy.result_type(x))
    return (tuple(getattr(x, "shape", ())), name, weak)


@functools.lru_cache(maxsize=64)
def _dtype_name(dt) -> str:
    """``str(jnp.result_type(x))`` of an array of dtype ``dt`` (the canonical dtype: an
    array's result type is its dtype's), computed once per dtype."""
    return str(jax.numpy.result_type(dt))


def _is_traced(leaves) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in leaves)


def _file_key(name: str, in_tree, leaf_keys: tuple) -> str:
    h = hashlib.sha256(FORMAT)
    for part in (
        name,
        model_cache.package_fingerprint(),
        jax.__version__,
        importlib.metadata.version("jaxlib"),
        jax.default_backend(),
        str(bool(jax.config.values["jax_enable_x64"])),
        repr(in_tree),
        repr(leaf_keys),
    ):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:32]


def _read(path: Path):
    """``(exported, out_tree)`` from ``path``, or None when it is absent or unreadable."""
    try:
        data = path.read_bytes()
        if not data.startswith(FORMAT):
            return None
        (n,) = struct.unpack_from("<Q", data, len(FORMAT))
        start = len(FORMAT) + 8
        out_tree = pickle.loads(data[start : start + n])
        exported = jax.export.deserialize(bytearray(data[start + n :]))
    except Exception:  # noqa: BLE001 - absent, truncated, foreign or from another JAX
        return None
    return exported, out_tree


def _write(path: Path, exported, out_tree) -> None:
    """Write atomically (a temporary file renamed over ``path``), then keep at most
    :data:`MAX_PROGRAMS` files; a read-only directory keeps nothing."""
    tree = pickle.dumps(out_tree)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("xb") as f:
            f.write(FORMAT + struct.pack("<Q", len(tree)) + tree + bytes(exported.serialize()))
        os.replace(tmp, path)
        _prune(path.parent, MAX_PROGRAMS)
    except OSError:
        tmp.unlink(missing_ok=True)


def _prune(folder: Path, keep: int) -> None:
    try:
        files = sorted((p.stat().st_mtime, p) for p in folder.iterdir() if p.suffix == ".program")
    except OSError:
        return
    for _, p in files[: max(0, len(files) - keep)]:
        p.unlink(missing_ok=True)


class Stored:
    """A jitted function whose programs are stored (see the module docstring).

    ``f(*args)`` returns what ``jax.jit(fn)(*args)`` returns; ``f.compile(*args)`` returns
    the compiled callable for inputs of that structure (for timing compilation apart);
    ``f.jitted`` is the plain :func:`jax.jit` of ``fn``.
    """

    def __init__(self, fn: Callable, name: str):
        self.fn = fn
        self.name = name
        self.jitted = jax.jit(fn)
        self._compiled: dict[tuple, Callable] = {}

    def _flat_fn(self, in_tree, out: list):
        """``fn`` of the flat leaves, returning flat leaves; the output's structure goes
        to ``out`` when it is traced."""

        def flat(*leaves):
            got, tree = jax.tree_util.tree_flatten(
                self.fn(*jax.tree_util.tree_unflatten(in_tree, leaves))
            )
            out.append(tree)
            return got

        flat.__name__ = getattr(self.fn, "__name__", "stored")  # what JAX's logs name
        return flat

    def compile(self, *args) -> Callable:
        """The callable that evaluates inputs structured as ``args`` (traced, loaded or
        taken from this process's memory)."""
        leaves, in_tree = jax.tree_util.tree_flatten(args)
        if not enabled() or _is_traced(leaves):
            return self.jitted
        memo = (in_tree, tuple(_leaf_key(x) for x in leaves))
        call = self._compiled.get(memo)
        if call is None:
            call = self._load_or_export(in_tree, memo[1], leaves)
            self._compiled[memo] = call
        return call

    def _load_or_export(self, in_tree, leaf_keys, leaves) -> Callable:
        path = programs_dir() / f"{_file_key(self.name, in_tree, leaf_keys)}.program"
        got = _read(path)
        if got is None:
            trees: list = []
            exported = jax.export.export(jax.jit(self._flat_fn(in_tree, trees)))(*leaves)
            out_tree = trees[-1]
            _write(path, exported, out_tree)
        else:
            exported, out_tree = got
        # compiled here (ahead of the first call), so that compile() holds the whole
        # one-time cost and a call only runs (the persistent compile cache still serves it)
        run = jax.jit(exported.call).lower(*leaves).compile()

        def call(*args):
            return jax.tree_util.tree_unflatten(out_tree, run(*jax.tree_util.tree_leaves(args)))

        return call

    def __call__(self, *args):
        return self.compile(*args)(*args)


def stored(fn: Callable, name: str | None = None) -> Stored:
    """:class:`Stored` of ``fn`` (a decorator too); ``name`` defaults to the function's
    module and qualified name."""
    return Stored(fn, name or f"{fn.__module__}.{getattr(fn, '__qualname__', 'stored')}")
