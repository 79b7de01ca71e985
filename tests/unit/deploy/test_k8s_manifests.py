"""Invariants of the Kubernetes base in ``deploy/k8s`` that would otherwise fail only in a
cluster: a setting a service never reads, a probe on a port nobody listens on, a KEDA
trigger on a consumer that does not exist, a selector that selects nothing, a network
policy that lets job code reach the database.

The manifests are read as YAML (every document of every file the kustomization lists);
the settings classes, subjects and console scripts are read from the code, so a rename
on either side fails here. Where ``kubectl`` is installed (it carries kustomize), the
base is also built the way ``kubectl apply -k`` builds it.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from puras_billing.settings import BillingSettings
from puras_common.events.subjects import WORK_STREAM
from puras_common.settings import ServiceSettings
from puras_drive.settings import DriveSettings
from puras_gateway.settings import GatewaySettings, ProjectorSettings
from puras_runner.settings import RunnerSettings
from puras_scheduler.settings import SchedulerSettings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"

SERVICES: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "scheduler": SchedulerSettings,
    "runner": RunnerSettings,
    "billing": BillingSettings,
    "drive": DriveSettings,
}
"""Deployment name -> the settings class of the service it runs."""

PROCESSES: dict[str, tuple[str, type[ServiceSettings], str]] = {
    "gateway-projector": ("gateway", ProjectorSettings, "puras-gateway-projector"),
}
"""Deployments of a second process of a service -> (the service, whose identity, role and
Secret it uses; its settings class; its console script)."""

PURAS_IMAGE = "puras"
"""The image name the manifests use (kustomization ``images:`` points it at a registry)."""

# Files of deploy/k8s that are neither a listed resource nor a generator input.
NOT_RESOURCES = {"kustomization.yaml", "secrets/README.md", "secrets/.gitignore"}

# Address ranges a pod, Service or node of a cluster may have: a runner's egress to
# "the internet" must exclude every one of them.
PRIVATE_V4 = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
]
PRIVATE_V6 = ["fc00::/7", "fe80::/10", "::1/128"]


# -- loading -------------------------------------------------------------------------------


@functools.cache
def _kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


@functools.cache
def _docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is not None:
                out.append(doc)
    return out


def _namespace() -> str:
    ns = _kustomization()["namespace"]
    assert isinstance(ns, str)
    return ns


def _generator_files(entry: dict[str, Any]) -> dict[str, str]:
    """``key -> relative path`` of a generator's ``files`` (``key=path`` or ``path``)."""
    out = {}
    for spec in entry.get("files", []):
        key, _, path = spec.partition("=") if "=" in spec else (Path(spec).name, "", spec)
        out[key] = path
    return out


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=VALUE: {line!r}"
        out[key] = value
    return out


@functools.cache
def _configmaps() -> dict[str, dict[str, str]]:
    """Every ConfigMap the base defines: generated ones (by their base name) and literal ones."""
    out: dict[str, dict[str, str]] = {}
    for gen in _kustomization().get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env_file in gen.get("envs", []):
            data.update(_read_env_file(K8S / env_file))
        for key, path in _generator_files(gen).items():
            data[key] = (K8S / path).read_text()
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        out[gen["name"]] = data
    for doc in _docs():
        if doc["kind"] == "ConfigMap":
            out[doc["metadata"]["name"]] = dict(doc.get("data", {}))
    return out


def _secret_keys() -> dict[str, set[str]]:
    """Secret name -> its keys, from the secretGenerator (the values are the operator's)."""
    return {
        gen["name"]: set(_generator_files(gen))
        for gen in _kustomization().get("secretGenerator", [])
    }


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == kind}


def _workloads() -> dict[str, dict[str, Any]]:
    out = {}
    for d in _docs():
        if d["kind"] in ("Deployment", "StatefulSet"):
            out[f"{d['kind']}/{d['metadata']['name']}"] = d
    return out


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def _pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod_spec(workload)
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def _service_deployments() -> dict[str, dict[str, Any]]:
    """Deployments that run the Puras image, by name."""
    return {
        name: d
        for name, d in _by_kind("Deployment").items()
        if any(c["image"] == PURAS_IMAGE for c in _containers(d))
    }


def _service_container(service: str) -> dict[str, Any]:
    containers = _pod_spec(_service_deployments()[service])["containers"]
    assert len(containers) == 1, f"{service}: one container per service pod"
    container = containers[0]
    assert isinstance(container, dict)
    return container


def _settings_env_names(cls: type[ServiceSettings]) -> set[str]:
    """The variables a settings class reads: PURAS_<SERVICE>_<FIELD>, then PURAS_<FIELD>."""
    out = set()
    for field in cls.model_fields:
        out.add(f"PURAS_{cls.service.upper()}_{field.upper()}")
        out.add(f"PURAS_{field.upper()}")
    return out


def _secret_fields(cls: type[ServiceSettings]) -> set[str]:
    """Fields whose value is a credential: declared secrets, SecretStr, the database URL."""
    out = {"database_url", *cls.secret_fields}
    out.update(name for name, f in cls.model_fields.items() if f.annotation is SecretStr)
    return out


def _field_of(cls: type[ServiceSettings], env_name: str) -> str | None:
    for field in cls.model_fields:
        if env_name in (f"PURAS_{cls.service.upper()}_{field.upper()}", f"PURAS_{field.upper()}"):
            return field
    return None


