"""Networks from the catalog: a chip's system, its scale-up and scale-out links, and
where each number comes from (:class:`Topology`, :func:`topology_for`, :func:`network_for`).

Bandwidths of the :class:`~perfmodel.interconnect.network.Network` built here are
achievable rates (nominal link rate x the link's ``efficiency_ratio``, or the class
default in the catalog's ``[link_defaults]``); every link figure comes from the catalog.
See the docstring of :mod:`perfmodel.interconnect.collectives` for the conventions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TypedDict, Unpack

from perfmodel.hardware import Catalog, CatalogError, load_catalog
from perfmodel.interconnect.network import Network, _check_range

# --------------------------------------------------------------------------------------
# Topologies from the catalog
# --------------------------------------------------------------------------------------

#: Default system of each chip (``network_for(chip)`` without ``system=``), and the
#: fallback topology when the catalog has no system for a chip (or its system names no
#: links): (domain chips, scale-up link, scale-out link, mesh). The links are keys of the
#: catalog's ``[links]``; every link figure comes from there.
DEFAULT_SYSTEM: dict[str, str] = {
    "a100_80gb": "dgx_a100",
    "h100_sxm": "dgx_h100",
    "h200": "hgx_h200",
    "b200": "dgx_b200",
    "gb200": "gb200_nvl72",
    "mi300x": "mi300x_platform",
    "dojo_tile": "dojo_exapod",
    "d1": "dojo_exapod",
}
FALLBACK_TOPOLOGY: dict[str, tuple[int, str, str, bool]] = {
    "a100_80gb": (8, "nvlink3", "ib_hdr", False),
    "h100_sxm": (8, "nvlink4", "ib_ndr", False),
    "h200": (8, "nvlink4", "ib_ndr", False),
    "b200": (8, "nvlink5", "ib_ndr", False),
    "gb200": (72, "nvlink5", "ib_ndr", False),
    "mi300x": (8, "infinity_fabric", "roce_400g", False),
    # Dojo ExaPOD: 120 training tiles (10 cabinets x 2 trays x 6 tiles) whose edges join
    # one 2-D compute plane; the DIPs' Ethernet Z-plane is the scale-out level.
    "dojo_tile": (120, "dojo_tile_edge", "dojo_zplane", True),
    # D1 dies as the chips of a training tile's 5 x 5 mesh (the mesh continues across
    # tiles; modelled per tile here), Z-plane share per die as scale-out.
    "d1": (25, "d1_edge", "dojo_zplane", True),
    "hw3": (1, "ethernet_10g", "ethernet_10g", False),
    "ai4": (1, "ethernet_10g", "ethernet_10g", False),
    "host_cpu": (1, "ethernet_100g", "ethernet_100g", False),
}


@dataclasses.dataclass(frozen=True)
class Topology:
    """Where a :class:`Network` comes from: a system's links, their nominal rates,
    efficiencies and latencies, with the provenance of each number (static, for reports).

    Nominal bandwidths are per chip and direction (per edge on a mesh), byte/s.
    ``switch_reduction_ratio`` is set when ``switch_reduction`` is on (else the
    :class:`Network` default is used).
    """

    chip: str
    system: str
    domain_size: int
    mesh: bool
    scaleup_link: str
    scaleout_link: str
    scaleup_nominal_bytes_per_s: float
    scaleout_nominal_bytes_per_s: float
    scaleup_efficiency: float
    scaleout_efficiency: float
    scaleup_latency_s: float
    scaleout_latency_s: float
    oversubscription: float = 1.0
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)
    switch_reduction: bool = False
    switch_reduction_ratio: float | None = None

    def network(self) -> Network:
        """The :class:`Network` pytree (achievable = nominal x efficiency)."""
        return Network.create(
            self.scaleup_nominal_bytes_per_s * self.scaleup_efficiency,
            self.scaleup_latency_s,
            self.scaleout_nominal_bytes_per_s * self.scaleout_efficiency,
            self.scaleout_latency_s,
            domain_size=self.domain_size,
            oversubscription=self.oversubscription,
            mesh=self.mesh,
            switch_reduction=self.switch_reduction,
            switch_reduction_ratio=self.switch_reduction_ratio,
        )


_PICK_INDEX = {"low": 0, "best": 1, "high": 2}


def _figure(rec, keys: Sequence[str], pick: str) -> tuple[float, str] | None:
    """First of ``keys`` present on a catalog record: (value, provenance)."""
    if rec is None:
        return None
    for k in keys:
        fig = rec.figures.get(k)
        if fig is not None:
            return fig.pick(pick), f"catalog {rec.key}.{k} ({fig.source})"
    return None


def _link_default(cat: Catalog, key: str, pick: str, link: str, field: str) -> tuple[float, str]:
    """The catalog's ``[link_defaults]`` figure ``key`` for a ``link`` lacking ``field``:
    (value, provenance); a clear error naming both when the default is missing too."""
    fig = cat.link_defaults.get(key)
    if fig is None:
        what = f"link {link!r} has no {field!r}" if link else f"no link (so no {field!r})"
        raise CatalogError(
            f"{what}, and the catalog's [link_defaults] has no {key!r} to fall back on"
        )
    return fig.pick(pick), f"catalog link_defaults.{key} ({fig.source})"


def _link_record(cat: Catalog, name: str, level: str, chip: str):
    if not name:
        return None
    rec = cat.links.get(name)
    if rec is None:
        raise CatalogError(
            f"link {name!r} (scale-{level} link of chip {chip!r}) is not in the "
            f"catalog's [links]; known links: {', '.join(sorted(cat.links))}"
        )
    return rec


def topology_for(
    chip_key: str,
    catalog: Catalog | None = None,
    *,
    system: str | None = None,
    oversubscription: float = 1.0,
    pick: str = "best",
    scaleup_efficiency: float | None = None,
    scaleout_efficiency: float | None = None,
    switch_reduction: bool = False,
) -> Topology:
    """The :class:`Topology` of a chip's default (or the given) system.

    Every number comes from the catalog: system ``domain_chips_count`` / ``chips_count``;
    bandwidth from the chip's own per-chip ``scaleup/scaleout_bytes_per_s_per_dir``, else
    the system's, else the link's ``bytes_per_s_per_dir`` (a mesh edge always from the
    link); the link's ``latency_s`` and ``efficiency_ratio``, else the class default in
    ``[link_defaults]`` (``scaleup_latency_s``/``scaleout_latency_s``;
    ``scaleup_switched_efficiency_ratio``, ``scaleup_mesh_efficiency_ratio``,
    ``scaleout_efficiency_ratio``). ``provenance`` records which. A missing bandwidth, or a
    missing figure whose default is missing too, raises :class:`CatalogError` naming the
    link and the field. ``pick`` (best/low/high) selects within estimate ranges
    value by value, like the catalog: ``low`` takes the low end of every figure (lower
    efficiency *and* lower latency), so it is not simply "the slow network".
    Efficiencies default to the link's documented estimate; pass 1.0 for nominal rates.
    ``switch_reduction=True`` turns on the in-switch (NVLS) all-reduce; only scale-up links
    with ``switch_reduction = true`` in the catalog (NVLink4/5 switches) allow it, at the
    link's ``switch_reduction_ratio`` or else ``[link_defaults] switch_reduction_ratio``.
    It is off by default, matching NCCL runs without NVLS (and the rest of this package's
    calibration).
    """
    if pick not in _PICK_INDEX:
        raise ValueError(f"pick {pick!r} must be one of {tuple(_PICK_INDEX)}")
    _check_range("oversubscription", oversubscription, 1.0)
    for name, e in (
        ("scaleup_efficiency", scaleup_efficiency),
        ("scaleout_efficiency", scaleout_efficiency),
    ):
        if e is not None:
            _check_range(name, e, 0.0, 1.0, lo_open=True)
    cat = catalog if catalog is not None else load_catalog()
    key = cat.resolve(chip_key)
    rec = cat.chips[key]
    prov: dict[str, str] = {}

    sys_rec = None
    if system is not None:
        sys_rec = cat.system(system)
        if sys_rec.chip != key:
            raise ValueError(f"system {system!r} is built from chip {sys_rec.chip!r}, not {key!r}")
    else:
        want = DEFAULT_SYSTEM.get(key)
        if want is not None and want in cat.systems and cat.systems[want].chip == key:
            sys_rec = cat.systems[want]
        else:
            same = [s for s in cat.systems.values() if s.chip == key]
            sys_rec = same[0] if same else None

    fb = FALLBACK_TOPOLOGY.get(key)
    # Domain size and mesh flag.
    if sys_rec is not None:
        dom_fig = _figure(sys_rec, ("domain_chips_count", "chips_count"), pick)
        assert dom_fig is not None  # chips_count is a required field of a system
        domain, prov["domain_size"] = int(round(dom_fig[0])), dom_fig[1]
        up_name = str(sys_rec.text.get("link_scaleup", fb[1] if fb else ""))
        out_name = str(sys_rec.text.get("link_scaleout", fb[2] if fb else ""))
        topo_txt = " ".join(str(sys_rec.text.get("topology", "")).lower().split())
        sys_name = sys_rec.key
    elif fb is not None:
        domain, up_name, out_name = fb[0], fb[1], fb[2]
        prov["domain_size"] = f"perfmodel.interconnect.FALLBACK_TOPOLOGY[{key!r}]"
        topo_txt, sys_name = "", f"{key} (no catalog system; fallback)"
    else:
        domain, up_name, out_name, topo_txt = 1, "", "", ""
        sys_name = f"{key} (no catalog system)"
        prov["domain_size"] = "no system: a domain of one chip"

    links = {
        "up": _link_record(cat, up_name, "up", key),
        "out": _link_record(cat, out_name, "out", key),
    }
    names = {"up": up_name, "out": out_name}
    link_txt = ""
    if links["up"] is not None:
        link_txt = " ".join(str(links["up"].text.get(f, "")) for f in ("topology", "kind"))
    link_txt = link_txt.strip().lower()

    def _is_mesh(txt: str) -> bool:  # a 2-D mesh; a full mesh (MI300X) counts as switched
        return "mesh" in txt and "full" not in txt

    if topo_txt:
        mesh = _is_mesh(topo_txt)
    elif link_txt:
        mesh = _is_mesh(link_txt)
    elif fb is not None and fb[1] == up_name:
        mesh = fb[3]
    else:
        mesh = False

    def bandwidth(level: str) -> float:
        chip_key_field = f"scale{level if level == 'out' else 'up'}_bytes_per_s_per_dir"
        if level == "up" and mesh:  # per edge: the link figure, never the chip total
            got = _figure(links["up"], ("bytes_per_s_per_dir",), pick)
            if got is None:
                raise CatalogError(
                    f"no mesh edge bandwidth for {key}: link {up_name!r} lacks bytes_per_s_per_dir"
                )
            return _store(level, got)
        got = _figure(rec, (chip_key_field,), pick)
        if got is not None and got[0] <= 0:
            got = None
        if got is None and sys_rec is not None:
            got = _figure(
                sys_rec, (f"{chip_key_field[:-8]}_per_chip_per_dir", chip_key_field), pick
            )
        if got is None:
            got = _figure(links[level], ("bytes_per_s_per_dir",), pick)
        if got is None:
            raise CatalogError(
                f"no scale-{level} bandwidth known for chip {key!r} (system {sys_name!r}, "
                f"link {names[level]!r}); give the chip '{chip_key_field}', the link "
                f"'bytes_per_s_per_dir', or pass system="
            )
        return _store(level, got)

    def _store(level: str, got: tuple[float, str]) -> float:
        prov[f"scale{level}_bytes_per_s"] = got[1]
        return float(got[0])

    def latency(level: str) -> float:
        got = _figure(links[level], ("latency_s",), pick)
        if got is None:
            got = _link_default(cat, f"scale{level}_latency_s", pick, names[level], "latency_s")
        prov[f"scale{level}_latency_s"] = got[1]
        return float(got[0])

    def efficiency(level: str, given: float | None) -> float:
        if given is not None:
            prov[f"scale{level}_efficiency"] = "given"
            return float(given)
        got = _figure(links[level], ("efficiency_ratio", "bw_efficiency_ratio"), pick)
        if got is None:
            cls = ("scaleup_mesh" if mesh else "scaleup_switched") if level == "up" else "scaleout"
            got = _link_default(
                cat, f"{cls}_efficiency_ratio", pick, names[level], "efficiency_ratio"
            )
        if not 0.0 < got[0] <= 1.0:
            raise CatalogError(
                f"link {names[level]!r}: efficiency {got[0]:g} ({got[1]}) must be in (0, 1]"
            )
        prov[f"scale{level}_efficiency"] = got[1]
        return float(got[0])

    up_bw, out_bw = bandwidth("up"), bandwidth("out")
    up_eff = efficiency("up", scaleup_efficiency)
    out_eff = efficiency("out", scaleout_efficiency)
    up_lat, out_lat = latency("up"), latency("out")
    reduce = _switch_reduction(switch_reduction, links["up"], up_name, mesh, key)
    ratio = None
    if reduce:
        got = _figure(links["up"], ("switch_reduction_ratio",), pick)
        if got is None:
            got = _link_default(
                cat, "switch_reduction_ratio", pick, up_name, "switch_reduction_ratio"
            )
        prov["switch_reduction_ratio"] = got[1]
        ratio = float(got[0])
    return Topology(
        chip=key,
        system=sys_name,
        domain_size=max(1, domain),
        mesh=bool(mesh),
        scaleup_link=up_name or "(none)",
        scaleout_link=out_name or "(none)",
        scaleup_nominal_bytes_per_s=up_bw,
        scaleout_nominal_bytes_per_s=out_bw,
        scaleup_efficiency=up_eff,
        scaleout_efficiency=out_eff,
        scaleup_latency_s=up_lat,
        scaleout_latency_s=out_lat,
        oversubscription=float(oversubscription),
        provenance=prov,
        switch_reduction=reduce,
        switch_reduction_ratio=ratio,
    )


def _switch_reduction(wanted: bool, link, up_name: str, mesh: bool, chip: str) -> bool:
    """Whether the in-switch reduction is on: only where wanted and the scale-up link has
    ``switch_reduction = true`` in the catalog."""
    if not wanted:
        return False
    if mesh or link is None or link.text.get("switch_reduction") is not True:
        raise ValueError(
            f"switch_reduction=True needs a scale-up switch that reduces in the "
            f"network (NVLink4/NVLink5 NVSwitch); chip {chip!r} has "
            f"{up_name or 'no scale-up link'!r}"
        )
    return True


class TopologyOptions(TypedDict, total=False):
    """The keyword options of :func:`topology_for`, which :func:`network_for` passes on."""

    system: str | None
    oversubscription: float
    pick: str
    scaleup_efficiency: float | None
    scaleout_efficiency: float | None
    switch_reduction: bool


def network_for(
    chip_key: str, catalog: Catalog | None = None, **options: Unpack[TopologyOptions]
) -> Network:
    """The :class:`Network` of a chip's default system (e.g. ``h100_sxm`` -> ``dgx_h100``:
    8 GPUs on NVLink4 at 450 GB/s per direction, one 400 Gb/s NIC each), or of
    ``system``, with a scale-out fat-tree taper of ``oversubscription`` (>= 1).

    Bandwidths are achievable rates (nominal x documented efficiency; pass
    ``scaleup_efficiency=1.0, scaleout_efficiency=1.0`` for nominal);
    ``switch_reduction=True`` adds the in-switch NVLS all-reduce on NVLink4/5 systems. See
    :func:`topology_for` for where each number comes from and :func:`describe`.
    """
    return topology_for(chip_key, catalog, **options).network()
