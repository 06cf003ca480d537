"""A small renderer for the subset of kustomize that deploy/k8s uses, so CI builds every overlay without
kubectl (``kubectl kustomize`` is compared with it where installed: tests/unit/test_kustomize_lite.py).

``build(folder)`` reads ``folder/kustomization.yaml`` and returns the rendered objects (dicts). Supported
fields, in kustomize's order of application:

* ``resources``: YAML files (every document) and folders holding a kustomization (built recursively);
* ``configMapGenerator`` (``name`` and ``files``, key = file name or ``key=path``), only with
  ``generatorOptions.disableNameSuffixHash: true`` (no hash suffix, so no name references to rewrite);
* ``patches``: inline JSON 6902 patches (``op`` add / remove / replace / test) with a ``target`` of
  ``kind`` and ``name``; a target that matches nothing is an error;
* ``namespace`` (namespaced objects only), ``nameSuffix`` (the ``metadata.name`` of this kustomization's
  own objects), ``images`` (``name`` -> ``newName`` / ``newTag`` in every pod template's containers).

Anything else (another field, a strategic-merge patch, a label selector target, a file outside the
kustomization's folder) raises ``KustomizeError`` naming it: the renderer refuses what it would not render
the way kustomize does.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML

Obj = dict[str, Any]

SUPPORTED_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "configMapGenerator",
        "generatorOptions",
        "patches",
        "namespace",
        "nameSuffix",
        "images",
    }
)
CLUSTER_SCOPED: Final[frozenset[str]] = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}
)
POD_TEMPLATE_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Where each workload kind keeps its pod spec (for ``images``)."""


class KustomizeError(ValueError):
    """A kustomization this renderer cannot build; the message names the file and the field."""


def build(folder: Path) -> list[Obj]:
    """The objects the kustomization in ``folder`` renders to (KustomizeError on anything unsupported)."""
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    spec = _load_one(path)
    unknown = sorted(set(spec) - SUPPORTED_FIELDS)
    if unknown:
        raise KustomizeError(f"{path}: unsupported field(s) {', '.join(unknown)}")
    objects = [obj for entry in spec.get("resources", []) for obj in _resource(folder, str(entry))]
    objects += _config_maps(folder, spec)
    for patch in spec.get("patches", []):
        _apply_patch(path, objects, patch)
    if "namespace" in spec:
        for obj in objects:
            if obj.get("kind") not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    if spec.get("nameSuffix"):
        _add_suffix(path, objects, str(spec["nameSuffix"]))
    for image in spec.get("images", []):
        _set_image(objects, image)
    return objects


REFERENCED_KINDS: Final[frozenset[str]] = frozenset(
    {"ConfigMap", "Secret", "ServiceAccount", "Service", "PersistentVolumeClaim", "TriggerAuthentication"}
)
"""Kinds that other objects name: kustomize would rewrite those references after a rename, this renderer
does not, so it refuses to rename them."""


def _add_suffix(path: Path, objects: list[Obj], suffix: str) -> None:
    """Append ``suffix`` to every object's name (KustomizeError for a kind others refer to by name)."""
    referenced = sorted({obj["kind"] for obj in objects} & REFERENCED_KINDS)
    if referenced:
        raise KustomizeError(f"{path}: nameSuffix on {', '.join(referenced)} (references are not rewritten)")
    for obj in objects:
        obj["metadata"]["name"] += suffix


def _load_one(path: Path) -> Obj:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise KustomizeError(f"{path}: expected a mapping")
    return data


