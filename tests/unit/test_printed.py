"""support/printed.py: the rounding allowance of figures read back from tables."""

from __future__ import annotations

import pytest
from support.printed import printed_bounds, printed_quotient_agrees


def test_bounds_are_half_a_unit_of_the_last_printed_place() -> None:
    assert printed_bounds("7.2") == pytest.approx((7.15, 7.25))
    assert printed_bounds("0.78") == pytest.approx((0.775, 0.785))
    assert printed_bounds("12") == pytest.approx((11.5, 12.5))


def test_the_quotient_of_issue_22_agrees_with_its_rounded_parts() -> None:
    # 7.2 / 9.1 is 0.791, but 7.15 / 9.15 is 0.781: the printed 0.78 can be the unrounded rates' ratio.
    assert printed_quotient_agrees("0.78", numerator="7.2", denominator="9.1")
    assert not printed_quotient_agrees("0.70", numerator="7.2", denominator="9.1")
    assert not printed_quotient_agrees("0.90", numerator="7.2", denominator="9.1")
