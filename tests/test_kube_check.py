"""`make kube-check` (deploy/kubernetes/check.py) fails on database traffic without verified TLS."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.live import ROOT

OVERLAY = ROOT / "deploy/kubernetes/overlays/example"
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")


def load_checker() -> ModuleType:
    """deploy/kubernetes/check.py, which is a script, not a package."""
    spec = importlib.util.spec_from_file_location("kube_check", ROOT / "deploy/kubernetes/check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """The example overlay, as `kubectl kustomize` renders it."""
    text = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAY)], check=True, capture_output=True, text=True
    ).stdout
    return [document for document in yaml.safe_load_all(text) if document]


def config_map(documents: list[dict[str, Any]], prefix: str) -> dict[str, str]:
    """The data of the ConfigMap whose (hashed) name starts with `prefix`-."""
    return next(
        d["data"]
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].rsplit("-", 1)[0] == prefix
    )


def without_tls(documents: list[dict[str, Any]]) -> None:
    data = config_map(documents, "encounters")
    data["DATABASE_URL"] = data["DATABASE_URL"].split("?")[0]


def require_only(documents: list[dict[str, Any]]) -> None:
    data = config_map(documents, "encounters")
    data["DATABASE_REPLICA_URL"] = data["DATABASE_REPLICA_URL"].replace("verify-full", "require")


def migrations_without_ca(documents: list[dict[str, Any]]) -> None:
    data = config_map(documents, "encounters-migrations")
    data["DATABASE_URL"] = data["DATABASE_URL"].split("&sslrootcert")[0]


def pooler_unverified(documents: list[dict[str, Any]]) -> None:
    data = config_map(documents, "encounters-pgbouncer")
    ini = data["pgbouncer.ini"]
    data["pgbouncer.ini"] = ini.replace(
        "server_tls_sslmode = verify-full", "server_tls_sslmode = prefer"
    )


def pooler_plaintext_clients(documents: list[dict[str, Any]]) -> None:
    data = config_map(documents, "encounters-pgbouncer")
    data["pgbouncer.ini"] = data["pgbouncer.ini"].replace("client_tls_sslmode = require", "")


def test_the_example_overlay_passes(rendered: list[dict[str, Any]]) -> None:
    assert list(load_checker().problems(rendered)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (without_tls, "DATABASE_URL has no sslmode=verify-full"),
        (require_only, "DATABASE_REPLICA_URL has no sslmode=verify-full"),
        (migrations_without_ca, "DATABASE_URL has no sslrootcert"),
        (pooler_unverified, "server_tls_sslmode is not verify-full"),
        (pooler_plaintext_clients, "PgBouncer does not require TLS of its clients"),
    ],
)
def test_database_traffic_without_verified_tls_fails_the_check(
    rendered: list[dict[str, Any]], change: Callable[[list[dict[str, Any]]], None], problem: str
) -> None:
    documents = copy.deepcopy(rendered)
    change(documents)
    found = list(load_checker().problems(documents))
    assert len(found) == 1 and problem in found[0], found
