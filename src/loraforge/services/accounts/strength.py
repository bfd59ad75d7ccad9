"""How easy a password is to guess, with zxcvbn and its bundled lists (nothing is downloaded).

A password is refused when it is one of the 30,000 most common passwords (any case), or when
zxcvbn estimates fewer than 10^6 guesses for it (score below 2: keyboard walks, repeats, dates,
dictionary words with digits appended, the username or email with a suffix). Length alone is not
enough: `password` and `12345678` are eight characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

# zxcvbn's scores: 0 < 10^3 guesses, 1 < 10^6, 2 < 10^8, 3 < 10^10, 4 beyond.
MIN_SCORE = 2
# zxcvbn's matching grows quickly with length and it refuses inputs longer than this; the prefix
# decides anyway (a password whose first 72 characters are strong is strong).
_SCORED_PREFIX = 72


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def weakness(password: str, *, user_inputs: Iterable[str] = ()) -> str | None:
    """Why `password` is too easy to guess (a sentence for the user), or None when it is not."""
    if password.lower() in _common() or password.strip().lower() in _common():
        return "is one of the most common passwords; choose another"
    inputs = [value for value in user_inputs if value]
    # The local part of an email on its own, so `alice2024` is weak for alice@example.com too.
    inputs += [value.split("@", 1)[0] for value in inputs if "@" in value]
    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=inputs)
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    hint = str(feedback.get("warning") or "").rstrip(".")
    suggestions = [str(item).rstrip(".") for item in feedback.get("suggestions") or [] if item]
    detail = "; ".join(part for part in [hint, *suggestions] if part)
    message = "is too easy to guess"
    return f"{message}: {detail}" if detail else f"{message}; use a longer phrase of uncommon words"
