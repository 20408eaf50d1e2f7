"""The :class:`Network` pytree: the network as one chip of a cluster sees it, and its checks.

All leaves are float arrays (SI units: byte/s, s), so the collective times of
:mod:`perfmodel.interconnect.collectives` can be ``jit``-ed, ``vmap``-ed over networks and
differentiated with respect to bandwidths and latencies. Conventions, formulas and
sources are in the docstring of :mod:`perfmodel.interconnect.collectives`; networks built
from the catalog are in :mod:`perfmodel.interconnect.topology`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from perfmodel.hardware import CatalogError, load_catalog, struct


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------------------
# The Network pytree
# --------------------------------------------------------------------------------------


@struct.dataclass
class Network:
    """The network as one chip of a cluster sees it (all leaves float arrays).

    Attributes:
      scaleup_bytes_per_s: achievable bandwidth per chip, one direction, inside a
        scale-up domain, byte/s. On a mesh (``mesh = 1``): per edge (to one neighbour).
      scaleup_latency_s: latency of one step inside the domain, s.
      scaleout_bytes_per_s: achievable bandwidth per chip, one direction, across
        domains (before the oversubscription taper), byte/s.
      scaleout_latency_s: latency of one step across domains, s.
      domain_size: chips per scale-up domain (8 for HGX, 72 for NVL72, tiles in a mesh).
      oversubscription: scale-out fat-tree taper, >= 1 (1 = non-blocking).
      mesh: 1.0 if the scale-up domain is a 2-D mesh (Dojo), 0.0 if switched.
      switch_reduction: 1.0 if the scale-up switch reduces in the network (NVLink SHARP,
        NCCL's NVLS, on NVSwitch gen3 and NVLink5 switches) and the ``nvls`` all-reduce
        is used; 0.0 (default) otherwise. An addition to the 7-field contract, with a
        default, so ``Network(...)`` with the 7 fields still works.
      switch_reduction_ratio: bandwidth of the in-switch (``nvls``) all-reduce relative
        to ``scaleup_bytes_per_s``, > 0. Default: the built-in catalog's
        ``[link_defaults] switch_reduction_ratio`` (:func:`default_switch_reduction_ratio`);
        :func:`network_for` takes the link's own figure where it has one.
    """

    scaleup_bytes_per_s: jnp.ndarray
    scaleup_latency_s: jnp.ndarray
    scaleout_bytes_per_s: jnp.ndarray
    scaleout_latency_s: jnp.ndarray
    domain_size: jnp.ndarray
    oversubscription: jnp.ndarray
    mesh: jnp.ndarray
    switch_reduction: jnp.ndarray | float = 0.0
    switch_reduction_ratio: jnp.ndarray = struct.field(
        default_factory=lambda: default_switch_reduction_ratio()
    )

    @staticmethod
    def create(
        scaleup_bytes_per_s: float,
        scaleup_latency_s: float = 0.0,
        scaleout_bytes_per_s: float | None = None,
        scaleout_latency_s: float | None = None,
        domain_size: float = 1.0,
        oversubscription: float = 1.0,
        mesh: bool | float = False,
        switch_reduction: bool | float = False,
        switch_reduction_ratio: float | None = None,
    ) -> Network:
        """A validated :class:`Network` from plain numbers (SI units). The scale-out link
        defaults to the scale-up one (a flat, single-level network);
        ``switch_reduction_ratio`` to :func:`default_switch_reduction_ratio`."""
        if switch_reduction_ratio is None:
            switch_reduction_ratio = default_switch_reduction_ratio()
        net = Network(
            scaleup_bytes_per_s=_f(scaleup_bytes_per_s),
            scaleup_latency_s=_f(scaleup_latency_s),
            scaleout_bytes_per_s=_f(
                scaleup_bytes_per_s if scaleout_bytes_per_s is None else scaleout_bytes_per_s
            ),
            scaleout_latency_s=_f(
                scaleup_latency_s if scaleout_latency_s is None else scaleout_latency_s
            ),
            domain_size=_f(domain_size),
            oversubscription=_f(oversubscription),
            mesh=_f(float(mesh)),
            switch_reduction=_f(float(switch_reduction)),
            switch_reduction_ratio=_f(switch_reduction_ratio),
        )
        validate_network(net)
        return net


_DEFAULT_SWITCH_REDUCTION_RATIO: float | None = None


def default_switch_reduction_ratio() -> float:
    """``switch_reduction_ratio`` of a :class:`Network` built by hand: the built-in
    catalog's ``[link_defaults] switch_reduction_ratio`` (read once, then cached)."""
    global _DEFAULT_SWITCH_REDUCTION_RATIO
    if _DEFAULT_SWITCH_REDUCTION_RATIO is None:
        fig = load_catalog().link_defaults.get("switch_reduction_ratio")
        if fig is None:
            raise CatalogError(
                "built-in catalog: [link_defaults] has no "
                "'switch_reduction_ratio' (the default for networks built "
                "by hand)"
            )
        _DEFAULT_SWITCH_REDUCTION_RATIO = fig.best
    return _DEFAULT_SWITCH_REDUCTION_RATIO


def _concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array, or ``None`` when it is traced (checked later by nobody:
    validate before tracing)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def _check_range(
    name: str,
    x: Any,
    lo: float,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    integer: bool = False,
) -> None:
    a = _concrete(x)
    if a is None:
        return
    bad = ~np.isfinite(a) if math.isinf(hi) else np.isnan(a)
    bad |= (a <= lo) if lo_open else (a < lo)
    bad |= a > hi
    if integer:
        bad |= np.abs(a - np.round(a)) > 1e-9 * np.maximum(1.0, np.abs(a))
    if np.any(bad):
        v = a[bad].flat[0] if a.ndim else a.item()
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{']' if math.isfinite(hi) else ')'}"
        kind = "an integer in " if integer else "finite and in "
        raise ValueError(f"{name} = {v!r} must be {kind}{rng}")


def validate_network(net: Network) -> None:
    """Raise ``ValueError`` naming the field if a (concrete) network is invalid."""
    _check_range("scaleup_bytes_per_s", net.scaleup_bytes_per_s, 0.0, lo_open=True)
    _check_range("scaleout_bytes_per_s", net.scaleout_bytes_per_s, 0.0, lo_open=True)
    _check_range("scaleup_latency_s", net.scaleup_latency_s, 0.0)
    _check_range("scaleout_latency_s", net.scaleout_latency_s, 0.0)
    _check_range("domain_size", net.domain_size, 1.0, integer=True)
    _check_range("oversubscription", net.oversubscription, 1.0)
    m = _concrete(net.mesh)
    if m is not None and not np.all((m == 0.0) | (m == 1.0)):
        raise ValueError(f"mesh = {m!r} must be 0.0 (switched) or 1.0 (2-D mesh)")
    r = _concrete(net.switch_reduction)
    if r is not None and not np.all((r == 0.0) | (r == 1.0)):
        raise ValueError(f"switch_reduction = {r!r} must be 0.0 (none) or 1.0 (NVLS/SHARP)")
    _check_range("switch_reduction_ratio", net.switch_reduction_ratio, 0.0, lo_open=True)