def _container_env(container: dict[str, Any], pod_name: str = "pod-0") -> dict[str, str]:
    """The environment a container starts with, secrets replaced by realistic values."""
    env: dict[str, str] = {}
    configmaps = _configmaps()
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            key = ref["secretKeyRef"]["key"]
            if key == "database_url":
                env[var["name"]] = "postgresql://puras:5d1f0c2b@postgres:5432/puras"
            elif key in ("secrets_key", "secrets_previous_keys"):
                # A master key of project secrets is 32 bytes of base64 (secret_box).
                env[var["name"]] = "9aMTMEoy0m4Gi7N7ZPnYkXwY4mN2Ue9bTqf1l0bZ2qc="
            else:
                env[var["name"]] = f"k8s-test-{key}-7c9e4a13b2f8"
        elif "fieldRef" in ref:
            env[var["name"]] = pod_name
        else:
            cm_ref = ref["configMapKeyRef"]
            env[var["name"]] = configmaps[cm_ref["name"]][cm_ref["key"]]
    return env


def _load_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    """The service's settings, built from exactly the environment its container gets."""
    for name in list(os.environ):
        if name.upper().startswith("PURAS_"):
            monkeypatch.delenv(name)
    for name, value in _container_env(_service_container(service)).items():
        monkeypatch.setenv(name, value)
    if service in PROCESSES:
        return PROCESSES[service][1]()
    return SERVICES[service]()


@dataclass(frozen=True)
class Port:
    name: str | None
    number: int
    protocol: str


def _ports(container: dict[str, Any]) -> list[Port]:
    return [
        Port(p.get("name"), int(p["containerPort"]), p.get("protocol", "TCP"))
        for p in container.get("ports", [])
    ]


def _resolve_port(container: dict[str, Any], ref: int | str) -> Port | None:
    for port in _ports(container):
        if ref in (port.name, port.number):
            return port
    return None


