"""The command line with Qdrant or PostgreSQL down: which one, where, exit 1.

A server that is down is a local port nothing listens on. The messages must
name the server and its address, and hold no user, password or API key.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TinyModelFactory
from sqlalchemy.orm import Session

from search.app import App
from search.catalog.models import Job, JobStatus
from search.cli.main import main
from search.settings import Settings

SECRETS = ("alice", "hunter2", "s3cret-key")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(
    tmp_path: Path, tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    monkeypatch.setenv("SEMSEARCH_RETRY_BACKOFF_S", "0")
    monkeypatch.setenv("SEMSEARCH_RETRY_ATTEMPTS", "2")
    return tmp_path / "data"


@pytest.fixture
def qdrant_down(env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    port = closed_port()
    monkeypatch.setenv("QDRANT_URL", f"http://alice:hunter2@127.0.0.1:{port}")
    monkeypatch.setenv("QDRANT_API_KEY", "s3cret-key")
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def postgres_down(env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    port = closed_port()
    url = f"postgresql://alice:hunter2@127.0.0.1:{port}/semsearch"
    monkeypatch.setenv("DATABASE_URL", url)
    return f"PostgreSQL at 127.0.0.1:{port}/semsearch"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "note.txt").write_text("Back up the share every night.", "utf-8")
    return folder


def failure(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a command that must fail with exit code 1."""
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    for secret in SECRETS:
        assert secret not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("semsearch: error: ")
    return last


# qdrant-client warns of an API key sent over plain http; that is its business.
insecure_key = pytest.mark.filterwarnings(
    "ignore:Api key is used with an insecure connection"
)


@insecure_key
@pytest.mark.parametrize(
    "argv", [["search", "backups"], ["status"]], ids=["search", "status"]
)
def test_qdrant_down_is_named_with_its_address(
    qdrant_down: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    line = failure(argv, capsys)
    assert "Qdrant is unavailable" in line
    assert f"cannot reach {qdrant_down}" in line


@insecure_key
def test_ingest_with_qdrant_down_queues_the_job_to_resume(
    qdrant_down: str,
    env: Path,
    docs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = failure(["ingest", str(docs)], capsys)
    assert f"Qdrant is unavailable: cannot reach {qdrant_down}" in line
    assert "job 1 is queued again" in line
    assert "rerun `semsearch ingest` or start `semsearch worker`" in line

    # `semsearch jobs` needs no Qdrant; it shows the attempt and the reason.
    assert main(["jobs"]) == 0
    out, _ = capsys.readouterr()
    assert "queued" in out
    assert "1/2" in out
    assert qdrant_down in out

    # Back (here: the embedded store instead), the same command resumes it.
    monkeypatch.delenv("QDRANT_URL")
    monkeypatch.delenv("QDRANT_API_KEY")
    assert main(["ingest", str(docs)]) == 0
    app = App(Settings())
    try:
        with Session(app.engine) as session:
            job = session.get(Job, 1)
            assert job is not None
            assert (job.status, job.attempts) == (JobStatus.DONE, 2)
            assert session.get(Job, 2) is None
    finally:
        app.close()


@pytest.mark.parametrize(
    "argv",
    [["search", "backups"], ["status"], ["jobs"], ["ingest", "DOCS"]],
    ids=["search", "status", "jobs", "ingest"],
)
def test_postgres_down_is_named_with_its_address(
    postgres_down: str,
    docs: Path,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [str(docs) if a == "DOCS" else a for a in argv]
    line = failure(argv, capsys)
    assert f"{postgres_down} is unreachable" in line


def test_the_console_script_says_it_in_one_line(postgres_down: str, docs: Path) -> None:
    script = Path(sys.executable).parent / "semsearch"
    result = subprocess.run(
        [str(script), "status"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"{postgres_down} is unreachable" in result.stderr
    for secret in SECRETS:
        assert secret not in result.stderr
