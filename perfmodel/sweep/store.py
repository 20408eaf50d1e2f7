"""The sweep directory on disk: chunk files with their SHA-256, the manifest, the lock.

Layout of ``OUT/``:

* ``chunk-{c:06d}.parquet``: the rows of chunk ``c`` (samples ``c*K .. c*K+K-1``),
  written to a hidden temporary (``.chunk-*.tmp-p<process>-<pid>``), fsynced, then
  ``os.replace``-d into place (atomic); ``chunk-{c:06d}.parquet.sha256`` (its SHA-256)
  is put in place just before it. A chunk whose checksum, row count or columns do not
  match is recomputed;
* ``manifest.json``: the spec identity (model, config, params, samples, seed, chunk
  size), its hashes and the model fingerprint (perfmodel's source and data, JAX and NumPy
  versions), the output columns. A different sweep in the same directory is an error;
* ``.lock-p<process>``: an exclusive ``flock`` per process index, held for the run.

Nothing else is written, and ``--overwrite`` deletes only these names.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from perfmodel.errors import InputError, path_error, read_text
from perfmodel.sweep.spec import SweepSpec

MANIFEST = "manifest.json"
#: 2: per-chunk SHA-256 files, spec and model hashes in the manifest.
FORMAT_VERSION = 2


def chunk_path(out: Path, c: int) -> Path:
    return out / f"chunk-{c:06d}.parquet"


def _write_atomic(path: Path, data: bytes | None = None, table=None, tag: str = "p0") -> None:
    """Write ``path`` atomically: a hidden temporary file (named with the process tag
    and pid), fsync, then ``os.replace``. A reader never sees a partial file."""
    tmp = path.with_name(f".{path.name}.tmp-{tag}-{os.getpid()}")
    if table is not None:
        pq.write_table(table, tmp, compression="zstd")
    else:
        tmp.write_bytes(data or b"")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_chunk(path: Path, table, tag: str) -> None:
    """Write a chunk: the Parquet file to a temporary, its SHA-256 next to where it goes
    (atomically), then the chunk into place (atomically). A chunk on disk therefore
    always has its checksum; a checksum without its chunk is rewritten with it."""

    tmp = path.with_name(f".{path.name}.tmp-{tag}-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    _write_atomic(checksum_path(path), (_sha256_file(tmp) + "\n").encode(), tag=tag)
    os.replace(tmp, path)


def _chunk_ok(path: Path, rows: int, columns: Sequence[str] | None) -> bool:

    try:
        md = pq.read_metadata(path)
    except Exception:  # noqa: BLE001 - unreadable: recompute
        return False
    if md.num_rows != rows:
        return False
    return columns is None or list(md.schema.names) == list(columns)


def check_manifest(out: Path, spec: SweepSpec) -> dict[str, Any] | None:
    """The manifest already in ``out`` (``None`` if there is none) after checking that it
    is this sweep: the same spec, seed, sample count and chunk size, and the same model
    fingerprint (:func:`model_fingerprint`); any difference is an error naming it."""
    if not (out / MANIFEST).exists():
        return None
    man = read_manifest(out)
    want = spec.identity()
    have = man["identity"]
    diffs = [k for k in want if have.get(k) != want[k]]
    hint = (
        "use another --out, rerun with the original settings to resume, "
        "or pass --overwrite to delete it"
    )
    if diffs:
        detail = "; ".join(
            f"{k}: directory has {_short(have.get(k))}, this run has {_short(want[k])}"
            for k in diffs
        )
        raise InputError(f"output directory {out} holds a different sweep ({detail}); {hint}")
    fp_have, fp_want = man.get("hashes", {}).get("model", {}), model_fingerprint()
    diffs = [k for k in fp_want if fp_have.get(k) != fp_want[k]]
    if diffs:
        detail = "; ".join(
            f"{k}: directory has {_short(fp_have.get(k))}, this run has {_short(fp_want[k])}"
            for k in diffs
        )
        raise InputError(
            f"output directory {out} holds a sweep made by other model code or data "
            f"({detail}); its results would mix with this run's; {hint}"
        )
    return man


def _short(x: Any, n: int = 80) -> str:
    s = json.dumps(x, sort_keys=True) if not isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


def clear_sweep(out: Path) -> None:
    """Delete the sweep files in ``out`` (chunks, checksums, temporaries, manifest), and
    nothing else."""
    for pattern in ("chunk-*.parquet", "chunk-*.parquet.sha256", ".chunk-*.tmp-*", ".manifest*"):
        for f in out.glob(pattern):
            f.unlink(missing_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)


#: Names a sweep directory may hold (so ``--out`` never points at a directory of other
#: files, e.g. the current directory, which ``--overwrite`` would then clean).
_SWEEP_FILE = re.compile(
    r"(manifest\.json|chunk-\d{6}\.parquet(\.sha256)?|\.chunk-.*\.tmp-.*|\.manifest.*"
    r"|\.lock-p\d+|.*\.png)"
)


def check_out_dir(out: str | Path) -> Path:
    """``out`` as a :class:`Path` if it can hold a sweep: not empty, not a file, and
    either new, empty or holding a sweep's files only."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out).strip():
        raise InputError("--out", out, "a directory path (a new or empty directory, or a sweep)")
    p = Path(out).expanduser()
    try:
        if p.exists() and not p.is_dir():
            raise InputError(f"--out {str(p)!r} exists and is not a directory")
        if p.is_dir():
            other = sorted(f.name for f in p.iterdir() if not _SWEEP_FILE.fullmatch(f.name))
            if other and not (p / MANIFEST).exists():
                raise InputError(
                    f"--out {str(p)!r} is a directory of other files ({len(other)}, e.g. "
                    f"{other[0]!r}), not a sweep; choose a new or empty directory"
                )
    except OSError as e:
        raise path_error(p, e, "directory") from e
    return p


