"""Moved to :mod:`perfmodel.kernels.harness`; ``kernels.harness`` is that same module, kept so
that scripts run from a source checkout keep working."""

import sys

from perfmodel.kernels import harness as _module

sys.modules[__name__] = _module
