"""Render deploy/kubernetes (the base and every overlay) and check it: `make kube-check`.

Each rendering (`kubectl kustomize`) is validated offline against Kubernetes 1.32's schemas with
`kubernetes-validate --strict`, then held to what docs/kubernetes.md promises: no Secret
in the repository, every pod non-root and locked down with requests and limits, no init container,
the app's shutdown within its grace period, its worker count explicit, its writable folders in
memory, no prepared statements through PgBouncer, a migrations Job without the signing key, and
every database connection (the service's URLs, PgBouncer's both ways) over verified TLS.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

KUBERNETES_VERSION = "1.32.0"
ROOT = Path(__file__).resolve().parent
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
DATABASE_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URL")
# PgBouncer's client side may only require TLS (it has no client certificates to verify).
CLIENT_TLS_MODES = {"require", "verify-ca", "verify-full"}


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
    if "pgbouncer" in config.get("DATABASE_URL", "") and (
        config.get("DATABASE_PREPARED_STATEMENTS") != "off"
    ):
        yield "DATABASE_URL goes through PgBouncer with prepared statements on"
    env = {variable["name"]: variable.get("value") for variable in container.get("env", [])}
    in_memory = {
        mount["mountPath"]
        for mount in container.get("volumeMounts", [])
        for volume in pod.get("volumes", [])
        if volume["name"] == mount["name"] and volume.get("emptyDir", {}).get("medium") == "Memory"
    }
    for variable, default in (("PROMETHEUS_MULTIPROC_DIR", None), ("TMPDIR", "/tmp")):
        folder = env.get(variable) or default
        if folder not in in_memory:
            yield f"{variable} ({folder}) is not an in-memory emptyDir"
    probes = {
        probe: container.get(probe, {}).get("httpGet", {}).get("path")
        for probe in ("livenessProbe", "readinessProbe")
    }
    if probes != {"livenessProbe": "/health/live", "readinessProbe": "/health/ready"}:
        yield f"probes are {probes}"


def migration_problems(job: dict[str, Any]) -> Iterator[str]:
    """The migrations Job runs init-db with the database settings alone."""
    for container in job["spec"]["template"]["spec"]["containers"]:
        if "init-db" not in container.get("command", []):
            yield f"Job/{job['metadata']['name']}: does not run init-db"
        if any("secretRef" in source for source in container.get("envFrom", [])):
            yield f"Job/{job['metadata']['name']}: takes a whole Secret (the signing key too)"
        for variable in container.get("env", []):
            if variable["name"].startswith("JWT_"):
                yield f"Job/{job['metadata']['name']}: has {variable['name']}"


def tls_problems(config_maps: list[dict[str, Any]]) -> Iterator[str]:
    """Database traffic crosses the network: TLS, with the server's certificate and name checked."""
    for config_map in config_maps:
        where = f"ConfigMap/{config_map['metadata']['name']}"
        data = config_map.get("data", {})
        for variable in DATABASE_VARIABLES:
            if variable not in data:
                continue
            query = parse_qs(urlsplit(data[variable]).query)
            if query.get("sslmode") != ["verify-full"]:
                yield f"{where}: {variable} has no sslmode=verify-full"
            elif not query.get("sslrootcert"):
                yield f"{where}: {variable} has no sslrootcert (the mounted CA)"
        if "pgbouncer.ini" in data:
            ini = dict(
                (key.strip(), value.strip())
                for key, _, value in (
                    line.partition("=") for line in data["pgbouncer.ini"].splitlines()
                )
                if not key.lstrip().startswith(";")
            )
            if ini.get("server_tls_sslmode") != "verify-full":
                yield f"{where}: PgBouncer's server_tls_sslmode is not verify-full"
            if ini.get("client_tls_sslmode") not in CLIENT_TLS_MODES:
                yield f"{where}: PgBouncer does not require TLS of its clients"


def problems(documents: list[dict[str, Any]]) -> Iterator[str]:
    """Everything one rendering breaks of the promises above."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    for secret in by_kind.get("Secret", []):
        yield f"Secret/{secret['metadata']['name']}: secrets are created outside the repository"
    yield from tls_problems(by_kind.get("ConfigMap", []))
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
    jobs = by_kind.get("Job", [])
    if not jobs:
        yield "no migrations Job"
    for job in jobs:
        yield from migration_problems(job)
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
