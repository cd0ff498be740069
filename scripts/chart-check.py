#!/usr/bin/env python3
"""Checks the Helm chart, its renders, the example CRs and the generated manifests (`make chart-check`).

Run with the venv of scripts/install-tools.sh and `.tools/bin` first on PATH:

    PATH=$PWD/.tools/bin:$PATH .tools/venv/bin/python scripts/chart-check.py

Steps (each prints what it checks; every failure is printed and the exit status is 1):

  a. helm lint --strict charts/clawops, with the default values and with each charts/clawops/ci/*-values.yaml
  b. helm template with the same value sets: every rendered document validated (kubernetes-validate,
     strict) for Kubernetes 1.30 and 1.33; kinds it has no schema for are listed as skipped by name.
     Then invariants of the renders (one hardened Deployment, CRDs kept on uninstall, crds.install,
     leader election with replicas > 1, references between the objects, ...)
  c. every clawops.dev document in manifests/examples/*.yaml validated against the openAPIV3Schema
     of its CRD in crds/ (structural-schema semantics; unknown fields are errors), and mutated
     copies that must be rejected
  d. scripts/manifests.py --check: manifests/install.yaml and manifests/k3s/clawops-helmchart.yaml
     are what `make manifests` writes

Every check prints `ok` or `FAIL`; documents without a schema print `SKIP` with their name; `WARN`
marks a finding that does not fail the run. The last line is `chart-check: N passed, N failed, N skipped`.
Options: --only a,b,c,d runs some steps.
"""

from __future__ import annotations

import argparse
import copy
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Callable, Iterable

import jsonschema
import yaml
from referencing import Registry, Resource

import kubernetes_validate.utils as kv
from kubernetes_validate.version import __version__ as KV_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = "charts/clawops"
RELEASE = "clawops"
NAMESPACE = "clawops-system"
CRD_GROUP = "clawops.dev"
WANTED_K8S_VERSIONS = ["1.30.0", "1.33.0"]

# Kinds without a namespace: everything else in a render must carry metadata.namespace, since
# `kubectl apply -f manifests/install.yaml` puts objects without one into the kubeconfig's namespace.
CLUSTER_SCOPED = {
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "PersistentVolume", "IngressClass", "RuntimeClass", "APIService",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver", "Node",
}


# --------------------------------------------------------------------------------------------
# Reporting


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.warnings: list[str] = []

    def step(self, title: str) -> None:
        print(f"\n==> {title}", flush=True)

    def note(self, msg: str) -> None:
        print(f"    {msg}", flush=True)

    def ok(self, msg: str) -> None:
        self.passed += 1
        print(f"    ok    {msg}", flush=True)

    def fail(self, msg: str) -> None:
        self.failed.append(msg)
        lines = msg.splitlines() or [""]
        print(f"    FAIL  {lines[0]}", flush=True)
        for line in lines[1:]:
            print(f"          {line}", flush=True)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        lines = msg.splitlines() or [""]
        print(f"    WARN  {lines[0]}", flush=True)
        for line in lines[1:]:
            print(f"          {line}", flush=True)

    def skip(self, msg: str) -> None:
        self.skipped.append(msg)
        print(f"    SKIP  {msg}", flush=True)

    def check(self, cond: bool, msg: str, detail: str = "") -> bool:
        if cond:
            self.ok(msg)
        else:
            self.fail(msg + (f"\n{detail}" if detail else ""))
        return cond


R = Report()


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def run(cmd: list[str], check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=check)


def indent(text: str, prefix: str = "| ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def obj_name(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind')} {(ns + '/') if ns else ''}{meta.get('name')}"


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d]


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def json_path(path: Iterable) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


# --------------------------------------------------------------------------------------------
# CRD openAPIV3Schema (Kubernetes structural schema) -> JSON Schema 2020-12