@contextlib.contextmanager
def sweep_lock(out: Path, tag: str = "p0") -> Iterator[None]:
    """Hold ``out/.lock-<tag>`` (an exclusive ``flock``; ``tag`` is ``p<process index>``)
    for a run: a second run into the same directory with the same process index refuses
    instead of mixing its chunks in. The processes of one multi-process run hold one
    file each, so they never lock each other out; every run has a process 0, so two runs
    always collide on ``.lock-p0`` (and a multi-process run stops when any of its
    processes cannot lock). The lock ends with the process, however it ends; across
    hosts it needs a file system whose ``flock`` is coherent between them (NFSv4, Lustre
    mounted with ``-o flock``, GPFS)."""
    path = out / f".lock-{tag}"
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held across the yield
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise InputError(
                f"--out {str(out)!r} is in use by another sweep ({holder}); wait for it to "
                "finish, or use another --out"
            ) from None
        except OSError as e:  # ENOLCK: e.g. NFS mounted with nolock
            raise InputError(
                f"--out {str(out)!r}: the file system refuses a lock ({e.strerror}); "
                "a sweep needs flock on its output directory"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        yield
    finally:
        fh.close()  # releases the lock


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_path(chunk: Path) -> Path:
    """Where the SHA-256 of a chunk file is kept (written before the chunk itself)."""
    return chunk.with_name(chunk.name + ".sha256")


def chunk_state(path: Path, rows: int, columns: Sequence[str] | None) -> str:
    """``"ok"``, ``"missing"`` or ``"bad"`` (its checksum, row count or columns do not
    match: corrupted or truncated; it is recomputed)."""
    if not path.exists():
        return "missing"
    try:
        want = checksum_path(path).read_text(encoding="ascii").strip()
        if _sha256_file(path) != want:
            return "bad"
    except (OSError, UnicodeDecodeError):
        return "bad"
    return "ok" if _chunk_ok(path, rows, columns) else "bad"


_FINGERPRINT: dict[str, str] = {}


def model_fingerprint() -> dict[str, str]:
    """What the results depend on besides the spec: the SHA-256 of perfmodel's source and
    data files, and the JAX and NumPy versions. A sweep resumes only with the same."""
    if not _FINGERPRINT:
        root = Path(__file__).resolve().parent.parent  # the perfmodel package
        h = hashlib.sha256()
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".toml", ".json", ".csv") and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
        _FINGERPRINT.update(
            perfmodel_sha256=h.hexdigest(), jax=jax.__version__, numpy=np.__version__
        )
    return dict(_FINGERPRINT)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the sweep in ``path``; an :class:`InputError` naming the file
    when it is missing, unreadable or not a manifest of this format."""
    p = Path(path) / MANIFEST
    if not p.exists():
        raise InputError(f"{path}: no sweep results here ({MANIFEST} missing)")
    try:
        man = json.loads(read_text(p, "sweep manifest"))
    except json.JSONDecodeError as e:
        raise InputError(
            f"{p}: not a sweep manifest ({e}); use --overwrite to start over"
        ) from None
    if not isinstance(man, dict) or not isinstance(man.get("identity"), dict):
        raise InputError(f"{p}: not a sweep manifest (no identity); use --overwrite to start over")
    if man.get("format") != FORMAT_VERSION:
        raise InputError(
            f"{p}: sweep format {man.get('format')!r}, this perfmodel writes {FORMAT_VERSION} "
            "(per-chunk checksums); use --overwrite to start over"
        )
    return man


def load_results(path: str | Path, *, allow_partial: bool = False):
    """All rows of a sweep as a ``pyarrow.Table`` sorted by sample index.

    Raises ``ValueError`` if chunks are missing unless ``allow_partial``.
    """

    out = Path(path)
    man = read_manifest(out)
    files = [chunk_path(out, c) for c in range(man["n_chunks"])]
    have = [f for f in files if f.exists()]
    if len(have) < len(files) and not allow_partial:
        raise InputError(
            f"{out}: {len(files) - len(have)} of {len(files)} chunks missing; "
            "rerun the same sweep command to finish it"
        )
    for f in have:
        try:
            ok = _sha256_file(f) == checksum_path(f).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise InputError(
                f"{f}: fails its checksum (corrupted); rerun the same sweep command to recompute it"
            )
    if not have:
        return pa.table({c: pa.array([], pa.float64()) for c in man["columns"]})
    return ds.dataset([str(f) for f in have], format="parquet").to_table()


def new_manifest(spec: SweepSpec, n_chunks: int, columns: Sequence[str]) -> dict[str, Any]:
    """The manifest of a new sweep of ``spec`` (``n_chunks`` chunks, ``columns``)."""
    return {
        "format": FORMAT_VERSION,
        "identity": spec.identity(),
        "digest": spec.digest(),
        # what the results depend on, hashed: the spec (model, config, params, samples,
        # seed, chunk size) and the model's code and data
        "hashes": {
            "spec": hashlib.sha256(
                json.dumps(spec.identity(), sort_keys=True).encode()
            ).hexdigest(),
            "model": model_fingerprint(),
        },
        "source": spec.source,
        "description": spec.description,
        "n_chunks": n_chunks,
        "columns": list(columns),
        "metrics": list(spec.model.metrics),
        "decision_prefixes": list(spec.model.decision_prefixes),
        "decision_threshold": spec.model.decision_threshold,
        "fan": list(spec.model.fan) if spec.model.fan else None,
    }


def write_manifest(out: Path, man: dict[str, Any], tag: str) -> None:
    """Put ``man`` in ``out/manifest.json`` (atomically)."""
    _write_atomic(out / MANIFEST, json.dumps(man, indent=1).encode(), tag=tag)
