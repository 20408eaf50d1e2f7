"""Pieces of the small hand-written fleet scenarios that several test modules share."""


def h100_offer(**over) -> dict:
    """An ``[offers.KEY]`` table: 8-GPU H100 servers at $400k and 10 kW a unit; ``over``
    adds fields (supply_units, sites, ...) or replaces them."""
    return {
        "chip": "h100_sxm",
        "chips_per_unit": 8,
        "unit_price_usd": 400000,
        "unit_power_w": 10000,
    } | over


#: A ``[sites.KEY]`` table: 10 MW at PUE 1, floor space no limit.
SITE_10MW = {"power_mw": 10, "pue": 1.0, "racks": 1e6}
