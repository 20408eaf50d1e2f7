"""The errors a user can cause, and nothing else: the command line prints each as one
line (``perfmodel CMD: error: ...``) and exits with status 2.

Any other exception that reaches :func:`perfmodel.cli.main` is a bug and shows as one
(a traceback). This module is the bottom layer: it imports nothing from perfmodel, so
every module can raise these.

- :class:`InputError`: a value the user gave is out of range; the message names the
  field, the value and the allowed range. It is a :class:`ValueError`, so callers that
  catch ``ValueError`` keep working.
- :class:`InfeasibleError`: the inputs are valid but admit no solution (a plan that no
  purchase satisfies); the message names the binding constraint.
- :class:`SolverError`: a solver failed on a valid, feasible problem (time limit,
  numerical trouble); the message names the solver and its status.
- :class:`ResourceError`: the problem is too large for a limit (memory, size); the
  message names the sizes and the limit.

>>> print(InputError("--m", 1e308, "a finite number in [1, 1e15]"))
--m = 1e+308 must be a finite number in [1, 1e15]
>>> print(InputError("unknown chip 'x'; known: h100, b200"))
unknown chip 'x'; known: h100, b200
>>> print(path_error("scen.toml", IsADirectoryError(21, "Is a directory")))
scen.toml: is a directory, not a file
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

_UNSET = object()

#: Longest value repr a message shows (a 1 MB argument must not become a 1 MB line).
MAX_VALUE_CHARS = 80


def _short_repr(value: object) -> str:
    r = repr(value)
    return r if len(r) <= MAX_VALUE_CHARS else r[: MAX_VALUE_CHARS - 3] + "..."


class PerfmodelError(Exception):
    """Base of the errors a user can cause (bad input, no solution, solver failure,
    a resource limit). The command line prints the message as one line, exit 2."""


class InputError(PerfmodelError, ValueError):
    """A value the user gave is invalid.

    ``InputError(field, value, allowed)`` builds ``"{field} = {value!r} must be
    {allowed}"``; ``InputError(message)`` takes a finished message (which should still
    name the field, the value and the allowed range).
    """

    def __init__(self, field: str, value: object = _UNSET, allowed: str | None = None):
        self.field = field
        self.value = None if value is _UNSET else value
        self.allowed = allowed
        if value is _UNSET:
            msg = field
        elif allowed is None:
            msg = f"{field} = {_short_repr(value)} is invalid"
        else:
            msg = f"{field} = {_short_repr(value)} must be {allowed}"
        super().__init__(msg)


class InfeasibleError(PerfmodelError):
    """Valid inputs that admit no solution; the message names the binding constraint."""


class SolverError(PerfmodelError):
    """A solver failed on a valid problem; the message names the solver and status."""


class ResourceError(PerfmodelError):
    """A problem past a size or memory limit; the message names the sizes and limit."""


#: What a name that becomes part of a file name (a catalog key in
#: ``calibration_<chip>.toml``) may look like: no ``/``, ``..``, dots or spaces.
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
SAFE_NAME_TEXT = "lower-case letters, digits and '_' (at most 64, not starting with '_')"


def check_safe_name(name: object, field: str) -> str:
    """``name`` if it matches :data:`SAFE_NAME`, else an :class:`InputError`: a key from a
    user's file never writes outside the directory it is joined to."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise InputError(field, name, SAFE_NAME_TEXT)
    return name


def path_error(path: str | os.PathLike[str], exc: BaseException, what: str = "file") -> InputError:
    """One line naming ``path`` for an :class:`OSError` or :class:`UnicodeDecodeError`
    met while reading or writing it (missing, a directory, unreadable, not UTF-8, a
    name too long)."""
    p = os.fspath(path)
    shown = _short_repr(p)[1:-1] if len(p) > MAX_VALUE_CHARS else p
    if isinstance(exc, UnicodeDecodeError):
        return InputError(f"{shown}: not UTF-8 text (byte {exc.start}); a {what} must be UTF-8")
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{shown}: no such {what}")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{shown}: is a directory, not a {what}")
    if isinstance(exc, NotADirectoryError):
        return InputError(f"{shown}: a part of the path is not a directory")
    if isinstance(exc, PermissionError):
        return InputError(f"{shown}: permission denied")
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return InputError(f"{shown}: file name too long")
    if isinstance(exc, OSError):
        return InputError(f"{shown}: {exc.strerror or exc}")
    return InputError(f"{shown}: {exc}")


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """The UTF-8 text of ``path``; an :class:`InputError` naming the path when it is
    missing, a directory, unreadable, not UTF-8 or its name is too long."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise path_error(path, e, what) from e