# Keywords that mean the same in both. (exclusiveMinimum/Maximum are booleans in OpenAPI 3.0.)
_SAME = {
    "type", "format", "title", "description", "default", "enum", "maximum", "minimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf",
    "maxProperties", "minProperties", "required",
}
# Kubernetes extensions that do not change which values are valid here (CEL rules are not run).
_IGNORED_X = {
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
_IGNORED = {"example", "externalDocs"}

_OBJECT_META_REF = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def structural_to_jsonschema(node: dict, path: str = "", logic: bool = False) -> dict:
    """Translate one node of a CRD's openAPIV3Schema.

    - `nullable: true` allows null; without it null is an error (the API server would prune it).
    - objects with `properties` and no `additionalProperties` reject unknown fields (the API server
      would silently prune them, which hides typos), unless `x-kubernetes-preserve-unknown-fields`.
    - `x-kubernetes-int-or-string: true` accepts an integer or a string.
    - `x-kubernetes-embedded-resource` allows apiVersion, kind and metadata.
    - other x-kubernetes-* keywords (CEL validations, list and map types) are ignored.
    Inside allOf/anyOf/oneOf/not (`logic`) objects are not closed: those branches only add
    constraints to the fields that the node itself declares.
    """
    if not isinstance(node, dict):
        raise ValueError(f"{path or '(root)'}: schema node is not an object")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SAME:
            out[key] = copy.deepcopy(value)
        elif key in _IGNORED or key in _IGNORED_X or key in (
            "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
            "x-kubernetes-embedded-resource", "exclusiveMaximum", "exclusiveMinimum",
            "properties", "items", "additionalProperties", "allOf", "anyOf", "oneOf", "not",
        ):
            continue
        else:
            raise ValueError(f"{path or '(root)'}: keyword {key!r} is not handled by chart-check's structural schema translation")

    if node.get("exclusiveMaximum") is True and "maximum" in node:
        out["exclusiveMaximum"] = out.pop("maximum")
    if node.get("exclusiveMinimum") is True and "minimum" in node:
        out["exclusiveMinimum"] = out.pop("minimum")

    props = node.get("properties")
    if props is not None:
        out["properties"] = {k: structural_to_jsonschema(v, f"{path}.{k}", logic) for k, v in props.items()}
    if "items" in node:
        out["items"] = structural_to_jsonschema(node["items"], f"{path}[]", logic)
    addl = node.get("additionalProperties")
    if isinstance(addl, dict):
        out["additionalProperties"] = structural_to_jsonschema(addl, f"{path}.*", logic)
    elif isinstance(addl, bool):
        out["additionalProperties"] = addl
    for key in ("allOf", "anyOf", "oneOf"):
        if key in node:
            out[key] = [structural_to_jsonschema(s, f"{path}/{key}[{i}]", True) for i, s in enumerate(node[key])]
    if "not" in node:
        out["not"] = structural_to_jsonschema(node["not"], f"{path}/not", True)

    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("x-kubernetes-embedded-resource") is True:
        out.setdefault("properties", {})
        out["properties"].setdefault("apiVersion", {"type": "string"})
        out["properties"].setdefault("kind", {"type": "string"})
        out["properties"].setdefault("metadata", {"type": "object"})
    is_object = node.get("type") == "object" or (props is not None and "type" not in node)
    if is_object and not logic and not preserve and addl is None:
        out["additionalProperties"] = False
        out.setdefault("properties", {})

    nullable = node.get("nullable") is True
    if node.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        own_any_of = out.pop("anyOf", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}] + ([{"type": "null"}] if nullable else [])
        if own_any_of:  # the node's own anyOf stays as an extra constraint
            out["allOf"] = out.get("allOf", []) + [{"anyOf": own_any_of}]
    elif nullable and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
    return out


class CrdSchemas:
    """The CRDs of crds/*.yaml, by (group, version, kind)."""

    def __init__(self, crd_docs: list[dict], k8s_version: str) -> None:
        self.by_gvk: dict[tuple[str, str, str], tuple[str, dict]] = {}
        defs_dir = f"kubernetes-json-schema/v{k8s_version}-local-strict"
        definitions = kv.schema_contents(f"{defs_dir}/_definitions.json", k8s_version)
        self.registry = Resource.from_contents(definitions) @ Registry()
        for crd in crd_docs:
            spec = crd["spec"]
            kind = spec["names"]["kind"]
            for ver in spec["versions"]:
                raw = ver["schema"]["openAPIV3Schema"]
                schema = structural_to_jsonschema(raw)
                schema.setdefault("properties", {})
                meta_own = schema["properties"].get("metadata")
                schema["properties"]["apiVersion"] = {"const": f"{spec['group']}/{ver['name']}"}
                schema["properties"]["kind"] = {"const": kind}
                schema["properties"]["metadata"] = (
                    {"allOf": [{"$ref": _OBJECT_META_REF}, meta_own]} if meta_own else {"$ref": _OBJECT_META_REF}
                )
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
                jsonschema.Draft202012Validator.check_schema(schema)
                self.by_gvk[(spec["group"], ver["name"], kind)] = (crd["metadata"]["name"], schema)

    def knows(self, doc: dict) -> bool:
        av = str(doc.get("apiVersion", ""))
        return group_of(av) in {g for g, _, _ in self.by_gvk}

    def errors(self, doc: dict) -> list[str]:
        av = str(doc.get("apiVersion", ""))
        group, _, version = av.partition("/")
        key = (group, version, doc.get("kind"))
        if key not in self.by_gvk:
            return [f"no CRD in crds/ serves {doc.get('kind')} {av}"]
        _, schema = self.by_gvk[key]
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        errs = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        return [f"{json_path(e.absolute_path)}: {e.message}" for e in errs]


# --------------------------------------------------------------------------------------------
# Kubernetes built-in kinds (kubernetes-validate)


def k8s_versions() -> list[str]:
    have = set(kv.all_versions())
    versions = [v for v in WANTED_K8S_VERSIONS if v in have]
    if "1.30.0" not in versions:
        raise SystemExit(f"kubernetes-validate {KV_VERSION} has no schemas for Kubernetes 1.30 (has {sorted(have)})")
    return versions


