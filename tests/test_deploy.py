"""Deployment as users run it: the Dockerfile and compose.yaml (web, workers, PostgreSQL, Redis) are
checked here without building or running anything — compose.yaml by docker-compose's own validator
(Debian's package, installed by .ci/services.sh), the Dockerfile by dockerfile-parse."""
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"


def compose_config(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is missing: `make test` installs Debian's package (.ci/services.sh)"
    return subprocess.run([exe, "-f", str(path), "config", "-q"], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(path.parent)})


def test_compose_file_is_valid_and_a_broken_one_is_not(tmp_path):
    r = compose_config(COMPOSE)
    assert r.returncode == 0, r.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("init: {condition", "inti: {condition"))
    r = compose_config(broken)
    assert r.returncode != 0 and "inti" in r.stderr  # the validator does catch a dangling reference


def test_compose_runs_web_workers_postgres_and_redis_wired_together():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"web", "worker", "postgres", "redis", "init"} <= set(services)
    for name in ("web", "worker", "init"):  # one image, the same store and queue
        env = services[name]["environment"]
        assert re.fullmatch(r"postgresql\+psycopg://galaxalign:.*@postgres:5432/galaxalign", env["GALAXALIGN_DATABASE_URL"])
        assert env["GALAXALIGN_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["volumes"] == ["workspace:/data"] and env["GALAXALIGN_WORKSPACE"].startswith("/data/")
    assert services["worker"]["command"] == ["galaxalign", "worker"] and services["worker"]["deploy"]["replicas"] >= 2
    assert services["init"]["command"] == ["galaxalign", "demo", "--starter", "job"]  # the workers train it
    # two web replicas behind nginx, sticky by address; the replicas trust the proxy's X-Forwarded-For
    assert services["web"]["deploy"]["replicas"] >= 2 and "ports" not in services["web"]
    assert services["web"]["environment"]["GALAXALIGN_TRUST_PROXY"] == "1"
    assert services["proxy"]["ports"] == ["8501:8501"] and services["proxy"]["image"].startswith("nginx:")
    mount = services["proxy"]["volumes"][0].split(":")
    conf = (ROOT / mount[0]).read_text()
    assert mount[1] == "/etc/nginx/nginx.conf" and "ip_hash;" in conf and "server web:8501" in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf
    for name in ("web", "postgres", "redis", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    assert "_stcore/health" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_dockerfile_builds_from_an_official_debian_image_and_runs_as_a_user():
    from dockerfile_parse import DockerfileParser

    d = DockerfileParser(path=str(ROOT / "Dockerfile"))
    assert re.fullmatch(r"python:3\.1[1-3]-slim-bookworm", d.baseimage)
    steps = [(i["instruction"], i["value"]) for i in d.structure if i["instruction"] != "COMMENT"]
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    installs = " ".join(v for k, v in steps if k == "RUN")
    extras = set(re.search(r"pip install -e '\.\[([a-z,]+)\]'", installs).group(1).split(","))
    assert extras <= set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert "psycopg" in str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["server"])
    for k, v in steps:
        if k == "COPY":
            for src in v.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    assert any(k == "HEALTHCHECK" and "_stcore/health" in v for k, v in steps)
    assert steps[-1][0] == "CMD" and "app/streamlit_app.py" in steps[-1][1]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored) and any(p.startswith("workspace") for p in ignored)


def test_production_streamlit_config_hides_the_developer_toolbar():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["toolbarMode"] == "viewer"
    assert cfg["browser"]["gatherUsageStats"] is False
