"""Shared fixtures: isolated settings per test, a throw-away PostgreSQL cluster and a local Ray.

The PostgreSQL fixture runs Debian's initdb/pg_ctl on a temp dir (as the ``postgres`` user when we are
root, since initdb refuses root), listening on 127.0.0.1 and a free port. When no server can start the
PostgreSQL tests skip with the reason — unless ``SHIPYARD_REQUIRE_POSTGRES=1`` (set by CI), where that fails.
Ray likewise: one local Ray per session for the executor contract; ``SHIPYARD_REQUIRE_RAY=1`` makes a Ray
that cannot start a failure. And S3: moto's S3 server on 127.0.0.1 (a real S3 API over HTTP), one per session,
skipped without moto unless ``SHIPYARD_REQUIRE_S3=1``. And Redis: Debian's ``redis-server`` on 127.0.0.1 and
a free port, one per session, without persistence; skipped when absent unless ``SHIPYARD_REQUIRE_REDIS=1``.
And the official MLflow client: an interpreter of ``.venv-mlflow`` (made by ``make test``), whose scripts
talk to a real ``shipyard server``; skipped when absent unless ``SHIPYARD_REQUIRE_MLFLOW=1``.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.auth.accounts import Accounts
from shipyard.config import Settings
from shipyard.tracking.chunks import Series


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow run first. `make test` runs the suite on two pytest-xdist workers, which take
    tests in collection order: this way the longest ones (the README, the demo, a fresh venv) are spread
    over both from the start, instead of one worker finishing them alone while the other is idle. Longest
    first, by ``@pytest.mark.slow(seconds=…)`` where a test gives its usual time."""

    def order(item: pytest.Item) -> tuple[bool, float]:
        slow = item.get_closest_marker("slow")
        return slow is None, -float(slow.kwargs.get("seconds", 0)) if slow is not None else 0.0

    items.sort(key=order)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's ./.shipyard or shipyard.toml."""
    for var in list(os.environ):
        if var.startswith("SHIPYARD_") and not var.startswith("SHIPYARD_REQUIRE_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    # A stray .shipyard or shipyard.toml above the test folders (in /tmp, say) is not the test's store.
    monkeypatch.setenv("SHIPYARD_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)


def series_of(points: Iterable[tuple[int, float, int]]) -> Series:
    """A metric series of (step, value, timestamp) points, in order."""
    series = Series()
    for step, value, timestamp in points:
        series.steps.append(step)
        series.values.append(value)
        series.timestamps.append(timestamp)
    return series


def sign_up(
    accounts: Accounts, users: Iterable[tuple[str, str] | tuple[str, str, str | None]]
) -> dict[str, str]:
    """Create each (name, role[, password]) user with an API token; their tokens by name."""
    tokens = {}
    for name, role, *password in users:
        accounts.create_user(name, role, *password)
        tokens[name] = accounts.create_token(name)[1]
    return tokens


def make_settings(home: Path, **overrides: str) -> Settings:
    environ = {
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_CEILING_DIRECTORIES": str(home.parent.parent),
        **{f"SHIPYARD_{k.upper()}": v for k, v in overrides.items()},
    }
    return Settings.load(environ=environ, cwd=home.parent)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


def console(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``shipyard`` console script as a user would (else ``python -m shipyard.cli``)."""
    exe = Path(sys.executable).parent / "shipyard"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "shipyard.cli"]
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    """A loopback port nothing listens on right now (for test servers, or as a closed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found and not shutil.which("initdb"):
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("initdb") or "").parent
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        if not (self.root / "data").exists():  # a stopped cluster starts again on its data
            self._run(self.bin / "initdb", "-D", self.root / "data", "-A", "trust", "-U", "postgres")
        # Every test database's store keeps its pool open for the session (one store per URL per process):
        # a few hundred databases' idle connections, over PostgreSQL's default of 100.
        options = (
            f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off -c max_connections=500"
        )
        self._run(
            self.bin / "pg_ctl",
            "-D",
            self.root / "data",
            "-o",
            options,
            "-l",
            self.root / "log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(self.bin / "pg_ctl", "-D", self.root / "data", "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import sqlalchemy as sa

        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    root = Path("/tmp") / f"shipyard-pg-{uuid.uuid4().hex[:8]}"  # short: the socket path has a length limit
    cluster = None
    try:
        import psycopg  # noqa: F401

        cluster = PostgresCluster(root)
        cluster.start()
    except (ImportError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        reason = f"no PostgreSQL server could be started: {exc} {detail.decode(errors='replace')[-500:]}"
        if os.environ.get("SHIPYARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on a fresh metadata store of each backend (the contract-suite fixture)."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "home")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return make_settings(tmp_path / "home", db_url=cluster.create_database())


@contextlib.contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    """Any ASGI ``app`` under uvicorn on 127.0.0.1 and a free port (in a thread); yields its URL and stops it
    on exit."""
    import threading
    import time

    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.contextmanager
def platform_server(settings: Settings, **app_options: Any) -> Iterator[str]:
    """A real `shipyard server` app under uvicorn on 127.0.0.1 (in a thread) over ``settings``' store
    (``app_options`` go to `create_app`); yields its URL and stops it on exit."""
    from shipyard.server.app import create_app

    try:
        with asgi_server(create_app(settings, **app_options)) as url:
            yield url
    finally:
        if app_options.get("artifacts") is not None:
            from shipyard.store.server_artifacts import stop_serving

            stop_serving()  # the test process goes back to being a client of shipyard-artifacts:// URIs


@contextlib.contextmanager
def server_process(
    args: list[str],
    env: dict[str, str],
    *,
    log: Path | None = None,
    scheme: str = "http",
    verify: Any = True,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A real ``shipyard server`` process with ``args`` (on ``port``, default a free one) and ``env``; its
    output goes to ``log`` (default: a pipe). Yields its URL once healthy, and the process; stops it after."""
    import signal
    import time

    import httpx

    port = port or free_port()
    exe = Path(sys.executable).parent / "shipyard"
    sink = open(log, "w") if log is not None else subprocess.PIPE  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(exe), "server", "--port", str(port), *args],
        env=env,
        stdout=sink,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out = process.communicate()[0] if log is None else log.read_text()
                raise RuntimeError(f"server did not start: {(out or '')[-2000:]}")
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if log is not None:
            sink.close()  # type: ignore[union-attr]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "http"])
def tracking_backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The tracking contract's fixture: each SQL backend, and team mode against a platform server (on
    SQLite) through the HTTP store."""
    if request.param == "sqlite":
        yield make_settings(tmp_path / "home")
        return
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        yield make_settings(tmp_path / "home", db_url=cluster.create_database())
        return
    server_settings = make_settings(tmp_path / "server")
    with platform_server(server_settings) as url:
        yield make_settings(tmp_path / "home", tracking_uri=url)


def _unavailable(reason: str) -> None:
    # In CI (SHIPYARD_REQUIRE_RAY=1) a Ray that cannot start is a failure, not a skip.
    if os.environ.get("SHIPYARD_REQUIRE_RAY") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A real local Ray, started once per session (it takes seconds); shut down at the end."""
    try:
        import ray
    except ImportError:
        _unavailable("Ray is not installed (pip install 'shipyard[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # any reason Ray cannot start here is a skip with that reason
        _unavailable(f"a local Ray cannot start here: {exc}")
    yield ray
    ray.shutdown()


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on loopback and one bucket in it."""

    endpoint: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec (s3fs) options that reach this server."""
        return {"client_kwargs": {"endpoint_url": self.endpoint}, "key": "x", "secret": "x"}

    @property
    def storage_options_json(self) -> str:
        """The options as ``SHIPYARD_ARTIFACT_STORAGE_OPTIONS`` takes them."""
        return json.dumps(self.storage_options)

    def root(self, name: str = "") -> str:
        """A fresh ``s3://bucket/<unique>`` prefix: tests sharing the bucket never see each other's keys."""
        return f"s3://{self.bucket}/{name or 'root'}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 and a free port, with one bucket; stopped at the end of the session."""
    try:
        import boto3
        import s3fs  # noqa: F401  (what the artifact store opens s3:// with)
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        reason = f"S3 tests need s3fs, boto3 and moto[server] (pip install -e '.[dev]'): {exc}"
        if os.environ.get("SHIPYARD_REQUIRE_S3") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = "shipyard-tests"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).create_bucket(Bucket=bucket)
    yield S3Server(endpoint, bucket)
    server.stop()


@pytest.fixture
def s3_settings(tmp_path: Path, s3_server: S3Server) -> Settings:
    """Settings with a local metadata store and the artifact root on the moto S3 server."""
    return make_settings(
        tmp_path / "home",
        artifact_root=s3_server.root(),
        artifact_storage_options=s3_server.storage_options_json,
    )


@dataclass(frozen=True)
class RedisServer:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real ``redis-server`` on loopback for the session; each test takes its own key prefix."""
    binary = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        redis = None  # type: ignore[assignment]
    if binary is None or redis is None:
        reason = "Redis tests need Debian's redis-server and the redis package (pip install -e '.[dev]')"
        if os.environ.get("SHIPYARD_REQUIRE_REDIS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1.0)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except (redis.RedisError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                reason = f"redis-server did not start on port {port} (exit {proc.poll()})"
                if os.environ.get("SHIPYARD_REQUIRE_REDIS") == "1":
                    pytest.fail(reason)
                pytest.skip(reason)
            time.sleep(0.05)
    client.close()
    yield RedisServer(port)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def mlflow_python() -> str:
    """An interpreter with the official ``mlflow`` client (3.x) and scikit-learn: ``.venv-mlflow`` beside
    the repository (``make test`` makes it from tests/mlflow_compat/requirements.txt), or
    ``SHIPYARD_MLFLOW_PYTHON``. The client never enters Shipyard's own environment (it pins pyarrow)."""
    root = Path(__file__).resolve().parents[1]
    python = Path(os.environ.get("SHIPYARD_MLFLOW_PYTHON") or root / ".venv-mlflow" / "bin" / "python")
    found = (
        python.exists()
        and subprocess.run(
            [str(python), "-c", "import mlflow, sklearn"], capture_output=True, timeout=120
        ).returncode
        == 0
    )
    if not found:
        reason = f"the MLflow client tests need {python} with mlflow and scikit-learn (make test makes it)"
        if os.environ.get("SHIPYARD_REQUIRE_MLFLOW") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(python)


def self_signed_certificate(directory: Path, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost) and its key, as PEM files in ``directory``:
    ``<name>.pem`` and ``<name>-key.pem``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
