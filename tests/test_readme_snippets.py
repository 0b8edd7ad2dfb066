"""Every ```bash and ```python block of the README and the examples README runs as written.

A reader pastes the blocks in order into a fresh project folder, so the test does the same: one fresh folder
per document (with a copy of ``examples/``, as a clone has it), its own store (``SHIPYARD_HOME`` in that
folder), ``shipyard`` and ``python`` from this interpreter's environment first on ``PATH``. Blocks run in
document order and may use what earlier ones made (files, runs, registered models):

- a ``bash`` block runs in ``bash -e -u -o pipefail`` (any failing command fails the block);
- a ``python`` block is a script saved in the project folder and run with ``python`` (so it imports the
  project's modules as a reader's script would); each block imports and defines what it uses.

An HTML comment on the line before a fence changes that (rendered Markdown does not show it):

- ``<!-- snippet: file=NAME -->``: the block is a file the reader saves as NAME (a module, a spec, a YAML
  file), written and not run;
- ``<!-- snippet: background ready=URL -->``: a long-running command (a server); it is started, the test
  waits until URL answers 200, and it runs beside the later blocks until ``<!-- snippet: stop -->``, the next
  background block (a reader stops one server before starting the next) or the end of the document, when it
  gets SIGTERM as Ctrl-C would;
- ``<!-- snippet: skip reason="..." -->``: cannot run unattended (the reason says why; keep these rare).

Blocks in other languages (``text``, ``yaml`` without ``file=``) are illustrations and are not run.
A failure names the document, the block's line and first line, and the block's output. The two documents
run side by side (each in its own folder, on its own store).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "examples" / "README.md"]
BLOCK_TIMEOUT_S = 180
READY_TIMEOUT_S = 60

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
_OPTION = re.compile(r'(\w+)(?:=(?:"([^"]*)"|(\S+)))?')


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, text, 1-based line of the opening fence and its marker options."""

    language: str
    text: str
    line: int
    options: dict[str, str]

    @property
    def first_line(self) -> str:
        return next((line for line in self.text.splitlines() if line.strip()), "")


@dataclass(frozen=True)
class Stop:
    """A ``<!-- snippet: stop -->`` line: background processes end here."""

    line: int


def _options(body: str) -> dict[str, str]:
    return {m[1]: m[2] or m[3] or "" for m in _OPTION.finditer(body)}


