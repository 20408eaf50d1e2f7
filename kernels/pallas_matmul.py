"""Moved to :mod:`perfmodel.kernels.pallas_matmul`; ``kernels.pallas_matmul`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import pallas_matmul as _module

sys.modules[__name__] = _module
