"""The keyword analyzer and BM25 weights, against examples worked by hand."""

from __future__ import annotations

import math

import pytest

from search import bm25
from search.analysis import Analyzer, term_id


def test_analyzer_folds_splits_drops_stop_words_and_stems() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("The Studies of RUNNING mice, and their proteins!") == [
        "studi",
        "run",
        "mice",
        "protein",
    ]


def test_unicode_text_is_normalized_before_matching() -> None:
    analyzer = Analyzer()
    # NFKC turns the ligature into "fi"; case folding makes "STRASSE" match.
    assert analyzer.terms("ﬁle") == analyzer.terms("FILE")
    assert analyzer.tokens("Straße STRASSE") == ["strasse", "strasse"]
    assert analyzer.tokens("Ünïcödé данные 数据") == ["ünïcödé", "данные", "数据"]


def test_apostrophes_stay_inside_words_and_separators_split() -> None:
    analyzer = Analyzer()
    assert analyzer.tokens("don\u2019t re-use e-mail_addresses") == [
        "don't",
        "re",
        "use",
        "e",
        "mail",
        "addresses",
    ]


def test_identifiers_and_numbers_are_kept_unstemmed() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("Error ERR42 in 2024 builds") == [
        "error",
        "err42",
        "2024",
        "build",
    ]


def test_other_languages_and_unknown_ones() -> None:
    assert Analyzer("german", stop_words=frozenset()).terms("Häuser") == ["haus"]
    with pytest.raises(ValueError, match="no Snowball stemmer"):
        Analyzer("klingon")


def test_term_ids_are_stable_32_bit_values() -> None:
    assert term_id("backup") == term_id("backup")
    assert term_id("backup") != term_id("backups")
    assert 0 <= term_id("x") < 2**32
    # The id is part of the index format: it must never change.
    assert term_id("backup") == int.from_bytes(
        __import__("hashlib").blake2b(b"backup", digest_size=4).digest(), "little"
    )


def test_bm25_weights_match_a_hand_computed_example() -> None:
    # A chunk of 6 terms, avgdl 4, k1 1.2, b 0.75: "cat" twice, "dog" once, ...
    terms = ["cat", "dog", "cat", "fish", "bird", "mouse"]
    vector = bm25.document_vector(terms, avg_length=4.0)
    weights = dict(zip(vector.indices, vector.values, strict=True))

    norm = 1.2 * (1 - 0.75 + 0.75 * 6 / 4)  # 1.65
    assert weights[term_id("cat")] == pytest.approx(2 * 2.2 / (2 + norm))  # 1.2055
    assert weights[term_id("dog")] == pytest.approx(1 * 2.2 / (1 + norm))  # 0.8302
    assert len(weights) == 5
    assert list(vector.indices) == sorted(vector.indices)


def test_bm25_score_of_a_small_collection_by_hand() -> None:
    """idf times the stored weights is BM25, as Qdrant will compute it."""
    chunks = [["cat", "sat"], ["cat", "cat", "ran"], ["dog", "ran"]]
    avg = sum(map(len, chunks)) / len(chunks)  # 7/3
    vectors = [bm25.document_vector(c, avg) for c in chunks]
    query = bm25.query_vector(["cat", "ran", "cat"])

    def score(i: int) -> float:
        weights = dict(zip(vectors[i].indices, vectors[i].values, strict=True))
        total = 0.0
        for t in query.indices:
            containing = sum(1 for v in vectors if t in v.indices)
            total += bm25.idf(len(chunks), containing) * weights.get(t, 0.0)
        return total

    # idf(cat) = idf(ran) = ln(1 + 1.5 / 2.5) = ln 1.6
    idf = math.log(1.6)
    assert bm25.idf(3, 2) == pytest.approx(idf)
    norm_2 = 1.2 * (0.25 + 0.75 * 2 / avg)
    norm_3 = 1.2 * (0.25 + 0.75 * 3 / avg)
    assert score(0) == pytest.approx(idf * 2.2 / (1 + norm_2))
    assert score(1) == pytest.approx(
        idf * (2 * 2.2 / (2 + norm_3) + 2.2 / (1 + norm_3))
    )
    assert score(1) > score(0) > 0
    assert query.values == (1.0, 1.0)


def test_no_terms_no_vector_and_bad_parameters() -> None:
    assert bm25.document_vector([], 10.0).indices == ()
    with pytest.raises(ValueError, match="k1"):
        bm25.BM25Params(k1=-1)
    with pytest.raises(ValueError, match="b"):
        bm25.BM25Params(b=1.5)
