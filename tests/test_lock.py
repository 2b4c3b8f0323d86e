"""The lockfiles cover setup.cfg: a dependency added there without `make lock` fails here."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$", re.MULTILINE)


def _name(requirement: str) -> str:
    """A requirement's project name, normalized as PEP 503 does."""
    name = re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _setup() -> configparser.ConfigParser:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    return setup


# The dev lock holds every extra setup.cfg declares (`make lock`): deploy's too, not a chosen few.
EXTRAS = tuple(_setup()["options.extras_require"])


def _declared(*extras: str) -> set[str]:
    setup = _setup()
    sections = [setup["options"]["install_requires"]]
    sections += [setup["options.extras_require"][extra] for extra in extras]
    return {_name(line) for text in sections for line in text.splitlines() if line.strip()}


def _pinned(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {_name(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.txt", ()), ("requirements-dev.txt", EXTRAS)],
)
def test_every_declared_dependency_is_pinned(lock: str, extras: tuple[str, ...]) -> None:
    missing = _declared(*extras) - set(_pinned(lock))
    assert not missing, f"{lock} lacks {sorted(missing)}: run `make lock` and commit both files"


def test_the_dev_lock_pins_the_runtime_lock_versions() -> None:
    runtime, dev = _pinned("requirements.txt"), _pinned("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_make_lock_compiles_every_extra() -> None:
    # The dev lock's command (the client's lock has a command, and extras, of its own).
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (command,) = [
        line for line in makefile.splitlines() if "--output-file requirements-dev" in line
    ]
    assert sorted(re.findall(r"--extra (\w+)", command)) == sorted(EXTRAS)


def test_the_client_lock_covers_its_pyproject_at_the_dev_locks_versions() -> None:
    """clients/python/requirements-test.txt: what `make client-test` installs, hash-pinned."""
    project = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    client, dev = _pinned("clients/python/requirements-test.txt"), _pinned("requirements-dev.txt")
    missing = {_name(requirement) for requirement in declared} - set(client)
    assert not missing, f"the client's lock lacks {sorted(missing)}: run `make lock`"
    shared = set(client) & set(dev)
    assert "httpx" in shared
    assert {name: client[name] for name in shared} == {name: dev[name] for name in shared}
