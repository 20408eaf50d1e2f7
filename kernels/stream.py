"""Moved to :mod:`perfmodel.kernels.stream`; ``kernels.stream`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import stream as _module

sys.modules[__name__] = _module
