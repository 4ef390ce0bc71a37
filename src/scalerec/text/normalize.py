"""One text normalization for training the tokenizer and for encoding any item later.

Amazon metadata carries HTML entities (`&amp;`), tags (`<br>`), full-width and compatibility
characters; the study lowercased and kept `\\w+` words. Applying the *same* function at tokenizer
training, table building and cold-start serving is what makes token ids comparable across domains.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence

_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")


def normalize_text(text: str | None) -> str:
    """NFKC, HTML-unescape, strip tags, lowercase, keep `\\w+` words joined by single spaces.

    `None` and non-strings (e.g. NaN from a data frame) become "".
    """
    if not isinstance(text, str) or not text:
        return ""
    text = _TAG.sub(" ", html.unescape(_TAG.sub(" ", text)))
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD.findall(text))


def categories_text(categories: Sequence[str] | None) -> str:
    """A category path as one normalized line (levels joined by spaces)."""
    if categories is None or isinstance(categories, str):
        return normalize_text(categories)
    return normalize_text(" ".join(c for c in categories if isinstance(c, str)))
