"""Digits that `str.isdigit` accepts but `int` refuses ("²", "³") or reads as another script's digits
("٣") used to pass the checks in front of `int(...)` and end as a 500. HTTP headers arrive decoded as
Latin-1, so "²" and "³" can come from any client."""

from __future__ import annotations

import pytest

from loraforge.services.platform.archives import parse_range


@pytest.mark.parametrize("header", ["bytes=²-", "bytes=0-³", "bytes=-²", "bytes=٣-4"])
def test_a_range_with_non_ascii_digits_is_malformed_not_a_crash(header: str) -> None:
    with pytest.raises(ValueError, match="malformed range"):
        parse_range(header, 100)


def test_ascii_ranges_still_parse() -> None:
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=-10", 100) == (90, 100)
