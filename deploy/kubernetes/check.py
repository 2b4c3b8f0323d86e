"""Render deploy/kubernetes (the base and every overlay) and check it: `make kube-check`.

Each rendering (`kubectl kustomize`) is validated offline against Kubernetes 1.32's schemas with
`kubernetes-validate --strict`, then held to what SPEC 10 and docs/kubernetes.md promise: no Secret
in the repository, every pod non-root and locked down with requests and limits, no init container,
the app's shutdown within its grace period and its worker count explicit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.32.0"
ROOT = Path(__file__).resolve().parent
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


def renderings() -> Iterator[Path]:
    """The base, then each overlay."""
    yield ROOT / "base"
    yield from sorted(path.parent for path in (ROOT / "overlays").glob("*/kustomization.yaml"))


def validate(name: str, rendered: str) -> None:
    """Strict schema validation, offline; raises on the first rendering that fails."""
    validator = Path(sys.executable).with_name("kubernetes-validate")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-") as file:
        file.write(rendered)
        file.flush()
        subprocess.run(
            [str(validator), "--strict", "-k", KUBERNETES_VERSION, "--quiet", file.name],
            check=True,
        )


def pod_problems(kind: str, name: str, pod: dict[str, Any]) -> Iterator[str]:
    """What a workload's pod template lacks of the locked-down pod the docs promise."""
    where = f"{kind}/{name}"
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True:
        yield f"{where}: the pod is not runAsNonRoot"
    if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        yield f"{where}: no RuntimeDefault seccomp profile"
    if pod.get("initContainers"):
        yield f"{where}: has init containers (migrations run as a Job)"
    for container in pod["containers"]:
        at = f"{where} container {container['name']}"
        context = container.get("securityContext", {})
        if context.get("readOnlyRootFilesystem") is not True:
            yield f"{at}: root filesystem not read-only"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{at}: privilege escalation not refused"
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            yield f"{at}: capabilities not all dropped"
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(bound, {})):
                yield f"{at}: no cpu and memory {bound}"
        for mount in container.get("volumeMounts", []):
            volume = next(v for v in pod.get("volumes", []) if v["name"] == mount["name"])
            if "emptyDir" in volume and volume["emptyDir"].get("medium") != "Memory":
                yield f"{at}: emptyDir {mount['name']} is not in memory"


def app_problems(deployment: dict[str, Any], config: dict[str, str]) -> Iterator[str]:
    """The app's shutdown fits its grace period, and its worker count is explicit."""
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "encounters")
    sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(config.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
    grace = pod["terminationGracePeriodSeconds"]
    if not grace > sleep + graceful:
        yield f"terminationGracePeriodSeconds {grace} <= preStop {sleep} + graceful {graceful}"
    if not config.get("WEB_CONCURRENCY"):
        yield "WEB_CONCURRENCY is not set"
    probes = {
        probe: container.get(probe, {}).get("httpGet", {}).get("path")
        for probe in ("livenessProbe", "readinessProbe")
    }
    if probes != {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}:
        yield f"probes are {probes}"


def problems(documents: list[dict[str, Any]]) -> Iterator[str]:
    """Everything one rendering breaks of the promises above."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    for secret in by_kind.get("Secret", []):
        yield f"Secret/{secret['metadata']['name']}: secrets are created outside the repository"
    for kind in WORKLOADS & by_kind.keys():
        for workload in by_kind[kind]:
            pod = workload["spec"]["template"]["spec"]
            yield from pod_problems(kind, workload["metadata"]["name"], pod)
    app = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "encounters"]
    if len(app) != 1:
        yield "no Deployment named encounters"
        return
    config_name = next(
        source["configMapRef"]["name"]
        for container in app[0]["spec"]["template"]["spec"]["containers"]
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    )
    config = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == config_name)
    yield from app_problems(app[0], config["data"])
    if "HorizontalPodAutoscaler" not in by_kind or "PodDisruptionBudget" not in by_kind:
        yield "no HorizontalPodAutoscaler or PodDisruptionBudget"


def main() -> int:
    """Check every rendering; print one line each, and every problem found."""
    failed = False
    for directory in renderings():
        name = directory.relative_to(ROOT).as_posix()
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(directory)], check=True, capture_output=True, text=True
        ).stdout
        validate(name.replace("/", "-"), rendered)
        documents = [d for d in yaml.safe_load_all(rendered) if d]
        found = list(problems(documents))
        for problem in found:
            print(f"kube-check: {name}: {problem}", file=sys.stderr)
        failed = failed or bool(found)
        kinds = sorted({d["kind"] for d in documents})
        print(
            f"kube-check: {name}: {len(documents)} objects ({', '.join(kinds)}): "
            + ("FAILED" if found else f"valid for Kubernetes {KUBERNETES_VERSION} (strict)")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