def validate_builtin(doc: dict, versions: list[str]) -> tuple[list[str], bool]:
    """(errors, skipped): kubernetes-validate --strict for each version; skipped when it has no schema."""
    errs = []
    for v in versions:
        try:
            kv.validate(doc, v, strict=True)
        except kv.SchemaNotFoundError:
            return [], True
        except kv.ValidationError as e:
            errs.append(f"Kubernetes {e.version}: {json_path(e.absolute_path)}: {e.message}")
    return errs, False


def validate_docs(label: str, docs: list[dict], versions: list[str], crds: CrdSchemas) -> None:
    """Validate every document; unknown kinds are listed as skipped, never passed silently."""
    vs = ", ".join(major_minor(v) for v in versions)
    for doc in docs:
        name = obj_name(doc)
        if crds.knows(doc):
            errs = crds.errors(doc)
            R.check(not errs, f"{label}: {name} ({doc.get('apiVersion')}) valid against its CRD in crds/",
                    "\n".join(errs))
            continue
        errs, skipped = validate_builtin(doc, versions)
        if skipped:
            R.skip(f"{label}: {name} ({doc.get('apiVersion')}): kubernetes-validate {KV_VERSION} has no schema for this kind")
        else:
            R.check(not errs, f"{label}: {name} valid for Kubernetes {vs} (strict)", "\n".join(errs))


def major_minor(v: str) -> str:
    return ".".join(v.split(".")[:2])


# --------------------------------------------------------------------------------------------
# Step c: examples against the CRDs


def load_crds() -> list[dict]:
    docs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "crds", "*.yaml"))):
        docs += [d for d in load_docs(open(path, encoding="utf-8").read()) if d.get("kind") == "CustomResourceDefinition"]
    if not docs:
        raise SystemExit("no CustomResourceDefinition in crds/*.yaml (run `make crds`)")
    return docs