def _probes(container: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if kind in container:
            yield kind, container[kind]


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _bytes(quantity: str) -> float:
    m = _QUANTITY.match(str(quantity))
    assert m, f"not a byte quantity: {quantity!r}"
    return float(m.group(1)) * _UNITS[m.group(2)]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    # Only matchLabels: the checks below evaluate selectors, and a selector they could not
    # evaluate would make them pass for the wrong reason.
    assert set(selector) <= {"matchLabels"}, f"use matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _nats_conf() -> str:
    return _configmaps()["nats-config"]["nats.conf"]


def _nats_conf_value(key: str) -> str:
    m = re.search(rf"^\s*{re.escape(key)}\s*:\s*(.+?)\s*$", _nats_conf(), re.MULTILINE)
    assert m, f"nats.conf has no {key}"
    return m.group(1).strip().strip('"')


def _nats_routes() -> list[str]:
    m = re.search(r"routes\s*:\s*\[(.*?)\]", _nats_conf(), re.DOTALL)
    assert m, "nats.conf has no cluster routes"
    return [ln.split("#")[0].strip() for ln in m.group(1).splitlines() if ln.split("#")[0].strip()]


def _nats() -> dict[str, Any]:
    return _by_kind("StatefulSet")["nats"]


# -- the kustomization ---------------------------------------------------------------------


def test_kustomization_lists_every_file_and_every_listed_file_exists() -> None:
    kust = _kustomization()
    resources = list(kust["resources"])
    for name in resources:
        assert (K8S / name).is_file(), f"kustomization lists {name}, which does not exist"
    generated_inputs: set[str] = set()
    for gen in kust.get("configMapGenerator", []):
        paths = [*gen.get("envs", []), *_generator_files(gen).values()]
        for path in paths:
            assert (K8S / path).is_file(), f"configMapGenerator {gen['name']}: no {path}"
        generated_inputs.update(paths)
    for gen in kust.get("secretGenerator", []):
        for path in _generator_files(gen).values():
            # Created by the operator, never in the repository (see the next test).
            assert path.startswith("secrets/"), f"secret file {path} outside secrets/"
            generated_inputs.add(path)
    on_disk = {
        p.relative_to(K8S).as_posix()
        for p in K8S.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    secret_values = {p for p in on_disk if p.startswith("secrets/")} - NOT_RESOURCES
    unlisted = on_disk - set(resources) - generated_inputs - NOT_RESOURCES - secret_values
    assert not unlisted, f"files under deploy/k8s that the kustomization does not use: {unlisted}"
    assert len(resources) == len(set(resources)), "a resource is listed twice"


def test_secrets_are_generated_from_git_ignored_files_only() -> None:
    kust = _kustomization()
    assert not [d for d in _docs() if d["kind"] == "Secret"], (
        "a Secret manifest carries its value in the repository; use secretGenerator files"
    )
    for gen in kust.get("secretGenerator", []):
        assert set(gen) <= {"name", "files", "type", "options"}, (
            f"secretGenerator {gen['name']}: only files (no literals/envs with values in git)"
        )
        assert gen.get("files"), f"secretGenerator {gen['name']} has no files"
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    for gen in kust["secretGenerator"]:
        for path in _generator_files(gen).values():
            ignored = subprocess.run(
                [git, "check-ignore", "--no-index", "-q", str(K8S / path)],
                cwd=ROOT,
                check=False,
            )
            assert ignored.returncode == 0, f"deploy/k8s/{path} is not git-ignored"
    for kept in ("secrets/README.md", "secrets/.gitignore"):
        assert (K8S / kept).is_file()
        kept_rc = subprocess.run(
            [git, "check-ignore", "--no-index", "-q", str(K8S / kept)], cwd=ROOT, check=False
        ).returncode
        assert kept_rc == 1, f"deploy/k8s/{kept} must be committed, but it is ignored"


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    return kubectl


def _build(kubectl: str, base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl, "kustomize", str(base)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _copy_base(tmp_path: Path) -> Path:
    base = tmp_path / "k8s"
    shutil.copytree(K8S, base, ignore=shutil.ignore_patterns(*_secret_file_names()))
    return base


def _secret_file_names() -> list[str]:
    return [
        Path(p).name
        for gen in _kustomization()["secretGenerator"]
        for p in _generator_files(gen).values()
    ]


def test_kustomize_refuses_to_build_without_the_operators_secret_files(tmp_path: Path) -> None:
    kubectl = _kubectl()
    result = _build(kubectl, _copy_base(tmp_path))
    assert result.returncode != 0, "the base builds with no secret files: a default leaked in"
    assert "secrets/" in result.stderr


def test_kustomize_build_resolves_every_reference(tmp_path: Path) -> None:
    kubectl = _kubectl()
    base = _copy_base(tmp_path)
    for gen in _kustomization()["secretGenerator"]:
        for key, path in _generator_files(gen).items():
            (base / path).write_text(f"value-of-{key}")
    result = _build(kubectl, base)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    ns = _namespace()
    names: dict[str, dict[str, Any]] = {}
    for d in rendered:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == ns, f"{d['kind']}/{d['metadata']['name']}"
        names[f"{d['kind']}/{d['metadata']['name']}"] = d
    kust = _kustomization()
    generated = len(kust.get("configMapGenerator", [])) + len(kust.get("secretGenerator", []))
    assert len(rendered) == len(_docs()) + generated

    def data_keys(kind: str, name: str) -> set[str]:
        obj = names.get(f"{kind}/{name}")
        assert obj is not None, f"reference to missing {kind}/{name}"
        return set(obj.get("data", {}))

    for d in rendered:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = _pod_spec(d)
        for c in _containers(d):
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    data_keys("ConfigMap", src["configMapRef"]["name"])
                if "secretRef" in src:
                    data_keys("Secret", src["secretRef"]["name"])
            for var in c.get("env", []):
                refs = (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef"))
                for kind, ref_name in refs:
                    ref = var.get("valueFrom", {}).get(ref_name)
                    if ref:
                        assert ref["key"] in data_keys(kind, ref["name"]), var["name"]
            if c["image"].split(":")[0].endswith(PURAS_IMAGE):
                assert ":" in c["image"], "the Puras image is rendered without a tag"
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                data_keys("ConfigMap", vol["configMap"]["name"])
            if "secret" in vol:
                data_keys("Secret", vol["secret"]["secretName"])
            if "persistentVolumeClaim" in vol:
                assert f"PersistentVolumeClaim/{vol['persistentVolumeClaim']['claimName']}" in names


# -- the services --------------------------------------------------------------------------


def test_one_deployment_per_service_runs_its_console_script() -> None:
    deployments = _service_deployments()
    assert set(deployments) == set(SERVICES) | set(PROCESSES)
    for name, (service, _cls, script) in PROCESSES.items():
        scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())[
            "project"
        ]["scripts"]
        assert script in scripts, f"services/{service} has no console script {script}"
        container = _service_container(name)
        assert container.get("command") == [script], f"{name} runs {container.get('command')}"
        assert not container.get("args"), f"{name}: the console script takes no arguments"
    for service in SERVICES:
        scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())[
            "project"
        ]["scripts"]
        script = f"puras-{service}"
        assert script in scripts, f"services/{service} has no console script {script}"
        container = _service_container(service)
        assert container.get("command") == [script], f"{service} runs {container.get('command')}"
        assert not container.get("args"), f"{service}: the console script takes no arguments"


def test_every_env_var_a_service_container_sets_is_a_settings_field() -> None:
    configmaps = _configmaps()
    for service, cls in SERVICES.items():
        allowed = _settings_env_names(cls)
        container = _service_container(service)
        names = {v["name"] for v in container.get("env", [])}
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, f"{service}: envFrom only from ConfigMaps"
            names |= set(configmaps[source["configMapRef"]["name"]])
        unknown = names - allowed
        assert not unknown, f"{service} sets variables {cls.__name__} never reads: {unknown}"


def test_secrets_only_come_from_secret_key_refs() -> None:
    secret_keys = _secret_keys()
    configmap_keys = {k for data in _configmaps().values() for k in data}
    for service, cls in SERVICES.items():
        secret = _secret_fields(cls)
        for key in configmap_keys:
            assert _field_of(cls, key) not in secret, f"credential {key} in a ConfigMap"
        for var in _service_container(service).get("env", []):
            if _field_of(cls, var["name"]) in secret:
                assert "secretKeyRef" in var.get("valueFrom", {}), (
                    f"{service}: {var['name']} is a credential; take it from a Secret"
                )
    for wname, workload in _workloads().items():
        for c in _containers(workload):
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL", var["name"]):
                    assert ref, f"{wname}: {var['name']} must come from a secretKeyRef"
                if ref:
                    assert ref["name"] in secret_keys, f"{wname}: no Secret {ref['name']}"
                    assert ref["key"] in secret_keys[ref["name"]], (
                        f"{wname}: Secret {ref['name']} has no key {ref['key']}"
                    )
            for source in c.get("envFrom", []):
                assert "secretRef" not in source, f"{wname}: envFrom secretRef imports every key"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_settings_load_from_the_containers_environment(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _load_settings(service, monkeypatch)
    assert settings.env == "prod"
    assert settings.log_format == "json"
    assert settings.stream_replicas == _nats()["spec"]["replicas"]
    container = _service_container(service)
    exposed = {p.number for p in _ports(container)}
    if isinstance(settings, GatewaySettings):
        # Probes and the Service reach the pod from outside; the default is loopback.
        assert settings.host == "0.0.0.0"  # noqa: S104
        assert settings.port in exposed
    else:
        assert settings.health_port in exposed, f"{service} serves health on no exposed port"


def test_probes_point_at_a_port_the_container_exposes() -> None:
    for wname, workload in _workloads().items():
        for c in _containers(workload):
            for kind, probe in _probes(c):
                action = probe.get("httpGet") or probe.get("tcpSocket")
                if action is None:
                    assert "exec" in probe, f"{wname}/{c['name']} {kind}: no action"
                    continue
                assert _resolve_port(c, action["port"]) is not None, (
                    f"{wname}/{c['name']} {kind} probes port {action['port']!r}, "
                    f"which the container does not expose"
                )


def test_service_probes_hit_the_port_and_paths_the_service_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for service in SERVICES:
        settings = _load_settings(service, monkeypatch)
        port = settings.port if isinstance(settings, GatewaySettings) else settings.health_port
        container = _service_container(service)
        want_paths = {
            "startupProbe": "/healthz",
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
        }
        for kind, path in want_paths.items():
            probe = container.get(kind)
            assert probe is not None, f"{service} has no {kind}"
            resolved = _resolve_port(container, probe["httpGet"]["port"])
            assert resolved is not None
            assert resolved.number == port, f"{service} {kind} on {resolved.number}, serves {port}"
            assert probe["httpGet"]["path"] == path, f"{service} {kind} path"


def _serves_health(service: str) -> bool:
    """Whether the service's code answers /healthz and /readyz where its probes look.

    A look at the source, not a run: starting a service needs NATS and Postgres."""
    package = importlib.import_module(f"puras_{service}")
    source = "\n".join(p.read_text() for p in Path(package.__file__ or "").parent.rglob("*.py"))
    if service == "gateway":
        return '"/healthz"' in source and '"/readyz"' in source
    return "HealthServer(" in source and "health_port" in source


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_with_health_probes_serves_health(service: str) -> None:
    assert _serves_health(service), f"puras-{service} is probed but serves no /healthz"


# -- KEDA ----------------------------------------------------------------------------------


def test_keda_scales_the_runners_on_their_work_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = _by_kind("ScaledObject")
    assert set(scaled) == {"runner"}
    spec = scaled["runner"]["spec"]
    assert spec["scaleTargetRef"]["name"] == "runner"
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert "runner" in _service_deployments()
    assert "replicas" not in _service_deployments()["runner"]["spec"], (
        "the runner's replicas belong to KEDA; kubectl apply would reset them"
    )
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 20)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "nats-jetstream"
    meta = trigger["metadata"]
    runner = _load_settings("runner", monkeypatch)
    assert isinstance(runner, RunnerSettings)
    assert meta["stream"] == WORK_STREAM
    assert meta["consumer"] == f"runners-{runner.pool}" == runner.durable
    # One runner per `slots` jobs waiting or running (see runner-keda.yaml).
    assert int(meta["lagThreshold"]) == runner.slots
    assert meta["account"] == "$G", "nats.conf defines no accounts: the global one"
    assert "accounts" not in _nats_conf()
    host, _, port = meta["natsServerMonitoringEndpoint"].rpartition(":")
    service, namespace = host.split(".")[:2]
    assert namespace == _namespace(), "KEDA runs in another namespace: name ours"
    nats_svc = _by_kind("Service")[service]
    assert _selects({"matchLabels": nats_svc["spec"]["selector"]}, _pod_labels(_nats()))
    assert int(port) in {p["port"] for p in nats_svc["spec"]["ports"]}
    assert int(port) == int(_nats_conf_value("http").rpartition(":")[2])


def test_scheduler_dispatches_to_the_pool_the_runners_pull(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = _load_settings("scheduler", monkeypatch)
    runner = _load_settings("runner", monkeypatch)
    assert isinstance(scheduler, SchedulerSettings)
    assert isinstance(runner, RunnerSettings)
    assert scheduler.pool == runner.pool


# -- NATS ----------------------------------------------------------------------------------


def test_nats_is_a_three_node_cluster_matching_the_stream_replicas() -> None:
    nats = _nats()
    replicas = nats["spec"]["replicas"]
    assert replicas == 3
    assert _configmaps()["puras-config"]["PURAS_STREAM_REPLICAS"] == "3"
    assert nats["spec"]["podManagementPolicy"] == "Parallel"
    headless = _by_kind("Service")[nats["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (container,) = _pod_spec(nats)["containers"]
    cluster_port = _resolve_port(container, "cluster")
    client_port = _resolve_port(container, "client")
    assert cluster_port is not None
    assert client_port is not None
    sts, governing = nats["metadata"]["name"], headless["metadata"]["name"]
    pods = [f"{sts}-{i}.{governing}" for i in range(replicas)]
    assert sorted(_nats_routes()) == [f"nats://{p}:{cluster_port.number}" for p in pods]
    assert int(_nats_conf_value("listen").rpartition(":")[2]) == client_port.number
    nats_url = _configmaps()["puras-config"]["PURAS_NATS_URL"]
    assert nats_url.split(",") == [f"nats://{p}:{client_port.number}" for p in pods]
    for svc_port in headless["spec"]["ports"]:
        assert _resolve_port(container, svc_port["targetPort"]) is not None


def test_nats_config_is_durable_and_matches_the_pod() -> None:
    assert _nats_conf_value("sync_interval") == "always"
    assert _nats_conf_value("max_payload") == "8MB"
    nats = _nats()
    (container,) = _pod_spec(nats)["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]}
    store_dir = _nats_conf_value("store_dir")
    data_mount = [name for name, path in mounts.items() if store_dir.startswith(path + "/")]
    assert data_mount, "store_dir is on no mounted volume"
    assert data_mount[0] in claims, "store_dir is not on the PersistentVolume"
    config_path = container["command"][container["command"].index("--config") + 1]
    config_volume = next(
        v
        for v in _pod_spec(nats)["volumes"]
        if v["name"] in mounts and config_path == f"{mounts[v['name']]}/nats.conf"
    )
    assert config_volume["configMap"]["name"] == "nats-config"
    pid_file = _nats_conf_value("pid_file")
    assert any(pid_file.startswith(path + "/") for path in mounts.values()), (
        "pid_file is not on a writable volume (the root filesystem is read-only)"
    )


def test_nats_server_accepts_the_config(tmp_path: Path) -> None:
    try:
        from puras_cli.infra.nats_server import nats_server_binary

        binary = nats_server_binary()
    except (ImportError, FileNotFoundError):
        pytest.skip("nats-server is not installed")
    conf = tmp_path / "nats.conf"
    conf.write_text(_nats_conf())
    # The environment the NATS pods get (passwords from their Secrets).
    env = _container_env(_pod_spec(_nats())["containers"][0], pod_name="nats-0")
    result = subprocess.run(
        [binary, "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr + result.stdout


# -- labels, selectors, disruption budgets -------------------------------------------------


def _matching_workloads(selector: dict[str, str]) -> list[str]:
    return [
        name
        for name, w in _workloads().items()
        if _selects({"matchLabels": selector}, _pod_labels(w))
    ]


def test_labels_and_selectors_match() -> None:
    services = _by_kind("Service")
    for name, w in _workloads().items():
        selector = w["spec"]["selector"]
        assert _selects(selector, _pod_labels(w)), f"{name}: selector does not select its pods"
        others = [n for n in _matching_workloads(selector["matchLabels"]) if n != name]
        assert not others, f"{name}'s selector also selects the pods of {others}"
        if w["kind"] == "StatefulSet":
            governing = services.get(w["spec"]["serviceName"])
            assert governing is not None, f"{name}: no Service {w['spec']['serviceName']}"
            assert governing["spec"].get("clusterIP") == "None", f"{name}: not headless"
            assert _matching_workloads(governing["spec"]["selector"]) == [name]
    for name, svc in services.items():
        matched = _matching_workloads(svc["spec"]["selector"])
        assert len(matched) == 1, f"Service {name} selects {matched}"
        containers = _containers(_workloads()[matched[0]])
        for port in svc["spec"]["ports"]:
            assert any(_resolve_port(c, port["targetPort"]) for c in containers), (
                f"Service {name} targets port {port['targetPort']!r}, exposed by no container"
            )
    for name, pdb in _by_kind("PodDisruptionBudget").items():
        matched = _matching_workloads(pdb["spec"]["selector"]["matchLabels"])
        assert len(matched) == 1, f"PodDisruptionBudget {name} selects {matched}"
    for name, policy in _by_kind("NetworkPolicy").items():
        selector = policy["spec"]["podSelector"]
        if selector:
            assert _matching_workloads(selector["matchLabels"]), f"NetworkPolicy {name}: no pods"
    assert _selects(
        {"matchLabels": _by_kind("Service")["gateway"]["spec"]["selector"]},
        _pod_labels(_service_deployments()["gateway"]),
    )


def test_gateway_and_nats_survive_voluntary_disruptions() -> None:
    pdbs = _by_kind("PodDisruptionBudget")
    gateway = _service_deployments()["gateway"]
    assert gateway["spec"]["replicas"] == 2
    gw_pdb = next(p for p in pdbs.values() if _selects(p["spec"]["selector"], _pod_labels(gateway)))
    assert 1 <= gw_pdb["spec"]["minAvailable"] < gateway["spec"]["replicas"]
    nats_labels = _pod_labels(_nats())
    nats_pdb = next(p for p in pdbs.values() if _selects(p["spec"]["selector"], nats_labels))
    # Quorum of an R3 stream is 2: never more than one node down on purpose.
    assert nats_pdb["spec"]["maxUnavailable"] == 1
    assert _service_deployments()["scheduler"]["spec"]["replicas"] == 2


def test_billing_is_replaced_not_surged() -> None:
    # One active ledger projector (advisory lock), readiness = that projector caught up: a
    # surged pod would never become ready and the rollout would hang.
    billing = _service_deployments()["billing"]
    assert billing["spec"]["replicas"] == 1
    assert billing["spec"]["strategy"]["type"] == "Recreate"


# -- pod security --------------------------------------------------------------------------


def _image_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    return int(users[-1].split(":")[0])


RUNNER_CAPABILITIES = {
    "SYS_ADMIN",
    "NET_ADMIN",
    "SETUID",
    "SETGID",
    "SETPCAP",
    "CHOWN",
    "FOWNER",
    "DAC_OVERRIDE",
    "KILL",
}
"""What the runner needs to build the job sandbox (docs/runner.md), and nothing more."""


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    ns = _by_kind("Namespace")[_namespace()]
    labels = ns["metadata"]["labels"]
    # Enforced "privileged" only so the runner can be admitted; every drift of another
    # pod is still warned about and audited, and tested here.
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    for name, w in _workloads().items():
        if name == "Deployment/runner":
            continue  # test_runner_holds_exactly_the_sandboxs_privileges
        pod = _pod_spec(w)
        assert pod.get("automountServiceAccountToken") is False, f"{name}: token mounted"
        assert pod.get("enableServiceLinks") is False, (
            f"{name}: service links inject <SERVICE>_PORT=tcp://... variables, which the "
            f"settings classes would read for a Service named puras-*"
        )
        for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(forbidden), f"{name}: {forbidden}"
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], f"{name}: hostPath"
        pod_sc = pod.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
        for c in _containers(w):
            sc = c.get("securityContext", {})
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", f"{name}/{c['name']}: seccomp"
            assert sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}"
            assert not sc.get("privileged"), f"{name}/{c['name']}: privileged"
            if c["image"] == PURAS_IMAGE:
                assert sc.get("readOnlyRootFilesystem") is True, f"{name}: writable root"
                assert pod_sc.get("runAsUser") == _image_uid(), f"{name}: not the image's user"


# -- the runner ----------------------------------------------------------------------------


def test_runner_holds_exactly_the_sandboxs_privileges() -> None:
    w = _service_deployments()["runner"]
    pod = _pod_spec(w)
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(forbidden), forbidden
    assert not [v for v in pod.get("volumes", []) if "hostPath" in v]
    assert pod.get("automountServiceAccountToken") is False
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsUser"] == 0
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    (c,) = _containers(w)
    sc = c["securityContext"]
    assert sc.get("privileged") is False
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == RUNNER_CAPABILITIES
    assert sc["appArmorProfile"]["type"] == "Unconfined"
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    assert env.get("PURAS_RUNNER_SANDBOX", "namespaces") == "namespaces"


def test_runner_has_room_and_time_for_its_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _load_settings("runner", monkeypatch)
    assert isinstance(runner, RunnerSettings)
    deployment = _service_deployments()["runner"]
    pod = _pod_spec(deployment)
    container = _service_container("runner")
    # SIGTERM -> jobs get shutdown_grace_s -> the rest is killed and handed back; the pod
    # must not be SIGKILLed before that, and a job under the default timeout must fit.
    assert runner.shutdown_grace_s >= runner.default_timeout_s
    assert pod["terminationGracePeriodSeconds"] >= runner.shutdown_grace_s + 10
    limits = container["resources"]["limits"]
    requests = container["resources"]["requests"]
    assert {"cpu", "memory"} <= set(limits)
    assert {"cpu", "memory"} <= set(requests)
    assert _bytes(limits["memory"]) >= runner.slots * runner.memory_limit_mb * 2**20, (
        "the memory limit does not cover `slots` jobs at their RLIMIT_AS"
    )
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[str(runner.data_dir)]], "data_dir is not an emptyDir"


def test_runners_and_drive_share_the_drive_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _load_settings("runner", monkeypatch)
    drive = _load_settings("drive", monkeypatch)
    assert isinstance(runner, RunnerSettings)
    assert isinstance(drive, DriveSettings)

    def claim_at(service: str, path: Path) -> str:
        pod = _pod_spec(_service_deployments()[service])
        mounts = {m["mountPath"]: m["name"] for m in _service_container(service)["volumeMounts"]}
        assert str(path) in mounts, f"{service}: nothing mounted at {path}"
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[str(path)])
        claim = volume["persistentVolumeClaim"]["claimName"]
        assert isinstance(claim, str)
        return claim

    claim = claim_at("drive", drive.root)
    assert claim_at("runner", runner.drive_root) == claim
    assert runner.drive_root == drive.root
    pvc = _by_kind("PersistentVolumeClaim")[claim]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "runners on many nodes mount it"


def test_runner_pods_hold_only_the_runners_nats_identity() -> None:
    # Jobs run user code in the runner's pod: nothing there may unlock anything else. The
    # runner's NATS password opens an identity that may publish job events only; the
    # secrets master key opens project secrets, which the runner gives each job of their
    # project (the sandbox keeps jobs out of the runner's environment).
    runner = _service_deployments()["runner"]
    refs = [
        (var["name"], var["valueFrom"]["secretKeyRef"])
        for c in _containers(runner)
        for var in c.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    ]
    assert sorted(refs, key=lambda r: r[0]) == [
        ("PURAS_RUNNER_NATS_PASSWORD", {"name": "puras-runner", "key": "nats_password"}),
        ("PURAS_RUNNER_SECRETS_KEY", {"name": "puras-runner", "key": "secrets_key"}),
        (
            "PURAS_RUNNER_SECRETS_PREVIOUS_KEYS",
            {"name": "puras-runner", "key": "secrets_previous_keys"},
        ),
    ]
    assert _secret_keys()["puras-runner"] == {
        "nats_password",
        "secrets_key",
        "secrets_previous_keys",
    }
    for volume in _pod_spec(runner).get("volumes", []):
        assert "secret" not in volume, volume["name"]
        assert "projected" not in volume, volume["name"]


# -- identities: NATS users and Postgres roles ---------------------------------------------


def _secret_refs(workload: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Env var -> (Secret, key) of every secretKeyRef of a workload's containers."""
    return {
        var["name"]: (
            var["valueFrom"]["secretKeyRef"]["name"],
            var["valueFrom"]["secretKeyRef"]["key"],
        )
        for c in _containers(workload)
        for var in c.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }


def test_the_nats_authorization_block_is_generated_from_the_permission_matrix() -> None:
    from puras_common.bus.permissions import render_k8s_authorization, replace_block

    text = (K8S / "nats" / "nats.conf").read_text()
    assert replace_block(text, render_k8s_authorization()) == text, (
        "deploy/k8s/nats/nats.conf is not current: run "
        "python -m puras_common.bus.permissions deploy/k8s/nats/nats.conf"
    )
    settings = [ln.split("#")[0] for ln in text.splitlines()]
    assert not [ln for ln in settings if "no_auth_user" in ln], "anonymous access must be refused"


def test_nats_pods_get_each_identitys_password_from_that_identitys_secret() -> None:
    from puras_common.bus.permissions import IDENTITIES, OPS, k8s_password_env

    refs = _secret_refs(_nats())
    referenced = set(re.findall(r"password:\s*\$(\w+)", _nats_conf()))
    assert referenced == {k8s_password_env(i) for i in IDENTITIES}
    for identity in IDENTITIES:
        secret = "puras-nats-ops" if identity == OPS else f"puras-{identity}"
        assert refs[k8s_password_env(identity)] == (secret, "nats_password"), identity


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_logs_in_to_nats_as_its_own_identity(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _load_settings(service, monkeypatch)
    creds = settings.nats_credentials()
    assert creds.user == service
    assert creds.password == "k8s-test-nats_password-7c9e4a13b2f8"
    assert _secret_refs(_service_deployments()[service])[
        f"PURAS_{service.upper()}_NATS_PASSWORD"
    ] == (f"puras-{service}", "nats_password")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_pod_references_only_its_own_secret(service: str) -> None:
    names = {secret for secret, _key in _secret_refs(_service_deployments()[service]).values()}
    assert names == {f"puras-{service}"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_only_services_with_tables_have_a_postgres_role(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from puras_common.db import DB_ROLES
    from puras_common.settings import DatabaseSettings

    settings = _load_settings(service, monkeypatch)
    refs = _secret_refs(_service_deployments()[service])
    if service in DB_ROLES:
        assert isinstance(settings, DatabaseSettings)
        assert refs[f"PURAS_{service.upper()}_DATABASE_PASSWORD"] == (
            f"puras-{service}",
            "database_password",
        )
        assert settings.database_password.get_secret_value()
    else:
        assert not isinstance(settings, DatabaseSettings)
        assert not [v for v in refs if "DATABASE" in v], refs


def test_postgres_creates_the_roles_with_the_generated_script() -> None:
    from puras_cli.infra.pg_roles import psql_script
    from puras_common.db import DB_ROLES

    assert (K8S / "postgres" / "roles.sql").read_text() == psql_script("puras"), (
        "deploy/k8s/postgres/roles.sql is not current: run "
        "python -m puras_cli.infra.pg_roles --write-k8s deploy/k8s/postgres/roles.sql"
    )
    script = (K8S / "postgres" / "10-puras-roles.sh").read_text()
    postgres = _by_kind("StatefulSet")["postgres"]
    refs = _secret_refs(postgres)
    for svc in DB_ROLES:
        var = f"PURAS_{svc.upper()}_DATABASE_PASSWORD"
        assert f'{svc}_password="${var}"' in script, svc
        assert refs[var] == (f"puras-{svc}", "database_password")
    mounts = {m["mountPath"] for c in _containers(postgres) for m in c.get("volumeMounts", [])}
    assert {"/docker-entrypoint-initdb.d", "/etc/puras-postgres"} <= mounts
    # The init folder gets the script only: the image would run roles.sql without its
    # variables, and fail.
    init = next(v for v in _pod_spec(postgres)["volumes"] if v["name"] == "init")
    assert [i["key"] for i in init["configMap"]["items"]] == ["10-puras-roles.sh"]


def test_runner_egress_excludes_cloud_metadata_addresses() -> None:
    runner = _by_kind("NetworkPolicy")["runner"]
    metadata = [
        ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
    ]
    for rule in runner["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None:
                continue
            cidr = ipaddress.ip_network(block["cidr"])
            excepts = [ipaddress.ip_network(e) for e in block.get("except", [])]
            for addr in metadata:
                if addr.version == cidr.version and addr in cidr:
                    assert any(addr in e for e in excepts if e.version == addr.version), addr


# -- network policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A pod, in the namespace of the base or elsewhere, as NetworkPolicy sees it."""

    namespace_labels: dict[str, str]
    labels: dict[str, str]


def _own_namespace_labels() -> dict[str, str]:
    ns = _namespace()
    labels = dict(_by_kind("Namespace")[ns]["metadata"].get("labels", {}))
    labels["kubernetes.io/metadata.name"] = ns
    return labels


def _peer_of(workload: dict[str, Any]) -> Peer:
    return Peer(_own_namespace_labels(), _pod_labels(workload))


def _ipblock_may_hold_pods(block: dict[str, Any]) -> bool:
    """Whether an ipBlock can match pod or Service IPs (we do not know the cluster's CIDRs,
    so any private range it does not exclude may hold them)."""
    cidr = ipaddress.ip_network(block["cidr"])
    excepts = [ipaddress.ip_network(e) for e in block.get("except", [])]
    private = PRIVATE_V4 if cidr.version == 4 else PRIVATE_V6
    for raw in private:
        net = ipaddress.ip_network(raw)
        if not cidr.overlaps(net):
            continue
        if not any(
            e.version == net.version and net.subnet_of(e)  # type: ignore[arg-type]
            for e in excepts
        ):
            return True
    return False


def _peer_matches(rule_peer: dict[str, Any], peer: Peer, *, own_ns: bool) -> bool:
    if "ipBlock" in rule_peer:
        return _ipblock_may_hold_pods(rule_peer["ipBlock"])
    if "namespaceSelector" in rule_peer:
        if not _selects(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif not own_ns:
        return False
    return _selects(rule_peer.get("podSelector", {}), peer.labels)


def _rule_allows(rule: dict[str, Any], key: str, peer: Peer, port: Port, *, own_ns: bool) -> bool:
    peers = rule.get(key)
    if peers is not None and not any(_peer_matches(p, peer, own_ns=own_ns) for p in peers):
        return False
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == port.protocol
        and p.get("port") in (None, port.number, port.name)
        for p in ports
    )


def _allowed(direction: str, subject: Peer, other: Peer, port: Port, *, other_own_ns: bool) -> bool:
    """Whether policies selecting ``subject`` let traffic go to/come from ``other``."""
    key = "to" if direction == "Egress" else "from"
    rules_key = "egress" if direction == "Egress" else "ingress"
    policies = [
        p
        for p in _by_kind("NetworkPolicy").values()
        if direction in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not policies:
        return True
    return any(
        _rule_allows(rule, key, other, port, own_ns=other_own_ns)
        for p in policies
        for rule in p["spec"].get(rules_key) or []
    )


def _can_reach(src: str, dst: str, port: Port) -> bool:
    w = _workloads()
    return _allowed("Egress", _peer_of(w[src]), _peer_of(w[dst]), port, other_own_ns=True) and (
        _allowed("Ingress", _peer_of(w[dst]), _peer_of(w[src]), port, other_own_ns=True)
    )


def _workload_ports(name: str) -> list[Port]:
    return [p for c in _containers(_workloads()[name]) for p in _ports(c)]


def _port(workload: str, name: str) -> Port:
    found = [p for p in _workload_ports(workload) if p.name == name]
    assert found, f"{workload} exposes no port {name}"
    return found[0]


def _uses_database(service: str) -> bool:
    return any(
        _field_of(SERVICES[service], v["name"]) == "database_url"
        for v in _service_container(service).get("env", [])
    )


def test_everything_is_denied_unless_allowed() -> None:
    assert any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in _by_kind("NetworkPolicy").values()
    ), "no default-deny policy"


def test_services_reach_nats_and_only_database_users_reach_postgres() -> None:
    nats, postgres = "StatefulSet/nats", "StatefulSet/postgres"
    client, pg = _port(nats, "client"), _port(postgres, "postgres")
    for service in SERVICES:
        src = f"Deployment/{service}"
        assert _can_reach(src, nats, client), f"{service} cannot reach NATS"
        assert _can_reach(src, postgres, pg) == _uses_database(service), (
            f"{service}: Postgres reachable={_can_reach(src, postgres, pg)}, "
            f"uses PURAS_DATABASE_URL={_uses_database(service)}"
        )
    cluster = _port(nats, "cluster")
    assert _can_reach(nats, nats, cluster), "NATS nodes cannot form the cluster"
    for infra in ("StatefulSet/postgres", "StatefulSet/minio"):
        assert not _can_reach(infra, nats, client), f"{infra} reaches NATS"


def test_runner_pods_reach_nats_and_the_api_and_nothing_else_in_the_cluster() -> None:
    runner = "Deployment/runner"
    for target in _workloads():
        for port in _workload_ports(target):
            allowed = _can_reach(runner, target, port)
            if target == "StatefulSet/nats" and port.name == "client":
                assert allowed, "runners cannot reach NATS"
            elif target == "Deployment/gateway" and port.name == "http":
                # Jobs' media calls (S2), through the runner's egress proxy.
                assert allowed, "runners cannot reach the API"
            else:
                assert not allowed, f"runner pods reach {target}:{port.number} ({port.name})"
    runner_peer = _peer_of(_workloads()[runner])
    other_ns_pod = Peer({"kubernetes.io/metadata.name": "default"}, {"app": "anything"})
    assert not _allowed(
        "Egress", runner_peer, other_ns_pod, Port("http", 80, "TCP"), other_own_ns=False
    ), "runner pods reach pods of other namespaces"


def test_the_outside_reaches_the_gateway_and_keda_reads_nats() -> None:
    gateway = _workloads()["Deployment/gateway"]
    outsider = Peer({"kubernetes.io/metadata.name": "ingress-nginx"}, {"app": "ingress"})
    assert _allowed(
        "Ingress",
        _peer_of(gateway),
        outsider,
        _port("Deployment/gateway", "http"),
        other_own_ns=False,
    )
    host = _by_kind("ScaledObject")["runner"]["spec"]["triggers"][0]["metadata"][
        "natsServerMonitoringEndpoint"
    ]
    monitor = _port("StatefulSet/nats", "monitor")
    assert int(host.rpartition(":")[2]) == monitor.number
    keda = Peer({"kubernetes.io/metadata.name": "keda"}, {"app": "keda-operator"})
    assert _allowed("Ingress", _peer_of(_nats()), keda, monitor, other_own_ns=False), (
        "KEDA cannot read the NATS monitoring endpoint"
    )
    assert not _allowed(
        "Ingress", _peer_of(_nats()), keda, _port("StatefulSet/nats", "client"), other_own_ns=False
    ), "KEDA needs the monitoring port only"


def test_every_pod_resolves_names() -> None:
    dns = Peer({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
    for name, w in _workloads().items():
        for protocol in ("UDP", "TCP"):
            assert _allowed(
                "Egress", _peer_of(w), dns, Port("dns", 53, protocol), other_own_ns=False
            ), f"{name} cannot reach cluster DNS over {protocol}"


def test_connections_inside_the_namespace_are_exactly_the_intended_ones() -> None:
    # Any widening (a new edge) or narrowing shows up here with its endpoints.
    intended = {(f"Deployment/{s}", "StatefulSet/nats", 4222) for s in [*SERVICES, *PROCESSES]}
    intended |= {
        (f"Deployment/{s}", "StatefulSet/postgres", 5432)
        for s in ("gateway", "gateway-projector", "billing", "drive")
    }
    intended.add(("Deployment/gateway", "Deployment/drive", 8091))
    intended.add(("Deployment/runner", "Deployment/gateway", 8080))
    intended.add(("StatefulSet/nats", "StatefulSet/nats", 6222))
    allowed = {
        (src, dst, port.number)
        for src in _workloads()
        for dst in _workloads()
        for port in _workload_ports(dst)
        if _can_reach(src, dst, port)
    }
    assert allowed == intended, (
        f"unexpected: {sorted(allowed - intended)}; missing: {sorted(intended - allowed)}"
    )


# -- processes of a service apart from it ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_a_process_of_a_service_runs_as_that_service(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, cls, _script = PROCESSES[name]
    container = _service_container(name)
    configmaps = _configmaps()
    names = {v["name"] for v in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(configmaps[source["configMapRef"]["name"]])
    unknown = names - _settings_env_names(cls)
    assert not unknown, f"{name} sets variables {cls.__name__} never reads: {unknown}"
    settings = _load_settings(name, monkeypatch)
    assert settings.env == "prod"
    assert settings.nats_credentials().user == service
    assert {s for s, _k in _secret_refs(_service_deployments()[name]).values()} == {
        f"puras-{service}"
    }
    # Probed on its health port, where it serves /healthz and /readyz.
    assert settings.health_port in {p.number for p in _ports(container)}
    for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        probe = container[kind]["httpGet"]
        resolved = _resolve_port(container, probe["port"])
        assert resolved is not None, kind
        assert resolved.number == settings.health_port, kind
        assert probe["path"] == path, kind
    src = f"Deployment/{name}"
    assert _can_reach(src, "StatefulSet/nats", _port("StatefulSet/nats", "client"))
    assert _can_reach(src, "StatefulSet/postgres", _port("StatefulSet/postgres", "postgres"))


def test_the_api_gateway_leaves_the_projections_to_the_projector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _load_settings("gateway", monkeypatch)
    assert isinstance(settings, GatewaySettings)
    assert settings.run_projectors is False
    assert "gateway-projector" in _service_deployments()
