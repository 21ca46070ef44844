"""FACS codes: the action units (AUs) that an annotation sheet or the synthetic generator writes.

A code is AU items joined by ``+``, e.g. ``4+L10`` or ``R6A+R12``. One item is an optional prefix, the
AU number and an optional intensity letter A-E (A weakest, E strongest):

- ``L`` / ``R``: the subject's left / right side only (unilateral AU).
- ``A``: asymmetric, on both sides but stronger on one (SAMM's ``A2``); read as both sides.
- ``T`` / ``B``: top / bottom lip (SAMM's ``T23``); read as both sides.

The parser is tolerant, because the real sheets are written by hand: it picks every item out of the
text and ignores what is not one, so ``ref(7B)`` gives AU 7, ``(R6 or R12) + R15`` gives R6, R12 and R15,
and ``?`` gives nothing. An ``A`` right after the number is an intensity (``6A`` = AU 6 at intensity A),
before it a prefix (``A2``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# An item not glued to a preceding letter or digit (so '12' inside 'AU112' or 'x12' is not one); a
# following digit would make it a longer number.
_ITEM = re.compile(r"(?<![A-Za-z0-9])([LRATB]?)(\d+)([A-E]?)(?![0-9])")


class ActionUnit(NamedTuple):
    """One AU item of a FACS code."""

    side: str  # 'L' or 'R': the subject's left or right only; '': both sides (no prefix, A, T or B)
    number: int  # FACS AU number: 12 = lip corner puller
    intensity: str  # 'A'..'E', or '' when the code gives none


def parse_aus(code: str | int | None) -> list[ActionUnit]:
    """The AU items of a FACS code, in the order written: '4+L10' -> [ActionUnit('', 4, ''), ActionUnit('L', 10, '')].

    A sheet cell holding a single AU may be a number (12); an empty cell (None, '') gives [].
    """
    return [
        ActionUnit(prefix if prefix in ("L", "R") else "", int(number), intensity)
        for prefix, number, intensity in _ITEM.findall(str(code or ""))
    ]
