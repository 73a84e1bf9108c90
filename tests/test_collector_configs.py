"""collector/ and docker-compose.yml, checked with the collector distribution they describe.

Every config is validated by the otelcol-otel-sentry binary that collector/build.sh builds from
collector/manifest.yaml (a cold build takes minutes, then the cached binary is reused). No Docker
engine is needed: the compose file's structure is checked here and every config it mounts is
validated with the environment compose gives it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from tests.support.collector import (
    COLLECTOR_DIR,
    ROOT,
    Collector,
    CollectorUnavailable,
    collector_binary,
    validate,
)

# a cold collector build (the first test to need it) takes minutes
pytestmark = pytest.mark.timeout(2000)
MANIFEST = COLLECTOR_DIR / "manifest.yaml"
COMPOSE = ROOT / "docker-compose.yml"
CONFIGS = [
    ("agent.yaml",),
    ("gateway.yaml",),
    ("gateway.yaml", "gateway-sentry.yaml"),
    ("single.yaml",),
    ("single.yaml", "gateway-sentry.yaml"),
]
SENTRY_ENV = {
    "SENTRY_OTLP_TRACES_ENDPOINT": "https://o1.ingest.sentry.io/api/2/integration/otlp/v1/traces",
    "SENTRY_OTLP_AUTH": "sentry sentry_key=abc",
}


def _load(path: Path) -> Dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return collector_binary()
    except CollectorUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("configs", CONFIGS, ids=lambda c: "+".join(c))
def test_every_config_validates_with_the_built_distribution(binary: Path, configs: tuple[str, ...]) -> None:
    done = validate([COLLECTOR_DIR / c for c in configs], SENTRY_ENV)
    assert done.returncode == 0, done.stderr
    # renamed component types are used, so no deprecation warning either
    assert "deprecated" not in done.stderr.lower(), done.stderr


@pytest.mark.parametrize("configs", CONFIGS, ids=lambda c: "+".join(c))
def test_every_config_starts_and_is_healthy(binary: Path, configs: tuple[str, ...]) -> None:
    """``validate`` does not build tail-sampling policies or parse OTTL conditions: only a start
    does (a misspelt policy type validates, then fails at start; see the next test)."""
    env = {
        **SENTRY_ENV,
        "OTEL_SENTRY_GATEWAYS": "[127.0.0.1:1]",
        "OTEL_SENTRY_BACKEND_ENDPOINT": "http://127.0.0.1:1",
    }
    with Collector([COLLECTOR_DIR / c for c in configs], env, name="+".join(configs)) as collector:
        logged = collector.output()
    # startup problems are logged at level error or warn (unreachable backends are gRPC info logs)
    problems = [
        line
        for line in logged.splitlines()
        if ("\terror\t" in line or "\twarn\t" in line) and "grpc_log" not in line
    ]
    assert not problems, problems


def test_config_errors_are_caught(binary: Path, tmp_path: Path) -> None:
    """The checks above can fail: a misspelt component fails validation, a misspelt policy type
    validates but fails at start."""
    gateway = (COLLECTOR_DIR / "gateway.yaml").read_text()
    (tmp_path / "component.yaml").write_text(
        gateway.replace("[memory_limiter, tail_sampling]", "[memory_limiter, tail_samplin]")
    )
    assert validate([tmp_path / "component.yaml"]).returncode != 0
    (tmp_path / "policy.yaml").write_text(gateway.replace("type: status_code\n", "type: status_codes\n"))
    assert validate([tmp_path / "policy.yaml"]).returncode == 0
    with pytest.raises(RuntimeError, match="unknown sampling policy type status_codes"):
        Collector([tmp_path / "policy.yaml"], {"OTEL_SENTRY_BACKEND_ENDPOINT": "http://127.0.0.1:1"}).start()


def test_the_distribution_has_every_component_of_the_manifest(binary: Path) -> None:
    out = subprocess.run([str(binary), "components"], capture_output=True, text=True, timeout=60, check=True)
    listed = yaml.safe_load(out.stdout)
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    names = {kind: {c["name"] for c in listed.get(kind) or []} for kind in kinds}
    assert {"otlp"} <= names["receivers"]
    assert {"memory_limiter", "batch", "tail_sampling", "filter"} <= names["processors"]
    assert {"otlp_grpc", "otlp_http", "debug", "file", "load_balancing", "sentry"} <= names["exporters"]
    assert {"health_check"} <= names["extensions"]
    assert {"forward"} <= names["connectors"]


def test_manifest_versions_are_one_set() -> None:
    """Core and contrib modules share the builder's v0.N.0; confmap providers the paired v1.M.0:
    mismatched versions are the usual build failure."""
    manifest = _load(MANIFEST)
    builder = re.search(r'BUILDER_VERSION="(v[0-9.]+)"', (COLLECTOR_DIR / "build.sh").read_text())
    assert builder is not None
    modules = [
        m["gomod"]
        for kind in ("receivers", "processors", "exporters", "connectors", "extensions")
        for m in manifest[kind]
    ]
    assert {m.split()[1] for m in modules} == {builder.group(1)}
    assert {m["gomod"].split()[1] for m in manifest["providers"]} == {"v1.67.0"}


def test_single_collector_samples_like_the_gateway() -> None:
    gateway = _load(COLLECTOR_DIR / "gateway.yaml")["processors"]["tail_sampling"]
    single = _load(COLLECTOR_DIR / "single.yaml")["processors"]["tail_sampling"]
    assert single == gateway


def test_listeners_default_to_every_interface() -> None:
    """Containers need 0.0.0.0 (the collector's own default is localhost)."""
    for name in ("agent.yaml", "gateway.yaml", "single.yaml"):
        config = _load(COLLECTOR_DIR / name)
        endpoints = [p["endpoint"] for p in config["receivers"]["otlp"]["protocols"].values()]
        endpoints.append(config["extensions"]["health_check"]["endpoint"])
        assert all(":-0.0.0.0:" in e for e in endpoints), (name, endpoints)


# ---- docker-compose.yml ---------------------------------------------------------------------


def _compose() -> Dict[str, Any]:
    return _load(COMPOSE)


def _mounted_configs(service: Dict[str, Any]) -> List[Path]:
    paths = []
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0]
        if source.endswith(".yaml"):
            paths.append((ROOT / source).resolve())
    return paths


