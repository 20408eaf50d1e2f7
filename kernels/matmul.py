"""Moved to :mod:`perfmodel.kernels.matmul`; ``kernels.matmul`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import matmul as _module

sys.modules[__name__] = _module
