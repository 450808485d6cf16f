"""The deploy files (Dockerfile, deploy/compose.yaml, deploy/haproxy.cfg, deploy/k8s/, deploy/grafana/)
kept honest without docker or a cluster: they parse, every OMNIROUTER_* variable they set is a setting,
every probe path is served, every command line is a real CLI command, the stop timings agree with
shutdown_timeout, and the Grafana dashboard queries metrics GET /metrics exports."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from starlette.routing import Match

from omnirouter.app import create_app
from omnirouter.cli import main
from omnirouter.settings import CONFIG_ENV, Settings
from omnirouter.shutdown import CUT_GRACE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# Variables the program reads that are not Settings fields.
NOT_SETTINGS = {CONFIG_ENV, "OMNIROUTER_PIN_WORKERS"}


def _k8s() -> dict[str, dict[str, Any]]:
    """Every manifest, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc:
                assert doc["kind"] not in found, f"two {doc['kind']}s"
                found[doc["kind"]] = doc
    return found


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    lines = _dockerfile()
    last_from = max(i for i, (word, _) in enumerate(lines) if word == "FROM")
    return lines[last_from:]


def _exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def _duration(value: str) -> float:
    """A Compose duration ("45s", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(h|m|s)", value))


def _served(path: str) -> bool:
    app = create_app(Settings())
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.starlette.routes)


def _is_command(args: list[str]) -> bool:
    """Whether `omnirouter <args>` names a command with options it has (its --help answers)."""
    result = CliRunner().invoke(main, [*args, "--help"])
    return result.exit_code == 0


def _instances(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("command") == ["serve"]}


def _environment(*blocks: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    for block in blocks:
        if isinstance(block, dict):
            env.update({str(k): str(v) for k, v in block.items()})
        elif isinstance(block, list):  # Kubernetes' [{name, value}] or Compose's ["NAME=value"]
            for item in block:
                if isinstance(item, dict):
                    env[item["name"]] = str(item.get("value", ""))
                else:
                    name, _, value = item.partition("=")
                    env[name] = value
    return env


def _assert_settings(env: dict[str, str], where: str) -> None:
    fields = set(Settings.model_fields)
    for name in env:
        if name.startswith("OMNIROUTER_") and name not in NOT_SETTINGS:
            assert name.removeprefix("OMNIROUTER_").lower() in fields, f"{where}: {name} is not a setting"


# -- the image


def test_the_dockerfile_runs_as_a_user_with_a_health_check_on_liveness():
    final = _final_stage()
    words = [word for word, _ in final]
    assert final[0][1].startswith("python:") and "slim" in final[0][1]
    users = [args for word, args in final if word == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")  # nothing runs as root after
    healthcheck = next(args for word, args in final if word == "HEALTHCHECK")
    assert "/health/live" in healthcheck and _served("/health/live")
    env = dict(item.split("=", 1) for word, args in final if word == "ENV" for item in shlex.split(args))
    _assert_settings(env, "Dockerfile")
    assert env["OMNIROUTER_HOST"] == "0.0.0.0"
    exposed = [args for word, args in final if word == "EXPOSE"]
    assert exposed == [env["OMNIROUTER_PORT"]]
    assert [args for word, args in final if word == "VOLUME"] == [env["OMNIROUTER_DATA_DIR"]]
    entrypoint = _exec_form(next(args for word, args in final if word == "ENTRYPOINT"))
    cmd = _exec_form(next(args for word, args in final if word == "CMD"))
    assert entrypoint == ["omnirouter"] and _is_command(cmd)


def test_the_build_context_holds_what_the_build_copies():
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert ignore[0] == "*"  # an allowlist: no .venv, .git, data directories or tests in the context
    for word, args in _dockerfile():
        if word == "COPY" and "--from" not in args:
            for source in shlex.split(args)[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source}: left out by .dockerignore"


# -- Compose


def test_compose_runs_the_migration_once_then_three_instances_behind_the_balancer():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "loadbalancer"} <= set(services)
    assert _is_command(services["migrate"]["command"])
    instances = _instances(compose)
    assert len(instances) == 3
    for name, s in instances.items():
        assert _is_command(s["command"])
        assert s["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        env = _environment(s["environment"])
        _assert_settings(env, f"compose {name}")
        assert env["OMNIROUTER_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["OMNIROUTER_REDIS_URL"].startswith("redis://")
        # Docker sends SIGKILL after stop_grace_period: not before the instance could finish.
        bound = float(env["OMNIROUTER_SHUTDOWN_TIMEOUT"]) + CUT_GRACE_SECONDS
        assert _duration(s["stop_grace_period"]) > bound, name
    _assert_settings(_environment(services["migrate"]["environment"]), "compose migrate")

    # The balancer knows the same instances and probes their readiness.
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s*server\s+(\S+)\s+(\S+):(\d+)", cfg, re.M)
    assert {host for _, host, _ in servers} == set(instances)
    port = _environment(next(iter(instances.values()))["environment"]).get("OMNIROUTER_PORT", "8000")
    assert {p for _, _, p in servers} == {port}
    probe = re.search(r"option httpchk GET (\S+)", cfg)
    assert probe and probe[1] == "/health/ready" and _served(probe[1])
    balancer = services["loadbalancer"]
    assert any(v.startswith("./haproxy.cfg:") for v in balancer["volumes"])


# -- Kubernetes


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return _k8s()


def test_kubernetes_has_every_piece(manifests):
    assert {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret", "Job",
    } <= set(manifests)  # fmt: skip
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    deployment = manifests["Deployment"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert manifests["Service"]["spec"]["selector"] == selector
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2  # the PDB's one at a time leaves some


def test_kubernetes_settings_and_secrets_are_settings(manifests):
    _assert_settings(manifests["ConfigMap"]["data"], "ConfigMap")
    secret = manifests["Secret"]["stringData"]
    _assert_settings(secret, "Secret")
    assert {"OMNIROUTER_MANAGEMENT_KEY", "OMNIROUTER_DATABASE_URL", "OMNIROUTER_REDIS_URL"} <= set(secret)
    assert "OMNIROUTER_MANAGEMENT_KEY" not in manifests["ConfigMap"]["data"]  # a secret stays in the Secret
    for kind in ("Deployment", "Job"):
        for container in manifests[kind]["spec"]["template"]["spec"]["containers"]:
            _assert_settings(_environment(container.get("env", [])), kind)
            refs = {(next(iter(r)), next(iter(r.values()))["name"]) for r in container["envFrom"]}
            assert refs == {("configMapRef", manifests["ConfigMap"]["metadata"]["name"]),
                            ("secretRef", manifests["Secret"]["metadata"]["name"])}  # fmt: skip


def test_kubernetes_probes_commands_and_stop_timings_fit_the_app(manifests):
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert _served(container[probe]["httpGet"]["path"]), probe
    assert _is_command(container["args"])
    job = manifests["Job"]["spec"]["template"]["spec"]
    assert [c["args"] for c in job["containers"]] == [["migrate"]] and _is_command(["migrate"])
    assert pod["securityContext"]["runAsNonRoot"] is True and job["securityContext"]["runAsNonRoot"] is True

    config = manifests["ConfigMap"]["data"]
    ports = {p["containerPort"] for p in container["ports"]}
    assert ports == {int(config["OMNIROUTER_PORT"])}
    assert config["OMNIROUTER_HOST"] == "0.0.0.0"
    # SIGKILL comes terminationGracePeriodSeconds after the pod starts terminating: after preStop,
    # shutdown_timeout, and the grace for cut streams.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + float(config["OMNIROUTER_SHUTDOWN_TIMEOUT"]) + CUT_GRACE_SECONDS
    assert pod["terminationGracePeriodSeconds"] > needed


def _exported() -> dict[str, set[str]]:
    """Every sample name GET /metrics can export, with its labels (from the metrics it defines)."""
    from prometheus_client.metrics import MetricWrapperBase

    from omnirouter.observability.metrics import Metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in suffixes[metric._type]:
                names[metric._name + suffix] = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
    return names


def test_the_grafana_dashboard_queries_what_metrics_exports():
    dashboard = json.loads((DEPLOY / "grafana" / "omnirouter.json").read_text())
    exported = _exported()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\bomnirouter_[a-z_]+", expr))
        assert names, expr
        assert names <= exported.keys(), f"{expr}: {sorted(names - exported.keys())} not exported"
        used |= names
        labels = set().union(*(exported[n] for n in names))
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            grouped = {g.strip() for g in group.split(",")}
            assert grouped <= labels, f"{expr}: no label {sorted(grouped - labels)}"
    # Every metric family appears on some panel.
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported}
    assert families <= {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