def step_c(crds: CrdSchemas, versions: list[str]) -> None:
    R.step("[c] translation of the CRD schemas (structural schema semantics) on a synthetic schema")
    synthetic = structural_to_jsonschema({
        "type": "object",
        "properties": {
            "size": {"x-kubernetes-int-or-string": True},
            "maybe": {"type": "string", "nullable": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "nested": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    })
    v = jsonschema.Draft202012Validator(synthetic)
    cases = [
        ("int-or-string takes 1", {"size": 1}, True),
        ("int-or-string takes \"1Gi\"", {"size": "1Gi"}, True),
        ("int-or-string refuses true", {"size": True}, False),
        ("nullable takes null", {"maybe": None}, True),
        ("non-nullable refuses null", {"nested": {"a": None}}, False),
        ("preserve-unknown-fields takes unknown fields", {"free": {"anything": [1]}}, True),
        ("additionalProperties schema is applied", {"map": {"k": "x"}}, False),
        ("unknown field at the top is an error", {"typo": 1}, False),
        ("unknown field nested is an error", {"nested": {"b": "x"}}, False),
    ]
    for what, value, valid in cases:
        R.check(v.is_valid(value) == valid, what)

    R.step("[c] crds/*.yaml: each CRD valid as a CustomResourceDefinition (kubernetes-validate, strict)")
    crd_docs = load_crds()
    validate_docs("crds/", crd_docs, versions, crds)

    R.step("[c] manifests/examples/*.yaml: clawops.dev documents against the openAPIV3Schema of their CRD")
    examples = sorted(glob.glob(os.path.join(ROOT, "manifests", "examples", "*.yaml")))
    if not examples:
        R.fail("no manifests/examples/*.yaml")
    agent = None
    kinds_seen = set()
    for path in examples:
        try:
            docs = load_docs(open(path, encoding="utf-8").read())
        except yaml.YAMLError as e:
            R.fail(f"{rel(path)} is not valid YAML: {e}")
            continue
        n_cr = sum(1 for d in docs if crds.knows(d))
        R.note(f"{rel(path)}: {len(docs)} documents, {n_cr} of group {CRD_GROUP}")
        validate_docs(rel(path), docs, versions, crds)
        for d in docs:
            if crds.knows(d):
                kinds_seen.add(d["kind"])
            if d.get("kind") == "Agent" and agent is None:
                agent = d
    known_kinds = {k for (_, _, k) in crds.by_gvk}
    missing = sorted(known_kinds - kinds_seen)
    if missing:
        R.note(f"no example uses kind(s) {', '.join(missing)}")

    R.step("[c] the CRD check rejects broken Agents (mutated copies of the first example Agent)")
    if agent is None:
        R.fail("no Agent in manifests/examples to mutate")
        return
    mutations: list[tuple[str, Callable[[dict], None], str]] = [
        ('spec.maxConcurrent: "two"', lambda a: a["spec"].__setitem__("maxConcurrent", "two"), "spec.maxConcurrent"),
        ("unknown field spec.modle (typo of model)", lambda a: a["spec"].__setitem__("modle", copy.deepcopy(a["spec"].get("model"))), "spec"),
        ("unknown field spec.model.primaryy", lambda a: a["spec"]["model"].__setitem__("primaryy", "x"), "spec.model"),
        ("missing required spec.model", lambda a: a["spec"].pop("model"), "spec"),
        ("unknown field metadata.nmae", lambda a: a["metadata"].__setitem__("nmae", "x"), "metadata"),
    ]
    for what, mutate, where in mutations:
        bad = copy.deepcopy(agent)
        mutate(bad)
        errs = crds.errors(bad)
        hit = [e for e in errs if e.startswith(where + ":")]
        R.check(bool(hit), f"rejected: Agent with {what}" + (f" -> {hit[0]}" if hit else ""),
                f"expected an error at {where}; got: {errs or 'no error'}")


# --------------------------------------------------------------------------------------------
# Helm


def helm() -> str:
    """The pinned helm of .tools/bin (scripts/install-tools.sh), else the first on PATH."""
    local = os.path.join(ROOT, ".tools", "bin", "helm")
    path = local if os.access(local, os.X_OK) else shutil.which("helm")
    if not path:
        raise SystemExit("helm not found in .tools/bin or on PATH (run `make tools`)")
    return path


def values_files() -> list[str]:
    return sorted(glob.glob(os.path.join(ROOT, CHART, "ci", "*-values.yaml")))


def value_sets() -> list[tuple[str, list[str]]]:
    sets = [("default values", [])]
    for f in values_files():
        sets.append((rel(f), ["-f", rel(f)]))
    return sets


def helm_template(args: list[str]) -> tuple[list[dict] | None, str]:
    p = run([helm(), "template", RELEASE, CHART, "--namespace", NAMESPACE] + args)
    if p.returncode != 0:
        return None, p.stderr + p.stdout
    try:
        return load_docs(p.stdout), p.stderr
    except yaml.YAMLError as e:
        return None, f"helm template printed invalid YAML: {e}"


def step_a() -> None:
    R.step(f"[a] helm lint --strict {CHART} ({helm()}, {run([helm(), 'version', '--short']).stdout.strip()})")
    for label, args in value_sets():
        p = run([helm(), "lint", "--strict", CHART, "--namespace", NAMESPACE] + args)
        out = (p.stdout + p.stderr).strip()
        bad_lines = [l for l in out.splitlines() if re.search(r"\[(WARNING|ERROR)\]", l)]
        R.check(p.returncode == 0 and not bad_lines, f"helm lint --strict {CHART} {' '.join(args)}".rstrip() + f" ({label})",
                indent(out))


def get_path(d: Any, *keys: Any, default: Any = None) -> Any:
    for k in keys:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and k < len(d):
            d = d[k]
        else:
            return default
    return d


def deep_merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def containers_of(pod_spec: dict) -> list[dict]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def check_render_invariants(label: str, docs: list[dict], values: dict) -> None:
    """What must hold for every value set."""
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)

    # Unique names per kind and namespace.
    seen: dict[tuple, int] = {}
    for d in docs:
        k = (d.get("apiVersion"), d.get("kind"), get_path(d, "metadata", "namespace"), get_path(d, "metadata", "name"))
        seen[k] = seen.get(k, 0) + 1
    dups = [f"{k[1]} {k[3]}" for k, n in seen.items() if n > 1]
    R.check(not dups, f"{label}: no object rendered twice", ", ".join(dups))

    # Namespaced objects carry the release namespace (kubectl apply -f install.yaml relies on it).
    no_ns = [obj_name(d) for d in docs if d.get("kind") not in CLUSTER_SCOPED and not crd_kind(d)
             and get_path(d, "metadata", "namespace") != NAMESPACE]
    R.check(not no_ns, f"{label}: every namespaced object has metadata.namespace: {NAMESPACE}",
            "without it: " + ", ".join(no_ns))

    # Exactly one Deployment, hardened.
    deps = by_kind.get("Deployment", [])
    R.check(len(deps) == 1, f"{label}: exactly one Deployment (got {len(deps)}: {', '.join(obj_name(d) for d in deps)})")
    for dep in deps:
        pod = get_path(dep, "spec", "template", "spec", default={}) or {}
        pod_sc = pod.get("securityContext") or {}
        for c in containers_of(pod):
            sc = c.get("securityContext") or {}
            cname = f"{obj_name(dep)} container {c.get('name')}"
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            where = "container" if "runAsNonRoot" in sc else "pod"
            R.check(non_root is True, f"{label}: {cname}: runAsNonRoot: true (from the {where} securityContext)",
                    f"securityContext: {sc}, pod securityContext: {pod_sc}")
            R.check(sc.get("readOnlyRootFilesystem") is True, f"{label}: {cname}: readOnlyRootFilesystem: true",
                    f"securityContext: {sc}")
            drop = get_path(sc, "capabilities", "drop", default=[]) or []
            R.check("ALL" in drop, f"{label}: {cname}: capabilities drop ALL", f"capabilities: {sc.get('capabilities')}")
            R.check(sc.get("allowPrivilegeEscalation") is False, f"{label}: {cname}: allowPrivilegeEscalation: false",
                    f"securityContext: {sc}")
        # References from the pod to rendered objects.
        sa = pod.get("serviceAccountName")
        sas = {get_path(d, "metadata", "name") for d in by_kind.get("ServiceAccount", [])}
        if get_path(values, "serviceAccount", "create", default=True) is False:
            want_sa = get_path(values, "serviceAccount", "name")
            R.check(sa == want_sa and sa not in sas,
                    f"{label}: serviceAccount.create=false: {obj_name(dep)} runs as the existing ServiceAccount {want_sa!r}, not rendered",
                    f"serviceAccountName {sa!r}, rendered ServiceAccounts {sorted(sas)}")
        else:
            R.check(sa in sas, f"{label}: {obj_name(dep)} runs as ServiceAccount {sa!r}, which the chart renders",
                    f"rendered ServiceAccounts: {sorted(sas)}")
        automount = pod.get("automountServiceAccountToken",
                            get_path(d_sa(by_kind, sa), "automountServiceAccountToken", default=True))
        R.check(automount is not False,
                f"{label}: {obj_name(dep)} mounts its ServiceAccount token (the operator talks to the API server)")
        # Service and PDB selectors match the pod labels.
        pod_labels = get_path(dep, "spec", "template", "metadata", "labels", default={}) or {}
        sel = get_path(dep, "spec", "selector", "matchLabels", default={}) or {}
        R.check(bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items()),
                f"{label}: {obj_name(dep)} selector {sel} matches its pod labels")
        for svc in by_kind.get("Service", []):
            ssel = get_path(svc, "spec", "selector", default={}) or {}
            R.check(bool(ssel) and all(pod_labels.get(k) == v for k, v in ssel.items()),
                    f"{label}: {obj_name(svc)} selector {ssel} matches the operator pods")
            ports = {c_p.get("name"): c_p.get("containerPort") for c in pod.get("containers") or []
                     for c_p in c.get("ports") or []}
            for sp in get_path(svc, "spec", "ports", default=[]) or []:
                tp = sp.get("targetPort", sp.get("port"))
                okp = tp in ports if isinstance(tp, str) else tp in ports.values()
                R.check(okp, f"{label}: {obj_name(svc)} port {sp.get('name') or sp.get('port')} targets container port {tp!r}",
                        f"container ports: {ports}")
        for pdb in by_kind.get("PodDisruptionBudget", []):
            psel = get_path(pdb, "spec", "selector", "matchLabels", default={}) or {}
            R.check(bool(psel) and all(pod_labels.get(k) == v for k, v in psel.items()),
                    f"{label}: {obj_name(pdb)} selector {psel} matches the operator pods")
            min_av = get_path(pdb, "spec", "minAvailable")
            max_un = get_path(pdb, "spec", "maxUnavailable")
            reps = get_path(dep, "spec", "replicas", default=1)
            evictable = (isinstance(min_av, int) and min_av < reps) or (isinstance(max_un, int) and max_un >= 1) \
                or isinstance(min_av, str) or isinstance(max_un, str)
            R.check(evictable, f"{label}: {obj_name(pdb)} lets a node drain evict a pod (replicas {reps}, "
                    f"minAvailable {min_av}, maxUnavailable {max_un})", "this PDB blocks every eviction")
            # A standby's /readyz is ready too (src/operator/http.rs), so the PDB counts every replica.
        for sm in by_kind.get("ServiceMonitor", []):
            msel = get_path(sm, "spec", "selector", "matchLabels", default={}) or {}
            svcs = [s for s in by_kind.get("Service", [])
                    if msel and all((get_path(s, "metadata", "labels", default={}) or {}).get(k) == v for k, v in msel.items())]
            R.check(bool(svcs), f"{label}: {obj_name(sm)} selector {msel} matches a rendered Service",
                    f"Service labels: {[get_path(s, 'metadata', 'labels') for s in by_kind.get('Service', [])]}")
            port_names = {p.get("name") for s in svcs for p in get_path(s, "spec", "ports", default=[]) or []}
            for ep in get_path(sm, "spec", "endpoints", default=[]) or []:
                if "port" in ep:
                    R.check(ep["port"] in port_names, f"{label}: {obj_name(sm)} endpoint port {ep['port']!r} is a named Service port",
                            f"Service ports: {sorted(filter(None, port_names))}")

        replicas = get_path(dep, "spec", "replicas", default=1)
        args = [a for c in pod.get("containers") or [] for a in (c.get("command") or []) + (c.get("args") or [])]
        env = {e.get("name"): e for c in pod.get("containers") or [] for e in c.get("env") or []}
        leader = "--leader-election" in args or str(get_path(env.get("CLAWOPS_LEADER_ELECTION") or {}, "value", default="")).lower() == "true"
        if replicas is not None and replicas > 1:
            R.check("--leader-election" in args, f"{label}: replicas {replicas}: the operator args contain --leader-election",
                    f"args: {args}")
        if leader:
            ns_ok = get_path(env.get("POD_NAMESPACE") or {}, "valueFrom", "fieldRef", "fieldPath") == "metadata.namespace" \
                or any(a.startswith("--lease-namespace") for a in args)
            R.check(ns_ok, f"{label}: with leader election the Lease namespace is the pod's (env POD_NAMESPACE from metadata.namespace)",
                    "without it the operator takes the Lease in namespace `default`")
            lease_ok = any(
                any(g in ("coordination.k8s.io", "*") for g in r.get("apiGroups") or [])
                and any(x in ("leases", "*") for x in r.get("resources") or [])
                for d in by_kind.get("Role", []) + by_kind.get("ClusterRole", []) for r in d.get("rules") or [])
            R.check(lease_ok, f"{label}: with leader election a (Cluster)Role grants coordination.k8s.io leases")

    # Bindings point at rendered roles and ServiceAccounts.
    roles = {("Role", get_path(d, "metadata", "name")) for d in by_kind.get("Role", [])} | \
            {("ClusterRole", get_path(d, "metadata", "name")) for d in by_kind.get("ClusterRole", [])}
    sas_ns = {(get_path(d, "metadata", "namespace"), get_path(d, "metadata", "name")) for d in by_kind.get("ServiceAccount", [])}
    for b in by_kind.get("RoleBinding", []) + by_kind.get("ClusterRoleBinding", []):
        ref = b.get("roleRef") or {}
        R.check((ref.get("kind"), ref.get("name")) in roles or ref.get("name", "").startswith("system:"),
                f"{label}: {obj_name(b)} roleRef {ref.get('kind')} {ref.get('name')} is rendered", f"roles: {sorted(roles)}")
        for s in b.get("subjects") or []:
            if s.get("kind") == "ServiceAccount":
                if get_path(values, "serviceAccount", "create", default=True) is False:
                    R.check((s.get("namespace"), s.get("name")) == (NAMESPACE, get_path(values, "serviceAccount", "name")),
                            f"{label}: {obj_name(b)} subject is the existing ServiceAccount {s.get('namespace')}/{s.get('name')}")
                    continue
                R.check((s.get("namespace"), s.get("name")) in sas_ns,
                        f"{label}: {obj_name(b)} subject ServiceAccount {s.get('namespace')}/{s.get('name')} is rendered",
                        f"ServiceAccounts: {sorted(sas_ns)}")

    # Switches in values.yaml turn their objects on and off.
    switches = [
        (("metrics", "serviceMonitor", "enabled"), ["ServiceMonitor"]),
        (("podDisruptionBudget", "enabled"), ["PodDisruptionBudget"]),
        (("rbac", "create"), ["ClusterRole", "ClusterRoleBinding"]),
        (("serviceAccount", "create"), ["ServiceAccount"]),
    ]
    for keys, kinds in switches:
        on = get_path(values, *keys)
        if not isinstance(on, bool):
            continue
        for kind in kinds:
            n = len(by_kind.get(kind, []))
            R.check((n > 0) == on, f"{label}: {'.'.join(keys)}={str(on).lower()}: {kind} {'rendered' if on else 'not rendered'} (got {n})")

    # CRDs: kept on uninstall and identical to crds/ (make crds).
    for crd in by_kind.get("CustomResourceDefinition", []):
        ann = get_path(crd, "metadata", "annotations", default={}) or {}
        R.check(ann.get("helm.sh/resource-policy") == "keep",
                f"{label}: {obj_name(crd)} has annotation helm.sh/resource-policy: keep", f"annotations: {ann}")


