"""The small kustomize renderer the manifest tests use (tests/unit/kustomize_lite.py): each supported field
renders as kustomize renders it, the repository's overlays come out exactly as ``kubectl kustomize`` builds
them (where kubectl is installed), and whatever it does not support is refused with the file and field."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.unit.kustomize_lite import KustomizeError, build, json_patch

OVERLAYS = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web, shard: all}}
  template:
    metadata: {labels: {app: web, shard: all}}
    spec:
      containers:
        - name: web
          image: app
          args: [serve]
      initContainers:
        - {name: wait, image: "registry.local:5000/tools:1.0"}
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def keyed(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


@pytest.mark.parametrize("overlay", sorted(p.name for p in OVERLAYS.iterdir()))
def test_overlays_render_exactly_as_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the comparison with kustomize itself is skipped")
    result = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = keyed(list(YAML(typ="safe").load_all(result.stdout)))
    assert keyed(build(OVERLAYS / overlay)) == theirs


def test_every_supported_field(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "base/kustomization.yaml": "resources: [web.yaml]\n",
            "base/web.yaml": DEPLOYMENT,
            "shard/kustomization.yaml": """\
resources: [../base]
nameSuffix: -a
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - {op: replace, path: /spec/selector/matchLabels/shard, value: a}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: --only=a}
      - {op: test, path: /spec/template/spec/containers/0/args/0, value: serve}
      - {op: remove, path: /spec/template/metadata/labels/shard}
""",
            "overlay/kustomization.yaml": """\
namespace: prod
resources: [../shard]
configMapGenerator:
  - {name: settings, files: [conf.yaml, other=more.txt]}
generatorOptions: {disableNameSuffixHash: true}
images:
  - {name: app, newName: registry.example.com/app, newTag: "2.0"}
  - {name: "registry.local:5000/tools", newTag: "1.1"}
""",
            "overlay/conf.yaml": "a: 1\n",
            "overlay/more.txt": "text\n",
        },
    )
    objects = keyed(build(tmp_path / "overlay"))
    assert set(objects) == {("Deployment", "web-a"), ("ConfigMap", "settings")}
    web = objects[("Deployment", "web-a")]
    assert web["metadata"]["namespace"] == "prod"
    assert web["spec"]["selector"]["matchLabels"] == {"app": "web", "shard": "a"}
    assert web["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    pod = web["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["serve", "--only=a"]
    assert pod["containers"][0]["image"] == "registry.example.com/app:2.0"
    assert pod["initContainers"][0]["image"] == "registry.local:5000/tools:1.1"
    assert objects[("ConfigMap", "settings")] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "prod"},
        "data": {"conf.yaml": "a: 1\n", "other": "text\n"},
    }


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [web.yaml]\ncommonLabels: {a: b}\n", "unsupported field(s) commonLabels"),
        ("resources: [missing.yaml]\n", "resource missing.yaml not found"),
        (
            "resources: [web.yaml]\nnameSuffix: -x\nconfigMapGenerator: [{name: c, files: [web.yaml]}]\n"
            "generatorOptions: {disableNameSuffixHash: true}\n",
            "nameSuffix on ConfigMap",
        ),
        ("configMapGenerator: [{name: c, files: [web.yaml]}]\n", "disableNameSuffixHash: true"),
        (
            "configMapGenerator: [{name: c, literals: [a=b]}]\n"
            "generatorOptions: {disableNameSuffixHash: true}\n",
            "field(s) literals not supported",
        ),
        (
            "configMapGenerator: [{name: c, files: [../outside.yaml]}]\n"
            "generatorOptions: {disableNameSuffixHash: true}\n",
            "outside the kustomization's folder",
        ),
        ("resources: [web.yaml]\npatches: [{path: p.yaml}]\n", "a target of kind and name"),
        (
            "resources: [web.yaml]\npatches: [{target: {labelSelector: a=b}, patch: '[]'}]\n",
            "a target of kind",
        ),
        (
            "resources: [web.yaml]\npatches: [{target: {kind: Deployment, name: nope}, patch: '[]'}]\n",
            "matches no resource",
        ),
        (
            "resources: [web.yaml]\npatches: [{target: {kind: Deployment, name: web}, patch: 'spec: {}'}]\n",
            "not a JSON 6902 list",
        ),
    ],
)
def test_what_it_cannot_render_is_refused(tmp_path: Path, kustomization: str, message: str) -> None:
    write(
        tmp_path, {"k/kustomization.yaml": kustomization, "k/web.yaml": DEPLOYMENT, "outside.yaml": "a: 1\n"}
    )
    with pytest.raises(KustomizeError, match=r"kustomization\.yaml|k:") as raised:
        build(tmp_path / "k")
    assert message in str(raised.value)


def test_a_document_without_a_name_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path, {"kustomization.yaml": "resources: [x.yaml]\n", "x.yaml": "apiVersion: v1\nkind: Secret\n"}
    )
    with pytest.raises(
        KustomizeError, match=r"x\.yaml: every document needs apiVersion, kind and metadata\.name"
    ):
        build(tmp_path)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ({"op": "add", "path": "/a/b", "value": 2}, {"a": {"b": 2, "l": [1, 2]}}),
        ({"op": "add", "path": "/a/l/0", "value": 0}, {"a": {"l": [0, 1, 2]}}),
        ({"op": "add", "path": "/a/l/-", "value": 3}, {"a": {"l": [1, 2, 3]}}),
        ({"op": "replace", "path": "/a/l/1", "value": 9}, {"a": {"l": [1, 9]}}),
        ({"op": "remove", "path": "/a/l/0"}, {"a": {"l": [2]}}),
        ({"op": "test", "path": "/a/l/1", "value": 2}, {"a": {"l": [1, 2]}}),
    ],
)
def test_json_patch_operations(op: dict[str, Any], expected: dict[str, Any]) -> None:
    document: dict[str, Any] = {"a": {"l": [1, 2]}}
    json_patch(document, op)
    assert document == expected


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "move", "from": "/a", "path": "/b"}, "op 'move' not supported"),
        ({"op": "replace", "path": "/a/missing", "value": 1}, "path element 'missing' not found"),
        ({"op": "remove", "path": "/a/l/5"}, "path element '5' not found"),
        ({"op": "add", "path": "/x/y", "value": 1}, "path element 'x' not found"),
        ({"op": "test", "path": "/a/l/0", "value": 7}, "test of /a/l/0 failed"),
        ({"op": "add", "path": "a", "value": 1}, "must start with /"),
    ],
)
def test_json_patch_refuses_what_does_not_apply(op: dict[str, Any], message: str) -> None:
    document: dict[str, Any] = {"a": {"l": [1, 2]}}
    with pytest.raises(KustomizeError, match="patch") as raised:
        json_patch(document, op)
    assert message in str(raised.value)
    assert document == {"a": {"l": [1, 2]}}
