"""Moved to :mod:`perfmodel.kernels` (the microbenchmark kernels that calibrate the model).

``kernels`` and ``kernels.<family>`` are the same module objects as ``perfmodel.kernels``
and ``perfmodel.kernels.<family>``, kept so that scripts run from a source checkout keep
working; new code imports :mod:`perfmodel.kernels`.
"""

import sys

import perfmodel.kernels as _package

sys.modules[__name__] = _package
