"""Figures read back from a printed table stand for every value that prints the same way."""

from __future__ import annotations


def printed_bounds(cell: str) -> tuple[float, float]:
    """The interval of values that round to ``cell`` ("7.2": 7.15 to 7.25; "12": 11.5 to 12.5)."""
    decimals = len(cell.partition(".")[2])
    half_unit = 0.5 * 10.0**-decimals
    value = float(cell)
    return value - half_unit, value + half_unit


def printed_quotient_agrees(quotient: str, numerator: str, denominator: str) -> bool:
    """Whether the printed ``quotient`` can be numerator / denominator for some values printing as those."""
    quotient_low, quotient_high = printed_bounds(quotient)
    numerator_low, numerator_high = printed_bounds(numerator)
    denominator_low, denominator_high = printed_bounds(denominator)
    if denominator_low <= 0:
        return True  # a denominator that may be 0 bounds nothing
    return quotient_low <= numerator_high / denominator_low and quotient_high >= numerator_low / denominator_high
