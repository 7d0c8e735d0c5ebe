"""The Kubernetes manifests under deploy/: every overlay renders, every object is valid for
Kubernetes, and every service gets the settings it reads, probes and scraping it really serves.

No cluster runs here: `kubectl kustomize` renders each overlay (a missing kubectl fails these
tests with how to install it, it never skips them), `kubernetes_validate` checks the core kinds
against the Kubernetes schemas (strict: unknown fields are errors), and the custom resources
(ServiceMonitor, PrometheusRule) are checked field by field.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from cryptography.fernet import Fernet

from cj_assessment_service.config import Settings as CJSettings
from cj_assessment_service.entrypoints.runtime import SERVICE as CJ_SERVICE
from common_core.runtime.http import OPERATIONAL_PATHS
from common_core.runtime.kernel import ServiceDefinition
from common_core.runtime.settings import ServiceSettings
from deploy_manifests import (
    PROMETHEUS_RULE_FILE,
    KubectlMissingError,
    alert_groups,
    prometheus_rule_text,
    render,
)
from llm_provider_service.config import Settings as LLMSettings
from llm_provider_service.entrypoints.runtime import SERVICE as LLM_SERVICE
from submission_service.config import Settings as SubmissionSettings
from submission_service.entrypoints.runtime import SERVICE as SUBMISSION_SERVICE

OVERLAYS = ("production", "development")
KUBERNETES_VERSION = "1.31.0"
CUSTOM_API_GROUP = "monitoring.coreos.com"
DEFINITIONS: dict[str, ServiceDefinition[Any]] = {
    "cj-assessment-service": CJ_SERVICE,
    "llm-provider-service": LLM_SERVICE,
    "submission-service": SUBMISSION_SERVICE,
}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "cj-assessment-service": CJSettings,
    "llm-provider-service": LLMSettings,
    "submission-service": SubmissionSettings,
}
SetEnvironment = Callable[[type[ServiceSettings], dict[str, str]], None]
# What a deployment must set even though the Settings classes have defaults for them: the
# defaults are a developer's laptop (127.0.0.1 Kafka and PostgreSQL, migrations at start-up).
DEPLOYMENT_NEEDS = frozenset(
    {
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "ENVIRONMENT",
        "HTTP_HOST",
        "HTTP_PORT",
        "OPS_HTTP_PORT",
        "DATABASE_MIGRATE_ON_START",
    }
)
POD_NAME = "pod-0"


@functools.cache
def _objects(overlay: str) -> tuple[dict[str, Any], ...]:
    try:
        return tuple(render(overlay))
    except KubectlMissingError as exc:
        pytest.fail(str(exc))


def _one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects(overlay) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def _of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in _objects(overlay) if o["kind"] == kind]


@dataclass(frozen=True)
class ContainerEnv:
    """What a container's environment holds once Kubernetes resolved it."""

    values: dict[str, str]
    """Every variable with its value (ConfigMap data and literals; a secret's placeholder)."""
    secret_refs: dict[str, tuple[str, bool]]
    """Variables from a Secret: the Secret's name and whether the reference is optional."""


def _container_env(overlay: str, container: dict[str, Any]) -> ContainerEnv:
    values: dict[str, str] = {}
    secret_refs: dict[str, tuple[str, bool]] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"only ConfigMaps by envFrom (names known): {source}"
        config_map = _one(overlay, "ConfigMap", source["configMapRef"]["name"])
        values.update(config_map.get("data", {}))
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            values[name] = variable["value"]
            continue
        reference = variable["valueFrom"]
        if "secretKeyRef" in reference:
            ref = reference["secretKeyRef"]
            secret_refs[name] = (ref["name"], ref.get("optional", False))
            values[name] = _secret_placeholder(name)
        elif "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            values[name] = _one(overlay, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            assert reference == {"fieldRef": {"fieldPath": "metadata.name"}}, reference
            values[name] = POD_NAME
    return ContainerEnv(values, secret_refs)


def _secret_placeholder(name: str) -> str:
    """A value of the right shape for a secret the operator creates."""
    if name == "DATABASE_URL":
        return "postgresql+asyncpg://huleedu:placeholder@postgres.example:5432/postgres"
    if name == "WEBHOOK_SECRET_KEYS":
        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(48)


