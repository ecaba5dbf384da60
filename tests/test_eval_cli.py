"""`semsearch eval` on a small BEIR folder written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TinyModelFactory

from search.cli.main import main
from search.errors import InvalidInputError
from search.evaluation import load_beir

TOPICS = {
    "d1": ("Backups", "Back up the team share every night to a second site."),
    "d2": ("Passwords", "Reset a password from the account page."),
    "d3": ("Bread", "Yeast makes bread rise with carbon dioxide."),
    "d4": ("Coffee", "Descale the coffee machine every month."),
    "d5": ("VPN", "The VPN client needs a certificate to connect."),
    "d6": ("Taxis", "Expense claims for taxis need a receipt."),
}
QUERIES = {"q1": "nightly backup", "q2": "coffee descale", "q3": "taxi receipt"}
QRELS = [("q1", "d1", 2), ("q2", "d4", 1), ("q3", "d6", 1), ("q3", "d2", 0)]


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "tinybeir"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, (title, text) in TOPICS.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query_id, text in {**QUERIES, "q9": "not judged"}.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, d, g in QRELS]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return folder


@pytest.fixture
def env(
    tmp_path: Path, tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))


def test_load_beir_keeps_judged_queries_and_graded_gains(beir: Path) -> None:
    data = load_beir(beir)
    assert set(data.queries) == set(QUERIES)
    assert data.qrels["q1"] == {"d1": 2}
    assert data.corpus["d4"] == "Coffee\n\nDescale the coffee machine every month."


def test_eval_prints_the_metrics_as_json_and_reuses_the_index(
    beir: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(beir), "--mode", "keyword", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "ndcg@10",
        "mrr@10",
        "recall@100",
        "map",
        "latency_ms_p50",
        "latency_ms_p95",
        "mode",
        "docs",
        "queries",
    }
    assert (result["mode"], result["docs"], result["queries"]) == ("keyword", 6, 3)
    # Every query shares a word with its document and with no other one.
    assert result["ndcg@10"] == pytest.approx(1.0)
    assert result["mrr@10"] == pytest.approx(1.0)

    assert main(["eval", str(beir), "--mode", "all"]) == 0
    captured = capsys.readouterr()
    assert "index reused" in captured.out
    lines = captured.out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["dense", "keyword", "hybrid"]


def test_a_folder_that_is_not_beir_is_a_clear_error(
    tmp_path: Path, beir: Path, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path / "nothing")]) == 1
    assert "not a BEIR folder" in capsys.readouterr().err
    assert main(["eval", str(beir), "--split", "dev"]) == 1
    assert "splits here: test" in capsys.readouterr().err


def test_a_broken_line_is_named(beir: Path) -> None:
    with (beir / "corpus.jsonl").open("a", encoding="utf-8") as out:
        out.write("{not json\n")
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:7"):
        load_beir(beir)