def test_compose_wires_the_whole_stack() -> None:
    services = _compose()["services"]
    assert set(services) == {"app", "agent", "gateway", "jaeger", "spotlight"}
    app_env = services["app"]["environment"]
    assert app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://agent:4318"
    assert app_env["SENTRY_SPOTLIGHT"].startswith("http://spotlight:8969/")
    assert services["agent"]["environment"]["OTEL_SENTRY_GATEWAYS"] == "[gateway:4317]"
    assert services["gateway"]["environment"]["OTEL_SENTRY_BACKEND_ENDPOINT"] == "http://jaeger:4318"
    assert "16686:16686" in services["jaeger"]["ports"]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert how == {"condition": "service_healthy"}, name
            assert "healthcheck" in services[dependency], dependency


def test_compose_images_are_pinned_and_healthchecks_need_no_shell() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: image {image!r} is not pinned to a version"
        test = service["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] == "CMD", f"{name}: healthcheck must be exec form"
        assert test[1] not in ("sh", "/bin/sh", "bash", "/bin/bash"), name
    for dockerfile in (COLLECTOR_DIR / "Dockerfile", COLLECTOR_DIR / "demo-app.Dockerfile"):
        for image in re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile.read_text(), re.M):
            assert re.search(r":\d+\.\d+\.\d+", image), (dockerfile.name, image)
    # the collector image gets the healthcheck's wget from busybox, pinned, and the same builder
    collector_dockerfile = (COLLECTOR_DIR / "Dockerfile").read_text()
    assert "busybox:" in collector_dockerfile
    assert "builder@v0.161.0" in collector_dockerfile


@pytest.mark.parametrize("service", ["agent", "gateway"])
def test_every_config_compose_mounts_validates_with_its_environment(binary: Path, service: str) -> None:
    spec = _compose()["services"][service]
    configs = _mounted_configs(spec)
    assert configs and all(c.exists() for c in configs)
    command_configs = [a.split("=", 1)[1] for a in spec["command"] if a.startswith("--config=")]
    assert [Path(c).name for c in command_configs] == [c.name for c in configs]
    done = validate(configs, {k: str(v) for k, v in spec.get("environment", {}).items()})
    assert done.returncode == 0, done.stderr
