"""``shipyard build``: a container build context that serves one registered model.

The context holds the verified package (every file checked against ``MODEL.yaml`` and ``MODEL.yaml`` against
the sha256 recorded at registration), the model's pinned requirements, a ``deploy.yaml`` and a Dockerfile:
a slim Python base pinned by digest, a non-root user, a health check on ``/v2/health/ready``, REST and gRPC
ports, and OCI labels that say which model version (and which manifest) the image serves. Nothing in it
needs the registry at run time: the image serves the folder it was built from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.registry.loading import fetch_package
from shipyard.serving.deployment import NAME, NAME_RULE, default_name

if TYPE_CHECKING:
    from shipyard.registry.client import RegistryClient

# Docker Hub's python:3.11-slim-bookworm, pinned by digest so a rebuild gets the same base; override it with
# --base-image (refresh with `docker buildx imagetools inspect python:3.11-slim-bookworm`).
DEFAULT_BASE_IMAGE = (
    "python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b"
)
REST_PORT = 8080
GRPC_PORT = 8081
WORKDIR = "/srv/shipyard"
MODEL_DIR = "model"
WHEELS_DIR = "wheels"
USER_ID = 10001
# What a context holds; --force replaces these and nothing else.
ENTRIES = (
    "Dockerfile",
    ".dockerignore",
    "deploy.yaml",
    "requirements.txt",
    "build.json",
    MODEL_DIR,
    WHEELS_DIR,
)
_DIGEST = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
# Docker's reference grammar, simplified: [registry[:port]/]path[:tag], lower-case path components.
_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
_ENGINES = ("docker", "podman", "buildah")


@dataclass(frozen=True)
class BuildContext:
    """A written build context, and what its image will serve."""

    directory: Path
    model_uri: str
    name: str
    version: int | None
    flavor: str
    manifest_sha256: str
    base_image: str
    tag: str
    shipyard_spec: str
    requirements: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def command(self) -> list[str]:
        """The image's CMD: serve the context's deploy.yaml on every interface."""
        return ["shipyard", "serve", "deploy.yaml", "--host", "0.0.0.0", "--port", str(REST_PORT)]


def write_build_context(
    uri: str,
    output: Path,
    registry: RegistryClient,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    shipyard: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> BuildContext:
    """Write the build context for the model at ``uri`` into ``output``.

    ``shipyard`` is what the image installs Shipyard from: a requirement (default
    ``shipyard[serving]==<this version>``), a wheel file or a source folder (built into a wheel); either of
    the last two is copied into the context.

    Raises:
        InvalidInput: ``output`` is not empty (without ``force``), the base image is not pinned by digest, the
            tag is not a valid image reference, or the package lists a requirement that is not a plain
            PEP 508 requirement (an option like ``--index-url`` or a URL would reach pip).
        NotFound, IntegrityError: the model cannot be found or its files do not match their record.
    """
    from shipyard import __version__

    if not _DIGEST.match(base_image):
        raise InvalidInput(
            f"--base-image {base_image!r} is not pinned by digest; give IMAGE@sha256:<64 hex digits> so "
            "every build starts from the same base"
        )
    if tag is not None:
        check_image(tag, "--tag", digest=False)
    served_name = name or default_name(uri)
    if not NAME.match(served_name):
        raise InvalidInput(f"--name {served_name!r}: {NAME_RULE}")
    _check_output(output, force)
    fetched = fetch_package(uri, registry)
    try:
        manifest = fetched.manifest
        # Checked before anything in --output is replaced.
        requirements = _requirements(manifest.requirements, f"{uri} ({manifest.flavor} flavor)")
        version = fetched.version.version if fetched.version is not None else None
        warnings = _python_warnings(manifest.python, base_image)
        _clear(output)
        shutil.move(str(fetched.directory), output / MODEL_DIR)
    except BaseException:
        shutil.rmtree(fetched.directory, ignore_errors=True)
        raise
    _readable(output / MODEL_DIR)
    spec = _shipyard_spec(shipyard, output, __version__)
    context = BuildContext(
        directory=output,
        model_uri=uri,
        name=served_name,
        version=version,
        flavor=manifest.flavor,
        manifest_sha256=fetched.manifest_sha256,
        base_image=base_image,
        tag=tag or _default_tag(served_name, version),
        shipyard_spec=spec,
        requirements=tuple(requirements),
        warnings=tuple(warnings),
    )
    (output / "requirements.txt").write_text(
        f"# {uri}'s pinned requirements (MODEL.yaml); Shipyard itself comes from the Dockerfile's "
        "SHIPYARD_SPEC.\n" + "".join(f"{r}\n" for r in requirements),
        encoding="utf-8",
    )
    (output / "deploy.yaml").write_text(_deploy_yaml(context), encoding="utf-8")
    (output / "Dockerfile").write_text(_dockerfile(context, __version__), encoding="utf-8")
    (output / ".dockerignore").write_text(_DOCKERIGNORE, encoding="utf-8")
    facts = {
        "model_uri": uri,
        "name": served_name,
        "version": version,
        "flavor": manifest.flavor,
        "manifest_sha256": fetched.manifest_sha256,
        "base_image": base_image,
        "tag": context.tag,
        "shipyard_spec": spec,
        "ports": {"rest": REST_PORT, "grpc": GRPC_PORT},
    }
    (output / "build.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return context


def check_image(reference: str, option: str, *, digest: bool = True) -> str:
    """``reference`` if it is an image reference: ``[registry[:port]/]path[:tag][@sha256:…]``."""
    name, _, pinned = reference.partition("@")
    if not _TAG.match(name) or (pinned and (not digest or not re.match(r"^sha256:[0-9a-f]{64}$", pinned))):
        raise InvalidInput(
            f"{option} {reference!r} is not a valid image reference (e.g. registry.example/churn:7)"
        )
    return reference


def find_engine() -> tuple[str | None, list[str]]:
    """The first container engine that can build here (docker with a daemon that answers, podman, buildah),
    and, for each one that cannot, why."""
    problems = []
    for engine in _ENGINES:
        path = shutil.which(engine)
        if path is None:
            problems.append(f"{engine}: not installed")
            continue
        # docker is only a client: it builds when its daemon answers. podman and buildah build without one.
        probe = (
            [path, "version", "--format", "{{.Server.Version}}"]
            if engine == "docker"
            else [path, "--version"]
        )
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{engine}: {exc}")
            continue
        if done.returncode == 0:
            return engine, problems
        why = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
        problems.append(f"{engine}: installed, but it cannot build ({why})")
    return None, problems


def build_image(context: BuildContext, engine: str | None = None) -> str:
    """Build ``context`` into an image tagged ``context.tag`` with the first engine that can (or ``engine``);
    the engine's output goes to this process's stdout/stderr. Returns the engine used.

    Raises:
        ShipyardError: no engine can build here (each one's reason named), or the build failed.
    """
    if engine is None:
        engine, problems = find_engine()
        if engine is None:
            raise ShipyardError(
                f"no container engine can build here ({'; '.join(problems)}); the build context is in "
                f"{context.directory}: build it where one runs, e.g. docker build -t {context.tag} "
                f"{context.directory}"
            )
    elif engine not in _ENGINES:
        raise InvalidInput(f"unknown container engine {engine!r}; one of: {', '.join(_ENGINES)}")
    verb = ["bud"] if engine == "buildah" else ["build"]
    command = [engine, *verb, "--tag", context.tag, "--file", str(context.directory / "Dockerfile")]
    command.append(str(context.directory))
    done = subprocess.run(command, check=False, stdout=sys.stdout, stderr=sys.stderr)
    if done.returncode != 0:
        raise ShipyardError(f"{' '.join(command)} failed with exit status {done.returncode}")
    return engine


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not output.is_dir():
        raise InvalidInput(f"--output {output} exists and is not a folder")
    present = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if present and not force:
        raise InvalidInput(f"--output {output} is not empty; give --force to replace a build context there")
    foreign = [p for p in present if p not in ENTRIES]
    if foreign:
        # --force replaces a build context, never other files someone keeps there.
        raise InvalidInput(
            f"--output {output} holds {foreign[0]!r}, which is not part of a build context; choose an "
            "empty folder"
        )


def _clear(output: Path) -> None:
    """An empty ``output``: a build context there (checked by `_check_output`) is removed."""
    if output.is_dir():
        for path in output.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    output.mkdir(parents=True, exist_ok=True)


def _requirements(pins: Sequence[str], source: str) -> list[str]:
    """The package's requirements that go into requirements.txt: PEP 508 names with versions and markers
    only, and without Shipyard (the Dockerfile installs that)."""
    kept = []
    for line in pins:
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise InvalidInput(
                f"{source} lists requirement {line!r}, which is not a PEP 508 requirement: {exc}"
            ) from exc
        if requirement.url:
            # A URL is fetched and built at image build time: that is the author's code, not a pinned release.
            raise InvalidInput(
                f"{source} lists requirement {line!r} with a URL; only released packages (name==version) are "
                "installed into an image"
            )
        if canonicalize_name(requirement.name) != "shipyard":
            kept.append(str(requirement))
    return sorted(set(kept))


def _shipyard_spec(source: str | None, output: Path, version: str) -> str:
    if source is None:
        return f"shipyard[serving]=={version}"
    path = Path(source)
    if path.is_file() and path.suffix == ".whl":
        wheels = output / WHEELS_DIR
        wheels.mkdir(exist_ok=True)
        shutil.copyfile(path, wheels / path.name)
        return f"./{WHEELS_DIR}/{path.name}[serving]"
    if path.is_dir() and (path / "pyproject.toml").is_file():
        wheels = output / WHEELS_DIR
        wheels.mkdir(exist_ok=True)
        # The source's own build requirements (PEP 517 isolation), whatever this environment has installed.
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w"]
        done = subprocess.run([*command, str(wheels), str(path)], capture_output=True, text=True, check=False)
        built = sorted(wheels.glob("shipyard-*.whl"))
        if done.returncode != 0 or not built:
            raise InvalidInput(
                f"--shipyard {source}: cannot build a wheel there: {done.stderr.strip()[-500:]}"
            )
        return f"./{WHEELS_DIR}/{built[-1].name}[serving]"
    try:
        requirement = Requirement(source)
    except InvalidRequirement as exc:
        raise InvalidInput(
            f"--shipyard {source!r} is neither a wheel, a source folder nor a requirement: {exc}"
        ) from exc
    if canonicalize_name(requirement.name) != "shipyard":
        raise InvalidInput(f"--shipyard {source!r} does not install Shipyard")
    return str(requirement)


def _python_warnings(saved_with: str, base_image: str) -> list[str]:
    minor = ".".join(saved_with.split(".")[:2])
    found = re.match(r"^(?:.*/)?python:(\d+\.\d+)", base_image)
    if minor and found and found.group(1) != minor:
        return [
            f"the model was saved with Python {saved_with}; the base image runs Python {found.group(1)} "
            f"(give --base-image python:{minor}-slim-bookworm@sha256:… to match)"
        ]
    return []


def _readable(root: Path) -> None:
    """The package, readable by the image's non-root user (the copy starts in a private 0700 temp folder)."""
    os.chmod(root, 0o755)
    for folder, dirs, files in os.walk(root):
        for entry in dirs:
            os.chmod(Path(folder, entry), 0o755)
        for entry in files:
            os.chmod(Path(folder, entry), 0o644)


def _default_tag(name: str, version: int | None) -> str:
    repository = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
    return f"shipyard/{repository}:{version if version is not None else 'latest'}"


def _deploy_yaml(context: BuildContext) -> str:
    document = {
        "models": [{"name": context.name, "uri": f"./{MODEL_DIR}"}],
        # Behind a Kubernetes Service clients use names this file cannot know; restrict them for other setups.
        "server": {"grpc_port": GRPC_PORT, "allowed_hosts": ["*"]},
    }
    header = (
        f"# Served by the image's CMD ({' '.join(context.command)}) from {WORKDIR}.\n"
        f"# Model: {context.model_uri} (MODEL.yaml sha256 {context.manifest_sha256}).\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def _dockerfile(context: BuildContext, version: str) -> str:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": context.name,
        "org.opencontainers.image.description": f"{context.model_uri} served by Shipyard {version}",
        "org.opencontainers.image.version": str(context.version) if context.version is not None else "",
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.base.name": context.base_image,
        "io.shipyard.model.uri": context.model_uri,
        "io.shipyard.model.name": context.name,
        "io.shipyard.model.version": str(context.version) if context.version is not None else "",
        "io.shipyard.model.flavor": context.flavor,
        "io.shipyard.model.manifest-sha256": context.manifest_sha256,
    }
    label_lines = " \\\n      ".join(f"{key}={_quoted(value)}" for key, value in labels.items())
    wheels = (
        f"COPY {WHEELS_DIR}/ ./{WHEELS_DIR}/\n"
        if context.shipyard_spec.startswith(f"./{WHEELS_DIR}/")
        else ""
    )
    probe = (
        "import sys, urllib.request; "
        f"url = 'http://127.0.0.1:{REST_PORT}/v2/health/ready'; "
        "sys.exit(urllib.request.urlopen(url, timeout=3).status != 200)"
    )
    return f"""\
# Written by `shipyard build {context.model_uri}` (Shipyard {version}); build with:
#   docker build -t {context.tag} .
# The image serves ./{MODEL_DIR} (MODEL.yaml sha256 {context.manifest_sha256}) as deploy.yaml says.
ARG BASE_IMAGE={context.base_image}
FROM ${{BASE_IMAGE}}

ARG SHIPYARD_SPEC={_quoted(context.shipyard_spec)}
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    SHIPYARD_HOME={WORKDIR}/home

RUN groupadd --system --gid {USER_ID} shipyard \\
 && useradd --system --uid {USER_ID} --gid {USER_ID} --home-dir {WORKDIR} --shell /usr/sbin/nologin shipyard
WORKDIR {WORKDIR}

# The model's pinned requirements and Shipyard's serving extra, before the model: a new version of the same
# model reuses this layer.
COPY requirements.txt ./
{wheels}RUN pip install --no-cache-dir -r requirements.txt "${{SHIPYARD_SPEC}}"

# The verified package, owned by root and read-only for the server's user.
COPY {MODEL_DIR}/ ./{MODEL_DIR}/
COPY deploy.yaml ./
RUN mkdir -p {WORKDIR}/home && chown {USER_ID}:{USER_ID} {WORKDIR}/home
USER {USER_ID}:{USER_ID}

EXPOSE {REST_PORT} {GRPC_PORT}
LABEL {label_lines}
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \\
  CMD ["python", "-c", {_quoted(probe)}]
CMD {json.dumps(context.command)}
"""


def _quoted(value: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{value!r} holds a control character and cannot go into a Dockerfile")
    return json.dumps(value)


# An allow-list: the engine sends only what the Dockerfile copies.
_DOCKERIGNORE = f"""\
*
!Dockerfile
!requirements.txt
!deploy.yaml
!{MODEL_DIR}/
!{WHEELS_DIR}/
"""
