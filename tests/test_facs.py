"""The FACS code parser shared by the region labels and the synthetic generator."""

import pytest

from localmer import facs
from localmer.facs import ActionUnit


@pytest.mark.parametrize(
    ("code", "units"),
    [
        ("4+L10", [("", 4, ""), ("L", 10, "")]),
        ("R6A+R12", [("R", 6, "A"), ("R", 12, "")]),
        ("6A+12", [("", 6, "A"), ("", 12, "")]),  # an A after the number is an intensity
        ("25A+26A", [("", 25, "A"), ("", 26, "A")]),
        ("1A+2B+L14C", [("", 1, "A"), ("", 2, "B"), ("L", 14, "C")]),
        ("4+6+7+9+43E", [("", 4, ""), ("", 6, ""), ("", 7, ""), ("", 9, ""), ("", 43, "E")]),
        ("A2", [("", 2, "")]),  # SAMM's asymmetric AU (before the number): both sides
        ("A1B+A2C", [("", 1, "B"), ("", 2, "C")]),
        ("7C+A12B", [("", 7, "C"), ("", 12, "B")]),
        ("T23", [("", 23, "")]),  # top lip: no side
        ("B18+25", [("", 18, ""), ("", 25, "")]),  # bottom lip: no side
        ("ref(7B)+43", [("", 7, "B"), ("", 43, "")]),
        ("7B+ ref(43)", [("", 7, "B"), ("", 43, "")]),
        ("(R6 or R12) + R15", [("R", 6, ""), ("R", 12, ""), ("R", 15, "")]),
        ("R14A or 17A or 24A", [("R", 14, "A"), ("", 17, "A"), ("", 24, "A")]),
        ("10A/B", [("", 10, "A")]),  # an intensity range: its first letter
        ("A/L12", [("L", 12, "")]),
        ("AU12", []),  # a number glued to letters is not an item
        ("?", []),
        ("", []),
        (None, []),
        (12, [("", 12, "")]),  # a sheet cell holding one plain AU is a number
    ],
)
def test_parse_aus_reads_sheet_and_generator_notations(code, units):
    assert facs.parse_aus(code) == [ActionUnit(*unit) for unit in units]


def test_action_unit_fields_are_named():
    (unit,) = facs.parse_aus("L12C")
    assert (unit.side, unit.number, unit.intensity) == ("L", 12, "C")