def _server_container(overlay: str, name: str) -> dict[str, Any]:
    containers = _one(overlay, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env_names(settings_class: type[ServiceSettings]) -> set[str]:
    """The variables a Settings class reads: its fields, and `<NAME>_FILE` of its secrets."""
    names = {name.upper() for name in settings_class.model_fields}
    secret_files = {
        f"{name.upper()}_FILE"
        for name, field in settings_class.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    return names | secret_files


@pytest.fixture
def environment_of(monkeypatch: pytest.MonkeyPatch) -> SetEnvironment:
    """Sets a container's environment (and only it) for a Settings class to read."""

    def apply(settings_class: type[ServiceSettings], values: dict[str, str]) -> None:
        for name in _env_names(settings_class):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return apply


def _required_secret_env(env: ContainerEnv) -> dict[str, str]:
    """The environment with only the secrets a deployment must create (optional ones absent)."""
    optional = {name for name, (_, is_optional) in env.secret_refs.items() if is_optional}
    return {name: value for name, value in env.values.items() if name not in optional}


SERVICES = tuple(DEFINITIONS)
CASES = [(overlay, service) for overlay in OVERLAYS for service in SERVICES]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_object_is_valid_against_the_kubernetes_schemas(overlay: str) -> None:
    core = [o for o in _objects(overlay) if not o["apiVersion"].startswith(CUSTOM_API_GROUP)]
    kinds = {o["kind"] for o in core}
    assert {
        "ConfigMap",
        "Deployment",
        "Service",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    } <= kinds
    for document in core:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_prometheus_rule_carries_the_groups_of_alerts_yml(overlay: str) -> None:
    (rule,) = _of_kind(overlay, "PrometheusRule")
    assert rule["apiVersion"] == f"{CUSTOM_API_GROUP}/v1"
    assert rule["spec"]["groups"] == alert_groups()
    assert PROMETHEUS_RULE_FILE.read_text(encoding="utf-8") == prometheus_rule_text(), (
        "deploy/base/prometheus-rule.yaml is stale: run `python -m deploy_manifests`"
    )


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_the_service_monitor_scrapes_the_ops_port_under_the_alerts_job_name(
    overlay: str, service: str
) -> None:
    monitor = _one(overlay, "ServiceMonitor", service)
    assert monitor["apiVersion"] == f"{CUSTOM_API_GROUP}/v1"
    k8s_service = _one(overlay, "Service", service)
    labels = k8s_service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # The alerts and dashboards name each service by its Python name, as compose's jobs do.
    assert labels[monitor["spec"]["jobLabel"]] == DEFINITIONS[service].name
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["path"] in OPERATIONAL_PATHS
    ports = {port["name"]: port for port in k8s_service["spec"]["ports"]}
    env = _container_env(overlay, _server_container(overlay, service)).values
    assert ports[endpoint["port"]]["port"] == int(env["OPS_HTTP_PORT"])


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_every_env_name_the_manifests_set_is_a_setting_of_the_service(
    overlay: str, service: str
) -> None:
    settings_class = SETTINGS[service]
    deployment = _container_env(overlay, _server_container(overlay, service))
    job = _container_env(overlay, _migrations_container(overlay, service))
    for env in (deployment, job):
        unknown = set(env.values) - _env_names(settings_class)
        assert not unknown, f"{service}: not settings of {settings_class.__module__}: {unknown}"


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_every_setting_the_service_needs_is_provided(overlay: str, service: str) -> None:
    settings_class = SETTINGS[service]
    assert DEFINITIONS[service].settings is settings_class
    provided = set(_container_env(overlay, _server_container(overlay, service)).values)
    required = {
        name.upper() for name, field in settings_class.model_fields.items() if field.is_required()
    }
    assert required | DEPLOYMENT_NEEDS <= provided


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_the_service_accepts_its_environment_in_production_mode(
    overlay: str, service: str, environment_of: SetEnvironment
) -> None:
    settings_class = SETTINGS[service]
    env = _container_env(overlay, _server_container(overlay, service))
    environment_of(settings_class, _required_secret_env(env))
    settings = settings_class()  # production mode: refuses missing auth and weak secrets
    assert settings.environment == "production"
    assert settings.database_migrate_on_start is False
    assert settings.ops_http_port is not None
    if settings_class.protects_api:
        assert settings.api_auth_enabled


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_the_migrations_job_migrates_with_the_owner_role(
    overlay: str, service: str, environment_of: SetEnvironment
) -> None:
    definition = DEFINITIONS[service]
    settings_class = SETTINGS[service]
    container = _migrations_container(overlay, service)
    assert container["command"] == ["python", "-m", definition.name, "migrate"]
    job_env = _container_env(overlay, container)
    server_env = _container_env(overlay, _server_container(overlay, service))
    owner_secret, _ = job_env.secret_refs["DATABASE_URL"]
    runtime_secret, _ = server_env.secret_refs["DATABASE_URL"]
    assert owner_secret != runtime_secret
    environment_of(settings_class, _required_secret_env(job_env))
    assert settings_class().environment == "production"


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_probes_ask_the_ops_port_for_paths_the_service_serves(overlay: str, service: str) -> None:
    container = _server_container(overlay, service)
    env = _container_env(overlay, container).values
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == int(env["HTTP_PORT"])
    assert ports["ops"] == int(env["OPS_HTTP_PORT"])
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/healthz/ready"
    for probe in (*probes.values(), container["startupProbe"]["httpGet"]):
        assert probe["path"] in OPERATIONAL_PATHS
        assert ports.get(probe["port"], probe["port"]) == ports["ops"]


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_the_pod_runs_as_non_root_on_a_read_only_root_filesystem(
    overlay: str, service: str
) -> None:
    pod = _one(overlay, "Deployment", service)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_termination_grace_outlasts_the_service_drain(
    overlay: str, service: str, environment_of: SetEnvironment
) -> None:
    definition = DEFINITIONS[service]
    settings_class = SETTINGS[service]
    pod = _one(overlay, "Deployment", service)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = _container_env(overlay, container)
    environment_of(settings_class, _required_secret_env(env))
    drain = definition.graceful_timeout(settings_class())
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # Workers get the graceful timeout, then the HTTP server gets it again.
    assert pod["terminationGracePeriodSeconds"] > pre_stop + 2 * drain


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_no_more_replicas_than_partitions_and_the_llm_quota_share_matches(
    overlay: str, service: str, environment_of: SetEnvironment
) -> None:
    settings_class = SETTINGS[service]
    autoscaler = _one(overlay, "HorizontalPodAutoscaler", service)
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == service
    env = _container_env(overlay, _server_container(overlay, service))
    environment_of(settings_class, _required_secret_env(env))
    settings = settings_class()
    max_replicas = autoscaler["spec"]["maxReplicas"]
    assert max_replicas <= settings.topic_partitions
    if isinstance(settings, LLMSettings):
        assert settings.llm_expected_instances == max_replicas


@pytest.mark.parametrize(("overlay", "service"), CASES)
def test_the_disruption_budget_covers_the_deployments_pods(overlay: str, service: str) -> None:
    budget = _one(overlay, "PodDisruptionBudget", service)
    deployment = _one(overlay, "Deployment", service)
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    autoscaler = _one(overlay, "HorizontalPodAutoscaler", service)
    assert budget["spec"]["maxUnavailable"] <= autoscaler["spec"]["minReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_the_named_ports(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of_kind(overlay, "NetworkPolicy")}
    assert policies["default-deny"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    for service in SERVICES:
        ingress = policies[service]["ingress"]
        namespaces = {
            rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: [
                port["port"] for port in rule["ports"]
            ]
            for rule in ingress
        }
        assert namespaces == {"ingress-nginx": ["http"], "monitoring": ["ops"]}


def _migrations_container(overlay: str, service: str) -> dict[str, Any]:
    job = _one(overlay, "Job", f"{service}-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_llm_provider_and_submission_reach_the_internet(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of_kind(overlay, "NetworkPolicy")}
    internet_ports = {
        service: {
            port["port"]
            for rule in policies[service]["egress"]
            if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule["to"])
            for port in rule["ports"]
        }
        for service in SERVICES
    }
    assert internet_ports == {
        "llm-provider-service": {443},
        "submission-service": {80, 443},
        "cj-assessment-service": set(),
    }
    for rule in policies["llm-provider-service"]["egress"]:
        (peer,) = rule["to"]
        assert "169.254.0.0/16" in peer["ipBlock"]["except"]  # no cloud metadata endpoint


def test_rendering_without_kubectl_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KubectlMissingError, match="install"):
        render("production")
