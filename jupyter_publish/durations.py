"""Durations as people write them: ``90``, ``2s``, ``500ms``, ``15m``, ``1h``, ``7d``.

One reader for every option that takes a time (``--presign``, ``--sync-every``), so
they accept the same forms and refuse a typo with the same one line.
"""

from __future__ import annotations

import math

from .errors import OptionError

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str | float, *, examples: str = "90, 2s, 15m or 1h") -> float:
    """``text`` in seconds: a number (seconds) or a number with a unit ms, s, m, h or d.

    Positive and finite; anything else is an :class:`OptionError` saying what to write.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        suffix = next((u for u in ("ms", "s", "m", "h", "d") if raw.endswith(u)), "")
        unit = UNITS.get(suffix, 0)
        number = raw[: len(raw) - len(suffix)].strip()
        try:
            value = float(number) * (unit or 1)
        except ValueError:
            value = math.nan
        if number.lower() in ("nan", "inf", "infinity", "+inf", "-inf") or not number:
            value = math.nan
    if not math.isfinite(value):
        raise OptionError(f"cannot read duration {text!r}: write e.g. {examples}")
    if value <= 0:
        raise OptionError(f"a duration must be positive, not {text!r}: write e.g. {examples}")
    return value
