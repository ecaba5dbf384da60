"""The index commands: ingest, search, status, db, and the worker hand-off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLE_PASSAGES, TinyModelFactory

from search.catalog.engine import head_revision
from search.cli.main import main


@pytest.fixture
def env(
    tmp_path: Path, tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    return {**os.environ}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    lines = SAMPLE_PASSAGES.read_text(encoding="utf-8").splitlines()
    for i in range(0, 30, 10):
        (folder / f"part{i // 10}.txt").write_text(
            "\n\n".join(lines[i : i + 10]), "utf-8"
        )
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_search_status_as_json(
    env: dict[str, str], docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["ingest", str(docs), "--tag", "sample", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["new"] == 3
    assert summary["failed"] == 0
    for key in ("changed", "unchanged", "chunks", "seconds", "chunks_per_s"):
        assert key in summary

    code, out, _ = run(
        ["search", "bread", "--tag", "sample", "-k", "4", "--json"], capsys
    )
    assert code == 0
    hits = json.loads(out)
    assert 1 <= len(hits) <= 4
    for hit in hits:
        assert {
            "document_id",
            "chunk_ordinal",
            "score",
            "text",
            "title",
            "path",
        } <= set(hit)
        assert hit["metadata"]["tags"] == ["sample"]

    code, out, _ = run(["status", "--json"], capsys)
    assert code == 0
    status = json.loads(out)
    assert status["documents"] == {"indexed": 3}
    assert status["chunks"] == status["points"] == summary["chunks"]


def test_failures_give_a_non_zero_exit_and_one_line_each(
    env: dict[str, str], docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (docs / "binary.txt").write_bytes(b"\x00" * 100)
    code, out, err = run(["ingest", str(docs), str(docs / "nope")], capsys)
    assert code == 1
    assert "3 new" in out
    assert "failed: " in err
    assert "binary file" in err
    assert "does not exist" in err
    assert "Traceback" not in err


def test_search_refuses_bad_input_clearly(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["search", "x", "--since", "2025-02-01", "--until", "2025-01-01"], capsys
    )
    assert code == 1
    assert "date range is inverted" in err
    code, _, err = run(["search", "   "], capsys)
    assert code == 1
    assert "the query is empty" in err


def test_db_commands(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["db", "current"], capsys)
    assert code == 0
    assert out.startswith("base")
    code, out, _ = run(["db", "upgrade"], capsys)
    assert code == 0
    assert head_revision() in out
    code, out, _ = run(["db", "downgrade", "0001"], capsys)
    assert code == 0
    assert "0001" in out
    code, out, _ = run(["db", "downgrade", "base"], capsys)
    assert code == 0
    assert "base" in out


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_owner(data_dir: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    lock = data_dir / "store.lock"
    while not (lock.exists() and lock.read_text("utf-8")):
        assert process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker never opened the store"
        time.sleep(0.2)


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = _start(["worker"], env)
    _wait_for_owner(Path(env["SEMSEARCH_DATA_DIR"]), process)
    yield process
    process.terminate()
    process.wait(timeout=30)


def test_ingest_hands_its_job_to_the_worker_holding_the_store(
    env: dict[str, str],
    docs: Path,
    worker: subprocess.Popen[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["ingest", str(docs), "--json"], capsys)
    assert code == 0
    assert f"worker process {worker.pid}" in err
    assert json.loads(out)["new"] == 3


def test_a_store_held_by_another_command_is_named_with_what_to_do(
    env: dict[str, str], docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder_script = (
        "import sys, time\n"
        "from search.app import App\n"
        "app = App(role='search'); app.store; print('ready', flush=True)\n"
        "app.ensure_collection(); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_script],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        code, _, err = run(["ingest", str(docs)], capsys)
        assert code == 1
        assert f"open in process {holder.pid}" in err
        assert "stop that process" in err
    finally:
        holder.terminate()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()


def test_queue_only_leaves_the_job_to_a_worker(
    env: dict[str, str], docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["ingest", str(docs), "--queue"], capsys)
    assert code == 0
    assert out.startswith("queued job ")
    code, _, _ = run(["worker", "--once"], capsys)
    assert code == 0
    code, out, _ = run(["status", "--json"], capsys)
    assert json.loads(out)["documents"] == {"indexed": 3}


def test_an_empty_index_says_how_to_add_documents(
    env: dict[str, str], docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["search", "anything"], capsys)
    assert code == 0
    assert "semsearch ingest" in out
    run(["ingest", str(docs)], capsys)
    code, out, _ = run(["search", "anything", "--type", "pdf"], capsys)
    assert code == 0
    assert out.strip() == "no results (try fewer filters)"


def test_the_library_search_function_uses_the_settings(
    env: dict[str, str],
    docs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import search
    import search.retrieval as retrieval

    run(["ingest", str(docs)], capsys)
    retrieval.close_default()
    try:
        hits = search.search("bread", top_k=3)
        assert len(hits) == 3
        assert all(isinstance(h, search.Hit) for h in hits)
        assert hits[0].score >= hits[1].score >= hits[2].score
        only_part0 = search.SearchFilters(path_prefix=str(docs / "part0.txt"))
        assert {Path(h.path).name for h in search.search("x", 5, only_part0)} == {
            "part0.txt"
        }
    finally:
        retrieval.close_default()


def test_jobs_lists_runs_and_failed_documents(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "jobdocs"
    folder.mkdir()
    (folder / "good.txt").write_text("A readable note about backups.", "utf-8")
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    assert run(["ingest", str(folder)], capsys)[0] == 1  # one file failed

    code, out, _ = run(["jobs"], capsys)
    assert code == 0
    assert "done" in out
    assert str(folder) in out
    assert "1 new" in out
    code, out, _ = run(["jobs", "--json"], capsys)
    jobs = json.loads(out)
    assert [j["status"] for j in jobs] == ["done"]
    assert jobs[0]["summary"]["failed"] == 1

    code, out, _ = run(["jobs", "--failed"], capsys)
    assert code == 0
    assert "bad.pdf" in out
    assert "good.txt" not in out
    code, out, _ = run(["jobs", "--status", "queued"], capsys)
    assert out.strip() == "no jobs"
    code, _, err = run(["jobs", "--limit", "0"], capsys)
    assert code == 1
    assert "--limit" in err
