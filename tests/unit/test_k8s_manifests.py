"""The Kubernetes manifests of deploy/k8s, as each overlay renders them (tests/unit/kustomize_lite.py):
valid against the Kubernetes JSON schemas (kubernetes-validate, offline) and KEDA's vendored CRDs; probes on
/healthz and /readyz at the port the process serves; exactly one tracker; ingest shards that cover every
store once; secrets only where needed; network policies that allow each stage what it needs and no more;
KEDA scaling the detector and classifier on their own consumer group's lag; commands the CLI accepts."""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from ruamel.yaml import YAML
from typer.main import get_command

from moodstream.cli.app import build_app
from moodstream.cli.pipeline import parse_store_ids
from moodstream.common.streams import StreamNames
from moodstream.runtime.processes import GROUPS
from moodstream.runtime.settings import Settings
from moodstream.schemas.registry import load_registry
from tests.unit.kustomize_lite import build

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="install the dev extra (kubernetes-validate bundles the Kubernetes schemas)"
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir())
KUBERNETES_VERSIONS = ("1.28", "1.34")
"""Oldest and newest Kubernetes minor versions the manifests are checked against."""
METRICS_PORT = 9400
STAGES = ("ingest", "detector", "tracker", "classifier", "aggregator")
KEDA_KINDS = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
}
REDIS_STREAMS_METADATA = frozenset(
    {
        "address", "host", "port", "username", "password", "usernameFromEnv", "passwordFromEnv",
        "stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
        "databaseIndex", "enableTLS", "unsafeSsl",
    }
)  # fmt: skip
"""Trigger metadata KEDA's redis-streams scaler reads (pkg/scalers/redis_streams_scaler.go, v2.20)."""
SCALED_INPUTS = {"detector": StreamNames().frames, "classifier": StreamNames().tracks}
"""The stream each autoscaled stage consumes (moodstream.runtime.processes.run_detector / run_classifier)."""

Obj = dict[str, Any]


@cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    return tuple(build(K8S / "overlays" / overlay))


def of_kind(overlay: str, kind: str) -> list[Obj]:
    return [obj for obj in rendered(overlay) if obj["kind"] == kind]


def workloads(overlay: str) -> Iterator[tuple[Obj, Obj]]:
    """(object, pod spec) of every Deployment and Job."""
    for obj in rendered(overlay):
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def component(obj: Obj) -> str:
    return str(obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def secret_refs(pod: Obj) -> set[tuple[str, str]]:
    """(secret, key) read by the pod's containers; key '*' for a whole secret as environment (envFrom)."""
    refs = set()
    for container in containers(pod):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        refs |= {(e["secretRef"]["name"], "*") for e in container.get("envFrom", []) if "secretRef" in e}
    return refs


def env_names(pod: Obj) -> set[str]:
    return {env["name"] for container in containers(pod) for env in container.get("env", [])}


def containers(pod: Obj) -> list[Obj]:
    """The pod's init containers and containers."""
    return [*pod.get("initContainers", []), *pod["containers"]]


# ------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    kinds = set()
    for obj in rendered(overlay):
        kinds.add(obj["kind"])
        if obj["kind"] not in KEDA_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)  # raises on the first mistake
    assert kinds == {"ServiceAccount", "ConfigMap", "Deployment", "Job", "NetworkPolicy", *KEDA_KINDS}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "1"),  # an integer field given a string
        (("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "paths"), "/x"),  # unknown
        (("spec", "strategy", "type"), ["Recreate"]),
    ],
)
def test_the_kubernetes_schemas_catch_a_broken_deployment(path: tuple[str | int, ...], value: object) -> None:
    broken = copy.deepcopy(next(o for o in rendered(OVERLAYS[0]) if o["kind"] == "Deployment"))
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused wherever it lists the fields and keeps no others, as
    `kubectl apply --validate=strict` does (the API server would otherwise drop them silently)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    return [_strict(item) for item in schema] if isinstance(schema, list) else schema


@cache
def keda_validator(kind: str) -> Draft7Validator:
    crd = YAML(typ="safe").load((K8S / "vendor" / "keda" / KEDA_KINDS[kind]).read_text(encoding="utf-8"))
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def keda_errors(obj: Obj) -> list[str]:
    return [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in keda_validator(obj["kind"]).iter_errors(obj)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_objects_validate_against_kedas_crds(overlay: str) -> None:
    objects = [obj for obj in rendered(overlay) if obj["kind"] in KEDA_KINDS]
    assert {obj["kind"] for obj in objects} == set(KEDA_KINDS)
    for obj in objects:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert keda_errors(obj) == [], obj["metadata"]["name"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda so: so["spec"].update(minReplicas=1), "'minReplicas' was unexpected"),
        (lambda so: so["spec"].update(maxReplicaCount="4"), "'4' is not of type 'integer'"),
        (lambda so: so["spec"]["triggers"][0].pop("type"), "'type' is a required property"),
        (
            lambda so: so["spec"]["triggers"][0]["metadata"].update(lagCount=100),
            "100 is not of type 'string'",
        ),
        (lambda so: so["spec"]["scaleTargetRef"].pop("name"), "'name' is a required property"),
    ],
)
def test_the_keda_schema_catches_a_broken_scaled_object(change: Any, message: str) -> None:
    broken = copy.deepcopy(of_kind(OVERLAYS[0], "ScaledObject")[0])
    change(broken)
    assert any(message in error for error in keda_errors(broken)), keda_errors(broken)