def _resource(folder: Path, entry: str) -> list[Obj]:
    """The objects of one ``resources`` entry: a folder (built) or a YAML file (every document)."""
    target = (folder / entry).resolve()
    if target.is_dir():
        return build(target)
    if not target.is_file():
        raise KustomizeError(f"{folder / 'kustomization.yaml'}: resource {entry} not found")
    docs = [d for d in YAML(typ="safe").load_all(target.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if (
            not isinstance(doc, dict)
            or not {"apiVersion", "kind"} <= set(doc)
            or "name" not in doc.get("metadata", {})
        ):
            raise KustomizeError(f"{target}: every document needs apiVersion, kind and metadata.name")
    return docs


def _inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, refused when it leaves ``folder`` (kustomize's load restrictor)."""
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents:
        raise KustomizeError(f"{folder}: file {relative} is outside the kustomization's folder")
    if not path.is_file():
        raise KustomizeError(f"{folder}: file {relative} not found")
    return path


def _config_maps(folder: Path, spec: Obj) -> list[Obj]:
    """The ConfigMaps of ``configMapGenerator`` (files only, no hash suffix)."""
    generators = spec.get("configMapGenerator", [])
    if generators and not spec.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise KustomizeError(
            f"{folder}: configMapGenerator needs generatorOptions.disableNameSuffixHash: true"
        )
    maps = []
    for generator in generators:
        extra = sorted(set(generator) - {"name", "files"})
        if extra:
            raise KustomizeError(f"{folder}: configMapGenerator field(s) {', '.join(extra)} not supported")
        data = {}
        for item in generator.get("files", []):
            key, _, relative = str(item).rpartition("=")
            path = _inside(folder, relative)
            data[key or path.name] = path.read_text(encoding="utf-8")
        maps.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    return maps


def _apply_patch(path: Path, objects: list[Obj], patch: Obj) -> None:
    """Apply one inline JSON 6902 patch to every object its target (kind, name) selects."""
    target = patch.get("target", {})
    if set(target) - {"kind", "name"} or set(patch) - {"target", "patch"} or not target:
        raise KustomizeError(f"{path}: a patch needs a target of kind and name and an inline patch only")
    ops = YAML(typ="safe").load(str(patch.get("patch", "")))
    if not isinstance(ops, list):
        raise KustomizeError(f"{path}: patch on {target} is not a JSON 6902 list of operations")
    selected = [
        obj
        for obj in objects
        if obj["kind"] == target.get("kind", obj["kind"]) and obj["metadata"]["name"] == target.get("name")
    ]
    if not selected:
        raise KustomizeError(f"{path}: patch target {target} matches no resource")
    for obj in selected:
        for op in ops:
            json_patch(obj, op, where=f"{path}: {target}")


def _pointer(path: str, where: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"{where}: path {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _step(node: Any, key: str, where: str) -> Any:
    """The child ``key`` of a mapping or list (KustomizeError when absent)."""
    try:
        return node[int(key)] if isinstance(node, list) else node[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise KustomizeError(f"{where}: path element {key!r} not found") from None


def json_patch(document: Obj, op: Obj, where: str = "patch") -> None:
    """Apply one RFC 6902 operation (add, remove, replace, test) to ``document`` in place."""
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "test"):
        raise KustomizeError(f"{where}: op {kind!r} not supported (add, remove, replace, test)")
    *parents, last = _pointer(str(op.get("path", "")), where)
    node: Any = document
    for key in parents:
        node = _step(node, key, where)
    value = copy.deepcopy(op.get("value"))
    if kind == "test":
        if _step(node, last, where) != value:
            raise KustomizeError(f"{where}: test of {op['path']} failed")
    elif kind == "add" and isinstance(node, list):
        node.insert(len(node) if last == "-" else int(last), value)
    elif kind == "add":
        node[last] = value
    else:
        _step(node, last, where)  # remove / replace need an existing element
        if kind == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            node[int(last) if isinstance(node, list) else last] = value


def _pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload object (None for other kinds)."""
    if obj["kind"] not in POD_TEMPLATE_PATHS:
        return None
    node: Any = obj
    for key in POD_TEMPLATE_PATHS[obj["kind"]]:
        node = node.get(key, {})
    return node if isinstance(node, dict) else None


def _split_image(reference: str) -> tuple[str, str]:
    """(name, tag) of an image reference; the tag is '' when absent (a registry port is not a tag)."""
    name, colon, tag = reference.rpartition(":")
    return (name, tag) if colon and "/" not in tag else (reference, "")


def _set_image(objects: list[Obj], image: Obj) -> None:
    """Point every container whose image is ``image['name']`` (any tag) at newName:newTag."""
    for obj in objects:
        pod = _pod_spec(obj)
        for container in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
            name, tag = _split_image(container["image"])
            if name == image["name"]:
                new_name, new_tag = image.get("newName", name), image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