def d_sa(by_kind: dict, name: str) -> dict:
    for d in by_kind.get("ServiceAccount", []):
        if get_path(d, "metadata", "name") == name:
            return d
    return {}


def crd_kind(doc: dict) -> bool:
    return group_of(str(doc.get("apiVersion", ""))) == CRD_GROUP


def step_b(crds: CrdSchemas, versions: list[str]) -> None:
    chart_yaml = yaml.safe_load(open(os.path.join(ROOT, CHART, "Chart.yaml"), encoding="utf-8"))
    defaults = yaml.safe_load(open(os.path.join(ROOT, CHART, "values.yaml"), encoding="utf-8")) or {}
    crate_version = None
    m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8").read())
    if m:
        crate_version = m.group(1)

    R.step(f"[b] {CHART}/Chart.yaml")
    R.check(chart_yaml.get("name") == "clawops", f"chart name is clawops (got {chart_yaml.get('name')!r})")
    R.check(str(chart_yaml.get("appVersion")) == crate_version,
            f"appVersion {chart_yaml.get('appVersion')!r} equals the crate version {crate_version!r} (Cargo.toml)")
    R.check(chart_yaml.get("apiVersion") == "v2", f"Chart.yaml apiVersion v2 (got {chart_yaml.get('apiVersion')!r})")

    repo_crds = {d["metadata"]["name"]: d for d in load_crds()}
    for label, args in value_sets():
        vals = deep_merge(defaults, yaml.safe_load(open(os.path.join(ROOT, args[1]), encoding="utf-8")) or {}) if args else defaults
        R.step(f"[b] helm template {RELEASE} {CHART} --namespace {NAMESPACE} {' '.join(args)}".rstrip() + f" ({label})")
        docs, err = helm_template(args)
        if docs is None:
            R.fail(f"{label}: helm template failed\n{indent(err)}")
            continue
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d.get("kind")] = kinds.get(d.get("kind"), 0) + 1
        R.note(f"{len(docs)} documents: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
        missing_kind = [i for i, d in enumerate(docs) if not d.get("kind") or not d.get("apiVersion")]
        R.check(not missing_kind, f"{label}: every document has apiVersion and kind", f"documents {missing_kind}")
        validate_docs(label, docs, versions, crds)
        check_render_invariants(label, docs, vals)

        crd_docs = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        install_crds = get_path(vals, "crds", "install", default=True)
        if install_crds is False:
            R.check(not crd_docs, f"{label}: crds.install=false renders no CRD", f"rendered: {[obj_name(d) for d in crd_docs]}")
        elif install_crds is True:
            names = sorted(get_path(d, "metadata", "name") for d in crd_docs)
            R.check(names == sorted(repo_crds), f"{label}: the CRDs rendered are those of crds/ ({len(repo_crds)})",
                    f"rendered {names}, crds/ has {sorted(repo_crds)}")
            for d in crd_docs:
                want = repo_crds.get(get_path(d, "metadata", "name"))
                if want is not None:
                    R.check(d.get("spec") == want.get("spec"), f"{label}: {obj_name(d)} spec is identical to crds/ (make crds)",
                            "the chart's copy of the CRD drifted from crds/")
        if vals.get("watchNamespace"):
            dep = next((d for d in docs if d.get("kind") == "Deployment"), {})
            conts = get_path(dep, "spec", "template", "spec", "containers", default=[]) or []
            args_ = [a for c in conts for a in (c.get("command") or []) + (c.get("args") or [])]
            envs = {e.get("name"): e.get("value") for c in conts for e in c.get("env") or []}
            wn = vals["watchNamespace"]
            R.check(envs.get("WATCH_NAMESPACE") == wn or f"--namespace={wn}" in args_ or
                    any(a == "--namespace" and b == wn for a, b in zip(args_, args_[1:])),
                    f"{label}: watchNamespace {wn!r} reaches the operator (--namespace or WATCH_NAMESPACE)",
                    f"args {args_}, env {envs}")

    R.step("[b] value overrides that the invariants depend on")
    replicas_key = next((k for k in ("replicaCount", "replicas") if k in defaults), None)
    # Each override is rendered and held to the same invariants (with crds.install=false no CRD;
    # with replicas 2 leader election), after checking that the override took effect.
    def replicas_of(docs: list[dict]) -> list:
        return [get_path(d, "spec", "replicas") for d in docs if d.get("kind") == "Deployment"]

    overrides: list[tuple[str, list[str], Callable[[list[dict]], tuple[bool, str]]]] = [
        ("--set crds.install=false", ["--set", "crds.install=false"],
         lambda docs: (not any(d.get("kind") == "CustomResourceDefinition" for d in docs), "renders no CRD")),
    ]
    if replicas_key:
        overrides.append((f"--set {replicas_key}=2", ["--set", f"{replicas_key}=2"],
                          lambda docs: (replicas_of(docs) == [2], f"the Deployment has replicas 2 (got {replicas_of(docs)})")))
    else:
        R.fail(f"{CHART}/values.yaml has neither replicaCount nor replicas")
    for label, args, pred in overrides:
        key, _, raw = args[1].partition("=")
        override: dict = {}
        node = override
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
        docs, err = helm_template(args)
        if docs is None:
            R.fail(f"{label}: helm template failed\n{indent(err)}")
            continue
        okv, what = pred(docs)
        R.check(okv, f"{label}: {what}")
        check_render_invariants(label, docs, deep_merge(defaults, override))

    if os.path.exists(os.path.join(ROOT, CHART, "values.schema.json")):
        R.step(f"[b] {CHART}/values.schema.json refuses bad values")
        bad = [["--set", "crds.install=maybe"], ["--set", "notAValue=1"]]
        if replicas_key:
            bad.insert(0, ["--set", f"{replicas_key}=two"])
        for args in bad:
            docs, err = helm_template(args)
            R.check(docs is None, f"helm template {' '.join(args)} fails"
                    + (f": {err.strip().splitlines()[0][:160]}" if docs is None and err.strip() else ""),
                    "values.schema.json accepted it")
    else:
        R.fail(f"{CHART}/values.schema.json is missing")


# --------------------------------------------------------------------------------------------
# Step d


def step_d() -> None:
    R.step("[d] scripts/manifests.py --check: the generated manifests are up to date with the chart")
    p = run([sys.executable, "scripts/manifests.py", "--check"])
    out = (p.stdout + p.stderr).strip()
    R.check(p.returncode == 0, "manifests/install.yaml and manifests/k3s/clawops-helmchart.yaml are up to date",
            indent(out))

    R.step("[d] manifests/install.yaml and the chart embedded in manifests/k3s/clawops-helmchart.yaml")
    install = os.path.join(ROOT, "manifests", "install.yaml")
    helmchart = os.path.join(ROOT, "manifests", "k3s", "clawops-helmchart.yaml")
    if not (os.path.exists(install) and os.path.exists(helmchart)):
        R.fail("manifests/install.yaml or manifests/k3s/clawops-helmchart.yaml is missing; run `make manifests`")
        return
    try:
        docs = load_docs(open(install, encoding="utf-8").read())
        hc = load_docs(open(helmchart, encoding="utf-8").read())
    except yaml.YAMLError as e:
        R.fail(f"the generated manifests are not YAML: {e}")
        return
    R.check(bool(docs) and docs[0].get("kind") == "Namespace" and get_path(docs[0], "metadata", "name") == NAMESPACE,
            f"manifests/install.yaml starts with Namespace {NAMESPACE} ({len(docs)} documents)")
    R.check(len(hc) == 1 and hc[0].get("apiVersion") == "helm.cattle.io/v1" and hc[0].get("kind") == "HelmChart"
            and get_path(hc[0], "metadata", "namespace") == "kube-system"
            and get_path(hc[0], "spec", "targetNamespace") == NAMESPACE
            and get_path(hc[0], "spec", "createNamespace") is True
            and isinstance(get_path(hc[0], "spec", "chartContent"), str)
            and isinstance(get_path(hc[0], "spec", "valuesContent"), str),
            "manifests/k3s/clawops-helmchart.yaml: one helm.cattle.io/v1 HelmChart in kube-system, "
            f"targetNamespace {NAMESPACE}, createNamespace, chartContent, valuesContent")
    if len(hc) != 1:
        return
    import base64
    import tempfile
    try:
        values_content = yaml.safe_load(get_path(hc[0], "spec", "valuesContent") or "")
        R.check(values_content is None or isinstance(values_content, dict),
                "spec.valuesContent is a YAML values file", repr(values_content))
    except yaml.YAMLError as e:
        R.fail(f"spec.valuesContent is not YAML: {e}")
    with tempfile.TemporaryDirectory() as tmp:
        tgz = os.path.join(tmp, "clawops.tgz")
        with open(tgz, "wb") as f:
            f.write(base64.b64decode(get_path(hc[0], "spec", "chartContent") or ""))
        p = run([helm(), "show", "chart", tgz])
        shown = yaml.safe_load(p.stdout) if p.returncode == 0 else None
        R.check(p.returncode == 0 and isinstance(shown, dict) and shown.get("name") == "clawops",
                f"helm loads spec.chartContent as chart {get_path(shown, 'name')} {get_path(shown, 'version')}",
                indent(p.stderr + p.stdout))
        from_tgz = run([helm(), "template", RELEASE, tgz, "--namespace", NAMESPACE])
        from_dir = run([helm(), "template", RELEASE, CHART, "--namespace", NAMESPACE])
        same = from_tgz.returncode == 0 and from_tgz.stdout == from_dir.stdout
        R.check(same, "the embedded chart renders exactly as charts/clawops (helm template, default values)",
                indent(from_tgz.stderr) if from_tgz.returncode else "the renders differ")
        R.check(from_dir.returncode == 0 and docs[1:] == load_docs(from_dir.stdout),
                "manifests/install.yaml holds exactly the default render after its Namespace")


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated steps to run (default a,b,c,d)")
    opts = ap.parse_args()
    steps = set(opts.only.split(","))
    os.chdir(ROOT)

    versions = k8s_versions()
    print(f"chart-check: kubernetes-validate {KV_VERSION} (Kubernetes {', '.join(major_minor(v) for v in versions)}), "
          f"jsonschema {importlib.metadata.version('jsonschema')}")
    crds = CrdSchemas(load_crds(), versions[0])

    chart_present = os.path.exists(os.path.join(ROOT, CHART, "Chart.yaml"))
    if not chart_present and steps & {"a", "b", "d"}:
        R.step(f"{CHART}/Chart.yaml")
        R.fail(f"{CHART}/Chart.yaml does not exist: steps a, b and d need the chart")
        steps -= {"a", "b", "d"}
    if "a" in steps:
        step_a()
    if "b" in steps:
        step_b(crds, versions)
    if "c" in steps:
        step_c(crds, versions)
    if "d" in steps:
        step_d()

    print()
    if R.skipped:
        print(f"chart-check: {len(R.skipped)} document(s) skipped (no schema):")
        for s in R.skipped:
            print(f"  - {s}")
    if R.warnings:
        print(f"chart-check: {len(R.warnings)} warning(s):")
        for w in R.warnings:
            print(f"  - {w.splitlines()[0]}")
    if R.failed:
        print(f"chart-check: {len(R.failed)} check(s) FAILED:")
        for f in R.failed:
            print(f"  - {f.splitlines()[0]}")
    print(f"chart-check: {R.passed} passed, {len(R.failed)} failed, {len(R.skipped)} skipped")
    return 1 if R.failed else 0


if __name__ == "__main__":
    sys.exit(main())