# ------------------------------------------------------------------------------------------- stages


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_stage_tracker_alone_and_ingest_shards_never_doubled(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    by_stage: dict[str, list[Obj]] = {}
    for deployment in deployments:
        by_stage.setdefault(component(deployment), []).append(deployment)
    assert set(by_stage) == set(STAGES)
    assert all(len(v) == 1 for stage, v in by_stage.items() if stage != "ingest")
    (tracker,) = by_stage["tracker"]
    assert tracker["spec"]["replicas"] == 1 and tracker["spec"]["strategy"] == {"type": "Recreate"}
    for shard in by_stage["ingest"]:  # two pods of one shard would read the same cameras
        assert shard["spec"]["replicas"] == 1 and shard["spec"]["strategy"] == {"type": "Recreate"}
    selectors = [tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in deployments]
    assert len(set(selectors)) == len(selectors), "two Deployments select the same pods"
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sorted(component(j) for j in of_kind(overlay, "Job")) == ["grafana-push", "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_healthz_and_readyz_on_the_port_the_process_serves(overlay: str) -> None:
    for deployment in of_kind(overlay, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports == {"metrics": METRICS_PORT}
            assert f"--metrics-port={METRICS_PORT}" in container["args"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert (
                env["MOODSTREAM_METRICS_ADDRESS"] == "0.0.0.0"
            )  # not 127.0.0.1: the kubelet probes the pod IP
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(METRICS_PORT)


def _cli_invocations(container: Obj) -> Iterator[list[str]]:
    """Each moodstream command line a container runs (``sh -c 'a && b'`` holds several)."""
    words = [*container.get("command", []), *container.get("args", [])]
    if words[:2] == ["sh", "-c"]:
        for part in words[2].split("&&"):
            yield shlex.split(part)
    else:
        yield words


def _parse(words: list[str]) -> None:
    """Parse a moodstream command line as the CLI would, without running it (raises on a mistake).

    Duck-typed: typer ships its own copy of click, whose classes are not the ``click`` package's."""
    assert words[0] == "moodstream"
    command: Any = get_command(build_app())
    args = words[1:]
    while hasattr(command, "commands"):  # a group: descend into the named subcommand
        assert args and args[0] in command.commands, f"no command {args[:1]} in {words}"
        command, args = command.commands[args[0]], args[1:]
    command.make_context(words[0], args)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_command_line_is_one_the_cli_accepts(overlay: str) -> None:
    ingest_options = {p.opts[0] for p in get_command(build_app()).commands["ingest"].params}  # type: ignore[attr-defined]
    for _, pod in workloads(overlay):
        for container in containers(pod):
            for words in _cli_invocations(container):
                if words[1] == "ingest" and "--metrics-port" not in ingest_options:
                    words = [w for w in words if not w.startswith("--metrics-port")]  # ops branch adds it
                _parse(words)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_on_the_overlays_image(overlay: str) -> None:
    (image,) = YAML(typ="safe").load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())[
        "images"
    ]
    for _, pod in workloads(overlay):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "moodstream"
        for container in containers(pod):
            assert container["image"] == f"{image['newName']}:{image['newTag']}"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["limits"].keys() == {"cpu", "memory"}


# ------------------------------------------------------------------------------------------- stores, shards


def stores_yaml(overlay: str, tmp_path: Path) -> Path:
    (config,) = [c for c in of_kind(overlay, "ConfigMap") if c["metadata"]["name"] == "moodstream-stores"]
    path = tmp_path / "stores.yaml"
    path.write_text(config["data"]["stores.yaml"], encoding="utf-8")
    return path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_shards_cover_every_store_exactly_once(overlay: str, tmp_path: Path) -> None:
    registry = load_registry(stores_yaml(overlay, tmp_path), environ={})
    all_stores = [store.id for store in registry.stores]
    shards = []
    for deployment in of_kind(overlay, "Deployment"):
        if component(deployment) == "ingest":
            args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            values = [a.removeprefix("--stores=") for a in args if a.startswith("--stores=")]
            shards.append(list(parse_store_ids(values)) or all_stores)
    read = sorted(store for shard in shards for store in shard)
    assert read == sorted(all_stores), f"stores read by no shard or by two: {shards}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_stores_yaml_loads_without_camera_secrets_in_every_stage(overlay: str, tmp_path: Path) -> None:
    """Only ingest pods get the camera secret; the other stages load the same file without it."""
    path = stores_yaml(overlay, tmp_path)
    assert load_registry(path, environ={}).secrets == frozenset()
    with_secrets = load_registry(path, environ={"CAM_USER": "viewer", "CAM_PASS": "s3cret-pw"})
    assert {"viewer", "s3cret-pw"} <= with_secrets.secrets


# ------------------------------------------------------------------------------------------- secrets


def documented_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from the `kubectl create secret generic` commands of deploy/README.md."""
    readme = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    out: dict[str, set[str]] = {}
    for name, rest in re.findall(r"create secret generic (\S+)((?:\s*\\\n\s*--from-literal=\S+)+)", readme):
        out[name] = set(re.findall(r"--from-literal=(\w+)=", rest))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_reach_only_the_pods_that_need_them(overlay: str) -> None:
    used: dict[str, set[str]] = {}
    for obj, pod in workloads(overlay):
        for name, _ in secret_refs(pod):
            used.setdefault(name, set()).add(component(obj))
        for container in containers(pod):  # URLs and passwords only ever from a Secret
            for env in container.get("env", []):
                if re.search("URL|PASSWORD", env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), env["name"]
    assert used == {
        "moodstream-redis": {"ingest", "detector", "tracker", "classifier", "aggregator"},
        "moodstream-db-writer": {"aggregator", "migrate"},
        "moodstream-db-reader": {"migrate", "grafana-push"},  # migrate: only the role's name
        "moodstream-grafana": {"grafana-push"},
        "moodstream-cameras": {"ingest"},
    }
    migrate = next(pod for obj, pod in workloads(overlay) if component(obj) == "migrate")
    assert ("moodstream-db-reader", "password") not in secret_refs(migrate)
    push = next(pod for obj, pod in workloads(overlay) if component(obj) == "grafana-push")
    (url,) = [a for a in push["containers"][0]["args"] if a.startswith("--url=")]
    assert url.startswith("--url=https://"), "the token and the reader's password would travel in clear"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_key_used_is_created_by_the_readme(overlay: str) -> None:
    documented = documented_secrets()
    refs = {ref for _, pod in workloads(overlay) for ref in secret_refs(pod)}
    for auth in of_kind(overlay, "TriggerAuthentication"):
        refs |= {(r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    for name, key in sorted(refs):
        assert name in documented, f"deploy/README.md does not create the Secret {name}"
        assert key == "*" or key in documented[name], f"deploy/README.md does not set {name}/{key}"


# ------------------------------------------------------------------------------------------- network


def _peer(rule_peers: list[Obj], ports: list[Obj]) -> str:
    """What an egress rule reaches: dns, redis, postgresql, cameras, or a description of anything else."""
    port_set = {(p.get("protocol", "TCP"), p["port"]) for p in ports}
    (peer,) = rule_peers
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
    if namespace == {"kubernetes.io/metadata.name": "kube-system"} and pods == {"k8s-app": "kube-dns"}:
        return "dns" if port_set == {("UDP", 53), ("TCP", 53)} else f"dns on {port_set}"
    redis = not namespace and pods == {"app.kubernetes.io/name": "redis"}
    if redis and port_set == {("TCP", 6379)}:
        return "redis"
    if redis and port_set == {("TCP", 6379), ("TCP", 26379)}:
        return "redis and sentinel"
    if not namespace and pods == {"app.kubernetes.io/name": "postgresql"} and port_set == {("TCP", 5432)}:
        return "postgresql"
    if set(peer) == {"ipBlock"} and port_set == {("TCP", 554), ("TCP", 80), ("TCP", 443)}:
        return "cameras"
    grafana = ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "grafana"})
    if (namespace, pods) == grafana and port_set == {("TCP", 3000)}:
        return "grafana"
    return f"other: {peer} {port_set}"


def needs(pod: Obj) -> set[str]:
    """What a pod's configuration says it connects to."""
    out = {"dns"}
    if "MOODSTREAM_REDIS_URL" in env_names(pod):
        out.add("redis")
    if "MOODSTREAM_DATABASE_URL" in env_names(pod):
        out.add("postgresql")
    if ("moodstream-cameras", "*") in secret_refs(pod):
        out.add("cameras")
    if "MOODSTREAM_GRAFANA_TOKEN" in env_names(pod):
        out.add("grafana")
    return out


def selects(policy: Obj, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if selector.get("matchLabels", {}).items() - labels.items():
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_denied_unless_a_policy_allows_it(overlay: str) -> None:
    (deny,) = [p for p in of_kind(overlay, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_stage_may_reach_only_what_it_needs(overlay: str) -> None:
    policies = [p for p in of_kind(overlay, "NetworkPolicy") if p["spec"]["podSelector"] != {}]
    for obj, pod in workloads(overlay):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if selects(p, labels)]
        assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        reached = [_peer(rule["to"], rule["ports"]) for rule in policy["spec"]["egress"]]
        assert sorted(reached) == sorted(needs(pod)), component(obj)
        ingress = policy["spec"]["ingress"]
        if obj["kind"] == "Job":
            assert ingress == []
        else:  # Prometheus scrapes the metrics port; nothing else reaches a stage
            assert ingress == [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                }
            ]


def _ingress_peers(policy: Obj) -> tuple[set[str], list[Obj], set[tuple[str, int]]]:
    """What a server's policy lets in: components of moodstream pods (same namespace), peers from other
    namespaces, and the ports its own pods (replicas) may use."""
    components, outside, replication = set(), [], set()
    server = policy["spec"]["podSelector"]
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                outside.append(peer)
            elif peer["podSelector"] == server:
                replication |= {(p["protocol"], p["port"]) for p in rule["ports"]}
            else:
                (expression,) = peer["podSelector"]["matchExpressions"]
                assert expression["operator"] == "In"
                assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "moodstream"}
                components |= set(expression["values"])
    return components, outside, replication


@pytest.mark.parametrize(
    ("server", "variable", "outside", "ports"),
    [
        ("redis", "MOODSTREAM_REDIS_URL", ("keda", {"app": "keda-operator"}), {6379, 26379}),
        (
            "postgresql",
            "MOODSTREAM_DATABASE_URL",
            ("monitoring", {"app.kubernetes.io/name": "grafana"}),
            {5432},
        ),
    ],
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servers_accept_only_the_stages_that_use_them(
    overlay: str, server: str, variable: str, outside: tuple[str, dict[str, str]], ports: set[int]
) -> None:
    (policy,) = [p for p in of_kind(overlay, "NetworkPolicy") if p["metadata"]["name"] == server]
    components, others, replication = _ingress_peers(policy)
    assert components == {component(obj) for obj, pod in workloads(overlay) if variable in env_names(pod)}
    namespace, pods = outside
    assert others == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": pods},
        }
    ]
    assert replication == {("TCP", port) for port in ports}  # its own replicas, on its own ports only
    reached = [_peer(rule["to"], rule["ports"]) for rule in policy["spec"]["egress"]]
    replicas = {"redis": "redis and sentinel", "postgresql": "postgresql"}[server]
    assert sorted(reached) == ["dns", replicas], "a server reaches DNS and its replicas, nothing else"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_reaches_the_overlays_camera_network_not_the_placeholder(overlay: str) -> None:
    (policy,) = [p for p in of_kind(overlay, "NetworkPolicy") if p["metadata"]["name"] == "ingest"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert len(cidrs) == 1 and cidrs[0] != "192.0.2.0/24"
    for deployment in of_kind(overlay, "Deployment"):  # the policy opens TCP only: RTSP must not use UDP
        if component(deployment) == "ingest":
            env = {
                e["name"]: e.get("value")
                for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            assert env["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;tcp"


# ------------------------------------------------------------------------------------------- KEDA


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_detector_and_classifier_on_their_own_groups_lag(overlay: str) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(overlay, "Deployment")}
    auths = {a["metadata"]["name"]: a for a in of_kind(overlay, "TriggerAuthentication")}
    scaled = {}
    for so in of_kind(overlay, "ScaledObject"):
        target = deployments[so["spec"]["scaleTargetRef"]["name"]]
        stage = component(target)
        assert "replicas" not in target["spec"], f"{stage}: kubectl apply would reset KEDA's replica count"
        assert 1 <= so["spec"]["minReplicaCount"] < so["spec"]["maxReplicaCount"]
        (trigger,) = so["spec"]["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "redis-streams"
        assert set(metadata) <= REDIS_STREAMS_METADATA
        assert metadata["stream"] == SCALED_INPUTS[stage]
        assert metadata["consumerGroup"] == GROUPS[stage]
        assert int(metadata["lagCount"]) > 0 and "pendingEntriesCount" not in metadata
        auth = auths[trigger["authenticationRef"]["name"]]
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {
            "address",
            "username",
            "password",
        }
        scaled[stage] = so["spec"]["maxReplicaCount"]
    assert set(scaled) == {"detector", "classifier"}
    assert Settings().stream_prefix == StreamNames().prefix  # the streams KEDA watches are the default ones
