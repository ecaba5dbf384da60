"""Text to index terms for keyword search: tokenize, fold, drop stop words, stem.

The same :class:`Analyzer` turns chunks (at ingest) and queries (at search)
into terms, so that "Backups" in a query meets "backup" in a document:

1. Unicode NFKC normalization and case folding ("ﬁle" -> "file", "Straße" ->
   "strasse");
2. tokens are runs of letters and digits (any script), apostrophes inside a
   word kept ("don't"), everything else a separator;
3. stop words (a short English list, below) are dropped;
4. each token is stemmed with the Snowball stemmer of the language
   ("studies" -> "studi", "running" -> "run"); tokens with digits are kept
   as they are, so identifiers and numbers match exactly.

Terms become sparse-vector indices through :func:`term_id`, a stable 32-bit
hash, so no vocabulary has to be stored or shared between processes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

import snowballstemmer

RIGHT_QUOTE = "\u2019"  # the typographic apostrophe, as in "don\u2019t"
TOKEN = re.compile(rf"[^\W_]+(?:['{RIGHT_QUOTE}][^\W_]+)*")
MAX_TOKEN_CHARS = 64

# Function words that carry no topic; written for this project.
ENGLISH_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because
    been before being below between both but by can could did do does doing down
    during each few for from further had has have having he her here hers herself
    him himself his how i if in into is it its itself just me more most my myself
    no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours
    yourself yourselves""".split()  # noqa: SIM905 - a long word list reads better as text
)


class Analyzer:
    """Turns text into index terms; see the module docstring for the steps."""

    def __init__(
        self, language: str = "english", stop_words: frozenset[str] | None = None
    ) -> None:
        try:
            stemmer = snowballstemmer.stemmer(language)
        except KeyError as exc:
            known = ", ".join(sorted(snowballstemmer.algorithms()))
            raise ValueError(
                f"no Snowball stemmer for {language!r}; known: {known}"
            ) from exc
        self.language = language
        if stop_words is None:
            # Only English has a list here; other languages keep every word.
            stop_words = ENGLISH_STOP_WORDS if language == "english" else frozenset()
        self.stop_words = stop_words
        self._stem = lru_cache(maxsize=200_000)(stemmer.stemWord)

    def tokens(self, text: str) -> list[str]:
        """Folded words of ``text``, stop words included, not stemmed."""
        folded = unicodedata.normalize("NFKC", text).casefold()
        return [
            t.replace(RIGHT_QUOTE, "'")
            for t in TOKEN.findall(folded)
            if len(t) <= MAX_TOKEN_CHARS
        ]

    def terms(self, text: str) -> list[str]:
        """The index terms of ``text``, in order, repeats kept (they are counts)."""
        out = []
        for token in self.tokens(text):
            if token in self.stop_words:
                continue
            out.append(token if _has_digit(token) else self._stem(token))
        return out


def _has_digit(token: str) -> bool:
    return any(c.isdigit() for c in token)


def term_id(term: str) -> int:
    """A stable 32-bit index for ``term`` (a hash: no vocabulary to keep)."""
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little")
