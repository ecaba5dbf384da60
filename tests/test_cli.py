"""The semsearch command line: commands, outputs and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_PASSAGES, TinyModelFactory

from search import Encoder
from search.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_lists_the_commands() -> None:
    script = Path(sys.executable).parent / "semsearch"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("models", "encode", "similar"):
        assert command in result.stdout


def test_models_lists_dimension_length_and_location(
    capsys: pytest.CaptureFixture[str], minilm_path: Path
) -> None:
    code, out, _ = run(["models", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["all-MiniLM-L6-v2"]["dimension"] == 384
    assert rows["all-MiniLM-L6-v2"]["max_seq_length"] == 256
    assert rows["all-MiniLM-L6-v2"]["location"] == str(minilm_path)
    assert "all-mpnet-base-v2" in rows

    code, out, _ = run(["models"], capsys)
    assert code == 0
    assert out.splitlines()[0].split()[:2] == ["MODEL", "DIM"]


def test_encode_writes_npy_and_json_lines(
    tiny_model: TinyModelFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tiny_model()
    lines = SAMPLE_PASSAGES.read_text(encoding="utf-8").splitlines()[:5]
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = Encoder(folder).encode(lines)

    code, _, _ = run(
        ["encode", "-m", str(folder), "-f", str(source), "-o", str(tmp_path / "e.npy")],
        capsys,
    )
    assert code == 0
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), expected, atol=1e-6)

    code, out, _ = run(["encode", "-m", str(folder), "-f", str(source)], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["text"] for r in rows] == lines
    np.testing.assert_allclose([r["embedding"] for r in rows], expected, atol=1e-6)


def test_encode_reads_standard_input(
    tiny_model: TinyModelFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("first\nsecond\n"))
    code, out, _ = run(["encode", "-m", str(tiny_model())], capsys)
    assert code == 0
    assert [json.loads(line)["text"] for line in out.splitlines()] == [
        "first",
        "second",
    ]


@pytest.mark.model
def test_similar_finds_the_passage_about_the_query(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        [
            "similar",
            "why does bread rise",
            "-f",
            str(SAMPLE_PASSAGES),
            "-k",
            "3",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    hits = json.loads(out)
    assert len(hits) == 3
    assert hits[0]["text"].startswith("Bread rises")
    assert hits[0]["line"] == 14
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["encode", "-f", "/no/such/file.txt"],
            "/no/such/file.txt: No such file or directory",
        ),
        (
            ["encode", "-m", "nonsense", "-f", str(SAMPLE_PASSAGES)],
            "unknown model 'nonsense'",
        ),
        (
            ["encode", "-f", str(SAMPLE_PASSAGES), "-o", "out.csv"],
            "cannot tell the format",
        ),
        (
            ["similar", "q", "-f", str(SAMPLE_PASSAGES), "-k", "0"],
            "--top-k must be at least 1",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("semsearch: error: ")
    assert message in err
    assert "Traceback" not in err


def test_non_utf8_input_is_refused_clearly(
    tmp_path: Path, tiny_model: TinyModelFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes("caf\xe9\n".encode("latin-1"))
    code, _, err = run(["encode", "-m", str(tiny_model()), "-f", str(source)], capsys)
    assert code == 1
    assert "is not UTF-8 text" in err


def test_empty_input_to_similar_is_refused(
    tmp_path: Path, tiny_model: TinyModelFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "empty.txt"
    source.write_text("\n\n", encoding="utf-8")
    code, _, err = run(
        ["similar", "q", "-m", str(tiny_model()), "-f", str(source)], capsys
    )
    assert code == 1
    assert "the input is empty" in err


def test_unexpected_errors_are_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli import models

    def broken(*_: object) -> int:
        raise RuntimeError("disk on fire")

    # main() builds its parser per call, so it binds the patched handler.
    monkeypatch.setattr(models, "run", broken)
    code, _, err = run(["models"], capsys)
    assert code == 1
    assert "unexpected RuntimeError: disk on fire" in err


def test_ui_command_serves_the_app_on_localhost_by_default() -> None:
    from search.cli.main import build_parser
    from search.cli.ui import app_script, streamlit_command

    args = build_parser().parse_args(["ui", "--port", "8600"])
    command = streamlit_command(args)

    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4] == str(app_script())
    assert app_script().is_file()
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--server.address") + 1] == "localhost"
    assert command[command.index("--client.showErrorDetails") + 1] == "none"


def test_ui_command_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    from search.cli.main import main

    assert main(["ui", "--port", "70000"]) == 2
    assert "not a port number" in capsys.readouterr().err


def test_a_reader_that_goes_away_stops_the_command_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`semsearch jobs | head -1`: no error line when the pipe closes."""
    import search.cli.models as models_command

    def closed_pipe(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(models_command, "run", closed_pipe)
    assert main(["models"]) == 141
    assert "error" not in capsys.readouterr().err


def test_ui_with_oidc_needs_the_auth_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli.ui import oidc_configured

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SEMSEARCH_AUTH", "oidc")
    assert main(["ui", "--port", "8600"]) == 1
    assert "[auth]" in capsys.readouterr().err

    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[auth]\nclient_id = "semsearch"\n', encoding="utf-8")
    assert oidc_configured()
