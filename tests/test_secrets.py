"""Secrets never reach output or logs, even when the servers are down.

The catalog's password (DATABASE_URL) and Qdrant's API key are set, both
servers point at a port nothing listens on, and each command must fail with
one line naming the server, at the most verbose log level, without showing
either secret: in stdout, stderr, log records (tracebacks included) or
warnings. The CLI runs in-process (caplog sees every record) and as a real
``semsearch -vv`` process (its own logging set-up, on stderr).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import TinyModelFactory

from search.cli.main import main
from search.errors import InvalidInputError
from search.settings import load_settings

PASSWORD = "S3cretPW"
API_KEY = "K3yS3cret"
SECRETS = (PASSWORD, API_KEY)
DATABASE_URL = f"postgresql://user:{PASSWORD}@127.0.0.1:1/db"
QDRANT_URL = "http://127.0.0.1:1"

COMMANDS = {
    "status": ["status"],
    "search": ["search", "hello"],
    "ingest": ["ingest", "{folder}"],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("hello there, a short note\n", encoding="utf-8")
    return docs


@pytest.fixture
def servers_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model: TinyModelFactory
) -> None:
    """Secrets set, both servers unreachable, one quick try at each."""
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("QDRANT_URL", QDRANT_URL)
    monkeypatch.setenv("QDRANT_API_KEY", API_KEY)
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    monkeypatch.setenv("SEMSEARCH_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("SEMSEARCH_RETRY_BACKOFF_S", "0")
    # main() sets these when absent; set here, the test's end restores them.
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")


def _argv(command: str, folder: Path) -> list[str]:
    return [arg.format(folder=folder) for arg in COMMANDS[command]]


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in {where}:\n{text}"


def assert_names_a_server(stderr: str) -> None:
    """One error line, naming the catalog or the store it could not reach."""
    errors = [line for line in stderr.splitlines() if line.startswith("semsearch:")]
    assert len(errors) == 1, stderr
    assert "127.0.0.1:1" in errors[0], errors[0]
    assert "PostgreSQL" in errors[0] or "Qdrant" in errors[0], errors[0]


@pytest.mark.usefixtures("servers_down")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_in_process_output_and_logs_hold_no_secret(
    command: str,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["-vv", *_argv(command, folder)])
    out, err = capsys.readouterr()

    assert code == 1
    assert_names_a_server(err)
    assert_no_secret("stdout", out)
    assert_no_secret("stderr", err)
    for record in caplog.records:
        assert_no_secret(f"log record {record.name}", record.getMessage())
    assert_no_secret("the log with tracebacks", caplog.text)
    for warning in caught:
        assert_no_secret("a warning", str(warning.message))


@pytest.mark.usefixtures("servers_down")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_semsearch_process_shows_no_secret(
    command: str, folder: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "search.cli.main", "-vv", *_argv(command, folder)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert_names_a_server(result.stderr)
    assert_no_secret("stdout", result.stdout)
    assert_no_secret("stderr", result.stderr)


@pytest.mark.usefixtures("servers_down")
def test_credentials_in_qdrant_url_are_not_shown(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A proxy in front of Qdrant may take a user and password in the URL.
    monkeypatch.setenv("QDRANT_URL", f"http://admin:{PASSWORD}@127.0.0.1:1")
    monkeypatch.delenv("DATABASE_URL")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["-vv", "status"])
    out, err = capsys.readouterr()

    assert code == 1
    assert "Qdrant" in err
    assert "127.0.0.1:1" in err
    for where, text in [("stdout", out), ("stderr", err), ("logs", caplog.text)]:
        assert_no_secret(where, text)
    for warning in caught:
        assert_no_secret("a warning", str(warning.message))


@pytest.mark.usefixtures("servers_down")
def test_settings_repr_str_json_and_logs_mask_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from_env = load_settings()
    from_arguments = load_settings(
        database_url=DATABASE_URL,
        qdrant_url=f"http://admin:{PASSWORD}@127.0.0.1:1",
        qdrant_api_key=API_KEY,
    )
    logger = logging.getLogger("tests.secrets")
    caplog.set_level(logging.DEBUG)
    for settings in (from_env, from_arguments):
        assert settings.database_url is not None
        assert settings.database_url.get_secret_value() == DATABASE_URL
        shown = {
            "repr": repr(settings),
            "str": str(settings),
            "json": settings.model_dump_json(),
            "catalog_url_safe": settings.catalog_url_safe,
            "qdrant_url_safe": str(settings.qdrant_url_safe),
        }
        for where, text in shown.items():
            assert_no_secret(where, text)
        assert "**********" in shown["repr"]
        assert "127.0.0.1:1" in shown["catalog_url_safe"]
        logger.info("settings: %s", settings)
        logger.info("settings: %r", settings)
        logger.info("as dict: %s", settings.model_dump(mode="json"))
    assert len(caplog.records) == 6
    assert_no_secret("the log", caplog.text)


@pytest.mark.usefixtures("servers_down")
def test_invalid_settings_name_the_variable_not_the_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEMSEARCH_CHUNK_TOKENS", "lots")
    with pytest.raises(InvalidInputError) as caught:
        load_settings()
    assert "SEMSEARCH_CHUNK_TOKENS" in str(caught.value)
    assert_no_secret("the error", str(caught.value))
