"""The README read like a user would: every `sh` block of README.md and docs/*.md, run as written.

How the Markdown tells this test what to do:
- Only ```sh (or ```bash) blocks run. One file is one bash script (`set -euo pipefail`), its blocks in
  order, so what one block sets is there in the next, as in one terminal.
- `<!-- server: URL -->` right before a block: a long-running server, which a user starts in a second
  terminal. It runs in the background, in its own process group, until URL answers (60 s at most),
  and is stopped (SIGTERM to its group) when the file's script ends.
- `<!-- illustration -->` right before a block: no command (sample output, a configuration, code to
  adapt). `<!-- skip: why -->`: commands this test does not run (the suite itself, minutes-long
  benchmarks, hosts that are not here). Keep those few.
- Every port written as `127.0.0.1:PORT` or `localhost:PORT` in a file becomes a free port, everywhere
  in that file (so the walk-throughs run beside `make run`); `make run` gets it as RUN_PORT.
- `curl` fails on an HTTP error status (`--fail-with-body`), so an example that drifts fails here.

It runs in a fresh copy of the repository (the files git tracks, and untracked ones it does not
ignore, as they are in the working tree) that shares this checkout's `.venv` through a symlink
(README_TEST_VENV names another), with none of the caller's JWT_, DATABASE_ or make variables.
`make readme-test` runs it (`.ci/run` does); `make test` leaves it out (the `readme` marker).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.dataset import Dataset
from tests.live import free_port
from tests.tokens import Tokens

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"sh", "bash"}
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(server|illustration|skip)\b:?\s*(.*?)\s*-->\s*$")
PORT = re.compile(r"(?:127\.0\.0\.1|localhost):(\d{2,5})\b")
COMMAND_LINE = re.compile(r"^\s*(\$ |curl |\.venv/|make )")
SCRIPT_SECONDS = 300

PRELUDE = r"""set -euo pipefail
_servers=()
_stop() {
    local pid
    for pid in "${_servers[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${_servers[@]}"; do
        for _ in $(seq 150); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    done
}
trap _stop EXIT
_serve() {  # _serve URL SCRIPT LOG
    setsid bash "$2" >"$3" 2>&1 </dev/null &
    local pid=$!
    _servers+=("$pid")
    for _ in $(seq 600); do
        if command curl -s -o /dev/null "$1"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then echo "server stopped before $1 answered:"; cat "$3"; return 1; fi
        sleep 0.1
    done
    echo "no answer from $1 within 60 s:"; cat "$3"; return 1
}
curl() { command curl --fail-with-body "$@"; }
"""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts, its language, its marker (if any) and its text."""

    line: int
    language: str
    marker: str | None
    argument: str
    text: str


def blocks(document: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with the marker right before it."""
    lines = document.read_text().splitlines()
    found: list[Block] = []
    marker: tuple[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            end = index + 1
            while not lines[end].startswith("```"):
                end += 1
            kind, argument = marker or (None, "")
            text = "\n".join(lines[index + 1 : end])
            found.append(Block(index + 1, fence.group(1), kind, argument, text))
            marker, index = None, end + 1
            continue
        matched = MARKER.match(line)
        marker = (matched.group(1), matched.group(2)) if matched else None
        index += 1
    return found


def runnable(document: Path) -> list[Block]:
    """The blocks this test runs."""
    return [
        b
        for b in blocks(document)
        if b.language in RUN and b.marker not in ("illustration", "skip")
    ]


def script(document: Path, workspace: Path) -> tuple[str, dict[str, str]]:
    """The document's blocks as one bash script, with its ports mapped to free ones."""
    chosen = runnable(document)
    ports = {port for block in chosen for port in PORT.findall(f"{block.argument}\n{block.text}")}
    mapping = {port: str(free_port()) for port in sorted(ports)}

    def mapped(text: str) -> str:
        for port, free in mapping.items():
            text = re.sub(rf"\b{port}\b", free, text)
        return text

    parts = [PRELUDE]
    for number, block in enumerate(chosen):
        parts.append(f"echo '## {document.name}:{block.line}'")
        if block.marker == "server":
            server = workspace / f"server-{number}.sh"
            server.write_text(f"set -euo pipefail\n{mapped(block.text).strip()}\n")
            log = workspace / f"server-{number}.log"
            parts.append(f"_serve '{mapped(block.argument)}' '{server}' '{log}'")
        else:
            parts.append(mapped(block.text))
    environment = {"RUN_PORT": mapping["8000"]} if "8000" in mapping else {}
    return "\n".join(parts) + "\n", environment


def fresh_copy(target: Path) -> Path:
    """The repository's files as they are now, in `target`, sharing this checkout's .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # mtimes too: make sees .venv as up to date
    venv = Path(os.environ.get("README_TEST_VENV") or ROOT / ".venv")
    (target / ".venv").symlink_to(venv.resolve())
    return target


def user_environment() -> dict[str, str]:
    """The caller's environment without the settings a new user would not have."""
    dropped = ("JWT_", "DATABASE_", "TEST_DATABASE_", "PROMETHEUS_", "MAKE", "MFLAGS", "FLASK_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    environment.pop("PYTEST_CURRENT_TEST", None)
    return environment


def test_marked_blocks_only_where_a_marker_is_needed() -> None:
    """A block of commands in another language would silently never run: it must be marked."""
    unmarked = [
        f"{document.name}:{block.line}"
        for document in DOCUMENTS
        for block in blocks(document)
        if block.language not in RUN
        and block.marker is None
        and any(COMMAND_LINE.match(line) for line in block.text.splitlines())
    ]
    assert not unmarked, f"commands in blocks that do not run; mark or fix them: {unmarked}"


def test_no_link_points_outside_the_repository() -> None:
    outside = [
        f"{document.name}: {target}"
        for document in DOCUMENTS
        for target in re.findall(r"\]\(([^)#]+)", document.read_text())
        if not target.startswith(("http://127.0.0.1", "mailto:"))
        and (
            "://" in target
            or not (document.parent / target).resolve().is_relative_to(ROOT)
            or not (document.parent / target).exists()
        )
    ]
    assert not outside


def test_the_import_example_of_docs_data_is_the_file_in_the_repository() -> None:
    example = next(b for b in blocks(ROOT / "docs" / "data.md") if b.language == "json")
    assert example.text + "\n" == (ROOT / "docs" / "example-import.json").read_text()


@pytest.mark.readme
@pytest.mark.parametrize(
    "document", [d for d in DOCUMENTS if runnable(d)], ids=lambda d: d.relative_to(ROOT).as_posix()
)
def test_the_commands_run_as_written(document: Path, tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "clone")
    workspace = tmp_path / "work"
    workspace.mkdir()
    text, extra = script(clone / document.relative_to(ROOT), workspace)
    (workspace / "script.sh").write_text(text)
    finished = subprocess.run(
        ["bash", str(workspace / "script.sh")],
        cwd=clone,
        env={**user_environment(), **extra},
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, (
        f"{document.name} failed (exit {finished.returncode}):\n{output[-6000:]}"
    )


def test_the_readme_sample_answer_has_the_keys_the_service_sends(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    sample = next(b for b in blocks(ROOT / "README.md") if b.language == "json")
    shown = json.loads(sample.text.replace(",…]", "]"))[0]
    sent = client.get("/users/me/encounters", headers=tokens.header()).get_json()[0]
    assert list(shown) == list(sent)
    assert {key: type(value) for key, value in shown.items()} == {
        key: type(value) for key, value in sent.items()
    }