def parse(document: Path) -> list[Block | Stop]:
    """The document's fenced blocks and stop markers, in order (a marker binds to the fence just after it)."""
    items: list[Block | Stop] = []
    lines = document.read_text().splitlines()
    pending: dict[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker:
            options = _options(marker["body"])
            if "stop" in options:
                items.append(Stop(index + 1))
            else:
                pending = options
        elif fence:
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            text = "\n".join(lines[index + 1 : end]) + "\n"
            items.append(Block(fence[1], text, index + 1, pending or {}))
            pending = None
            index = end
        elif line.strip():
            pending = None  # a marker binds only to the fence on the very next line
        index += 1
    return items


class Failure(AssertionError):
    pass


def _fail(document: Path, block: Block, output: str, what: str) -> Failure:
    name = document.relative_to(ROOT) if document.is_relative_to(ROOT) else document.name
    return Failure(f"{name}, block at line {block.line} ({block.first_line!r}) {what}:\n{output[-6000:]}")


def _environment(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SHIPYARD_HOME"] = str(project / ".shipyard")
    env["SHIPYARD_CEILING_DIRECTORIES"] = str(project.parent)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)  # a reader's shell does not put the clone on the path
    return env


def _command(block: Block, project: Path) -> list[str]:
    if block.language == "bash":
        return ["bash", "-e", "-u", "-o", "pipefail", "-c", block.text]
    script = project / f"snippet_line_{block.line}.py"
    script.write_text(block.text)
    return [sys.executable, script.name]


def _port_taken(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        return sock.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0


class Background:
    """Long-running blocks: started, awaited, and stopped with SIGTERM (their whole process group)."""

    def __init__(self) -> None:
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, document: Path, block: Block, project: Path, env: dict[str, str]) -> None:
        ready = block.options.get("ready")
        assert ready, f"{document.name}:{block.line}: a background block needs ready=URL"
        if _port_taken(ready):
            pytest.skip(f"{ready} is already taken by another process; the README's server needs it")
        log = project / f"background_line_{block.line}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _command(block, project),
                cwd=project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append((process, log))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _fail(document, block, log.read_text(), f"exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise _fail(document, block, log.read_text(), f"was not ready at {ready} in {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        for process, _ in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
        self.running.clear()


def run_document(document: Path, project: Path) -> None:
    """Run the document's blocks in order in ``project``; raise Failure naming the first that fails."""
    shutil.copytree(ROOT / "examples", project / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = _environment(project)
    background = Background()
    try:
        for item in parse(document):
            if isinstance(item, Stop):
                background.stop()
                continue
            block = item
            if "skip" in block.options:
                assert block.options.get("reason"), f"{document.name}:{block.line}: a skip needs a reason"
                continue
            if "file" in block.options:
                (project / block.options["file"]).write_text(block.text)
                continue
            if block.language not in ("bash", "python"):
                continue
            if "background" in block.options:
                background.stop()
                background.start(document, block, project, env)
                continue
            started = time.monotonic()
            try:
                result = subprocess.run(
                    _command(block, project),
                    cwd=project,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=BLOCK_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired as exc:
                output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
                raise _fail(document, block, output, f"ran past {BLOCK_TIMEOUT_S} s") from None
            if result.returncode != 0:
                raise _fail(document, block, result.stdout, f"exited with {result.returncode}")
            # Shown with a failure (pytest prints captured output): which blocks take the time.
            took = time.monotonic() - started
            print(f"{document.name}:{block.line} {took:5.1f} s  {block.first_line[:70]}")
    finally:
        background.stop()


@pytest.mark.slow(seconds=300)
# The README walks the whole lifecycle (~4-6 min here): a whole-test limit of its own, past the suite's 300 s;
# each block still has BLOCK_TIMEOUT_S.
@pytest.mark.timeout(900)
def test_every_snippet_runs_as_written(tmp_path: Path) -> None:
    # The documents are independent (a folder and a store each) and mostly wait on subprocesses: running
    # them side by side takes the time of the longer one instead of the sum.
    with ThreadPoolExecutor(len(DOCUMENTS)) as pool:
        futures = {}
        for index, document in enumerate(DOCUMENTS):
            project = tmp_path / f"project{index}"
            project.mkdir()
            futures[document] = pool.submit(run_document, document, project)
    failures = []
    for future in futures.values():
        try:
            future.result()
        except Failure as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_parse_binds_markers_to_the_next_fence_only(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        '<!-- snippet: skip reason="needs make" -->\n```bash\nmake demo\n```\n'
        "<!-- snippet: file=m.py -->\n\nprose between\n```python\nx = 1\n```\n"
        "<!-- snippet: stop -->\n"
        "<!-- snippet: background ready=http://127.0.0.1:1/ -->\n```bash\nserve\n```\n"
    )
    items = parse(document)
    assert [type(i).__name__ for i in items] == ["Block", "Block", "Stop", "Block"]
    skip, plain, _, server = items
    assert isinstance(skip, Block) and skip.options == {"skip": "", "reason": "needs make"}
    assert isinstance(plain, Block) and plain.options == {} and plain.line == 8 and plain.text == "x = 1\n"
    assert isinstance(server, Block) and server.options["ready"] == "http://127.0.0.1:1/"


def test_a_failing_block_is_named_with_its_document_line_and_output(tmp_path: Path) -> None:
    document = tmp_path / "probe.md"
    document.write_text(
        "# probe\n\n```bash\necho first-block-ok\n```\n\n```bash\necho boom-output\nfalse\n```\n"
    )
    project = tmp_path / "project"
    project.mkdir()
    with pytest.raises(Failure) as caught:
        run_document(document, project)
    message = str(caught.value)
    assert "probe.md, block at line 7 ('echo boom-output') exited with 1" in message
    assert "boom-output" in message and "first-block-ok" not in message


def _logs_a_model(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "retrain_best"
    return isinstance(func, ast.Attribute) and (
        func.attr == "retrain_best" or (func.attr == "log" and ast.unparse(func.value).endswith("models"))
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_snippet_that_logs_a_model_gives_an_input_example(document: Path) -> None:
    # Without one a package has no signature: serving cannot check requests and metadata lists no inputs.
    calls = []
    for block in parse(document):
        if isinstance(block, Block) and block.language == "python":
            tree = ast.parse(block.text)
            calls += [(block.line, node) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    logging = [(line, call) for line, call in calls if _logs_a_model(call)]
    missing = [
        f"line {line + call.lineno}: {ast.unparse(call)[:80]}"
        for line, call in logging
        if not any(keyword.arg == "input_example" for keyword in call.keywords)
    ]
    assert not missing, f"{document.name} logs models without input_example: {missing}"
    if document == ROOT / "README.md":
        assert len(logging) >= 4  # the registry, pipeline, tuning and monitoring snippets
