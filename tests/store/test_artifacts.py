"""The artifact store: one contract suite over local, memory:// and s3:// (moto) roots, then path safety and
symlinks, then what an unreachable object store says."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.config import Settings
from shipyard.errors import ArtifactStoreError, IntegrityError, InvalidInput, NotFound
from shipyard.store.artifacts import CHUNK_SIZE, ArtifactStore, FileInfo, safe_relpath
from tests.conftest import S3Server, free_port


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield ArtifactStore(tmp_path / "root")
        return
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        s3_store = ArtifactStore(server.root(), storage_options=server.storage_options)
        yield s3_store
        s3_store.delete()
        return
    memory_store = ArtifactStore(f"memory://shipyard-tests-{uuid.uuid4().hex}/root")
    yield memory_store
    memory_store.delete()  # memory:// is process-global; leave nothing behind for other tests


@pytest.fixture
def local(tmp_path: pathlib.Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "root")


@pytest.fixture
def outside(tmp_path: pathlib.Path) -> pathlib.Path:
    """A folder beside the root holding a secret no store may read or overwrite."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"secret")
    return folder


UNSAFE_PATHS = [
    "../x",
    "..",
    "a/../../b",
    "a/..",
    "/etc/passwd",
    "//server/share",
    "C:\\Windows\\x",
    "C:/Windows/x",
    "c:x",
    "\\\\server\\share",
    "a\\b",
    "s3://bucket/key",
    "file:x",
    "file:///etc/passwd",
    "memory://other/x",
    "simplecache::s3://bucket/key",
    "a\x00b",
]


class TestContract:
    """Behaviour every backend shares."""

    def test_missing_root_lists_empty_until_first_write_creates_it(self, store: ArtifactStore) -> None:
        assert store.list() == []
        assert not store.exists("")
        store.put_bytes(b"x", "a/b.txt")
        assert store.exists("")
        assert store.exists("a")
        assert store.exists("a/b.txt")
        assert not store.exists("a/c.txt")

    def test_put_bytes_reports_path_size_and_sha256(self, store: ArtifactStore) -> None:
        info = store.put_bytes(b"hello", "./dir//hello.txt")
        assert info == FileInfo(path="dir/hello.txt", size=5, sha256=sha(b"hello"))
        assert store.read_bytes("dir/hello.txt", expected_sha256=info.sha256) == b"hello"

    def test_put_file_streams_a_file_larger_than_one_chunk(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        data = os.urandom(CHUNK_SIZE * 2 + 12345)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        info = store.put_file(src, "models/big.bin")
        assert (info.size, info.sha256) == (len(data), sha(data))
        assert store.read_bytes("models/big.bin", expected_sha256=sha(data)) == data

    def test_put_replaces_an_existing_file(self, store: ArtifactStore) -> None:
        store.put_bytes(b"old", "f")
        store.put_bytes(b"new", "f")
        assert store.read_bytes("f") == b"new"
        assert [i.path for i in store.list()] == ["f"]

    def test_put_file_of_a_missing_or_directory_source_is_refused(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            store.put_file(tmp_path / "nope", "x")
        with pytest.raises(InvalidInput, match="put_dir"):
            store.put_file(tmp_path, "x")

    def test_read_bytes_with_wrong_hash_names_path_and_both_digests(self, store: ArtifactStore) -> None:
        store.put_bytes(b"data", "m/w.bin")
        wrong = sha(b"other")
        with pytest.raises(IntegrityError) as excinfo:
            store.read_bytes("m/w.bin", expected_sha256=wrong)
        message = str(excinfo.value)
        assert "m/w.bin" in message and wrong in message and sha(b"data") in message

    def test_malformed_expected_hash_is_invalid_input(self, store: ArtifactStore) -> None:
        store.put_bytes(b"data", "f")
        with pytest.raises(InvalidInput, match="expected_sha256"):
            store.read_bytes("f", expected_sha256="abc")

    def test_reading_a_missing_file_is_not_found_and_a_directory_is_invalid(
        self, store: ArtifactStore
    ) -> None:
        store.put_bytes(b"x", "d/f")
        with pytest.raises(NotFound, match="'d/nope'"):
            store.read_bytes("d/nope")
        with pytest.raises(InvalidInput, match="directory"):
            store.read_bytes("d")

    def test_open_supports_text_and_binary_modes_only(self, store: ArtifactStore) -> None:
        with store.open("t/notes.txt", "w") as f:
            f.write("héllo\n")
        with store.open("t/notes.txt") as f:
            assert f.read() == "héllo\n".encode()
        with store.open("t/notes.txt", "r") as f:
            assert f.read() == "héllo\n"
        with store.open("t/raw.bin", "wb") as f:
            f.write(b"\x00\x01")
        assert store.read_bytes("t/raw.bin") == b"\x00\x01"
        for mode in ("a", "r+", "ab", "x", "rt"):
            with pytest.raises(InvalidInput, match="mode"):
                store.open("t/notes.txt", mode)

    def test_list_shows_children_and_recursive_lists_every_file_sorted(self, store: ArtifactStore) -> None:
        for path in ["b.txt", "a/2.txt", "a/1.txt", "a/deep/x.bin", "c/y"]:
            store.put_bytes(path.encode(), path)
        assert store.list() == [
            FileInfo("a", 0, None, is_dir=True),
            FileInfo("b.txt", 5, None),
            FileInfo("c", 0, None, is_dir=True),
        ]
        assert [i.path for i in store.list("a")] == ["a/1.txt", "a/2.txt", "a/deep"]
        assert [i.path for i in store.list(recursive=True)] == [
            "a/1.txt",
            "a/2.txt",
            "a/deep/x.bin",
            "b.txt",
            "c/y",
        ]
        assert [(i.path, i.size) for i in store.list("a/", recursive=True)] == [
            ("a/1.txt", 7),
            ("a/2.txt", 7),
            ("a/deep/x.bin", 12),
        ]
        assert store.list("b.txt") == [FileInfo("b.txt", 5, None)]

    def test_listing_a_missing_prefix_is_not_found(self, store: ArtifactStore) -> None:
        store.put_bytes(b"x", "a/f")
        with pytest.raises(NotFound, match="'nope'"):
            store.list("nope")

    def test_delete_removes_files_trees_and_the_whole_root(self, store: ArtifactStore) -> None:
        store.put_bytes(b"1", "keep")
        store.put_bytes(b"2", "run/a/f")
        store.put_bytes(b"3", "run/g")
        store.delete("run/g")
        assert not store.exists("run/g")
        store.delete("run")
        assert [i.path for i in store.list(recursive=True)] == ["keep"]
        with pytest.raises(NotFound):
            store.delete("run")
        store.delete()
        assert not store.exists("")
        assert store.list() == []
        store.delete()  # a missing root is a no-op, so garbage collection can retry

    def test_get_downloads_a_file_to_a_path_or_into_a_directory(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        store.put_bytes(b"weights", "m/w.bin")
        target = store.get("m/w.bin", tmp_path / "dl" / "w_copy.bin", expected_sha256=sha(b"weights"))
        assert target == tmp_path / "dl" / "w_copy.bin"
        assert target.read_bytes() == b"weights"
        into = store.get("m/w.bin", tmp_path / "dl")
        assert into == tmp_path / "dl" / "w.bin"
        assert into.read_bytes() == b"weights"

    def test_get_downloads_every_file_of_a_directory(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        store.put_bytes(b"1", "m/a.txt")
        store.put_bytes(b"2", "m/sub/b.txt")
        store.put_bytes(b"3", "other.txt")
        target = store.get("m", tmp_path / "out")
        assert target == tmp_path / "out"
        files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
        assert files == ["a.txt", "sub/b.txt"]
        assert (target / "sub" / "b.txt").read_bytes() == b"2"
        with pytest.raises(InvalidInput, match="directory"):
            store.get("m", tmp_path / "out2", expected_sha256=sha(b"1"))

    def test_get_with_a_wrong_hash_leaves_nothing_behind(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        store.put_bytes(b"weights", "w.bin")
        dest = tmp_path / "dl"
        dest.mkdir()
        with pytest.raises(IntegrityError, match=r"w\.bin"):
            store.get("w.bin", dest / "w.bin", expected_sha256=sha(b"tampered"))
        assert list(dest.iterdir()) == []

    def test_get_of_a_missing_path_is_not_found(self, store: ArtifactStore, tmp_path: pathlib.Path) -> None:
        with pytest.raises(NotFound):
            store.get("nope", tmp_path / "x")
        assert not (tmp_path / "x").exists()

    def test_put_dir_uploads_nested_files_and_skips_empty_dirs(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        src = tmp_path / "src"
        (src / "a" / "b").mkdir(parents=True)
        (src / "empty").mkdir()
        (src / "top.txt").write_bytes(b"top")
        (src / "a" / "mid.txt").write_bytes(b"mid")
        (src / "a" / "b" / "low.txt").write_bytes(b"low")
        infos = store.put_dir(src, "model")
        assert infos == [
            FileInfo("model/a/b/low.txt", 3, sha(b"low")),
            FileInfo("model/a/mid.txt", 3, sha(b"mid")),
            FileInfo("model/top.txt", 3, sha(b"top")),
        ]
        assert [i.path for i in store.list(recursive=True)] == [i.path for i in infos]
        assert not store.exists("model/empty")

    def test_put_dir_of_a_missing_directory_is_not_found(
        self, store: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        with pytest.raises(NotFound):
            store.put_dir(tmp_path / "nope")

    def test_child_store_works_under_its_subpath(self, store: ArtifactStore) -> None:
        store.put_bytes(b"other run", "runs/7/f.txt")
        run = store.child("runs/42")
        assert run.root == store.uri("runs/42")
        info = run.put_bytes(b"x", "out/f.txt")
        assert info.path == "out/f.txt"
        assert store.read_bytes("runs/42/out/f.txt") == b"x"
        assert [i.path for i in run.list(recursive=True)] == ["out/f.txt"]
        run.delete()
        assert [i.path for i in store.list(recursive=True)] == ["runs/7/f.txt"]

    def test_uri_is_the_root_url_joined_with_the_path(self, store: ArtifactStore) -> None:
        assert store.uri() == store.root
        assert store.uri("a/b.txt") == store.root + "/a/b.txt"
        assert "://" in store.root

    @pytest.mark.parametrize("bad", UNSAFE_PATHS)
    def test_every_operation_refuses_an_unsafe_path(
        self, store: ArtifactStore, tmp_path: pathlib.Path, bad: str
    ) -> None:
        src = tmp_path / "f"
        src.write_bytes(b"x")
        operations: list[Callable[[], object]] = [
            lambda: store.put_bytes(b"x", bad),
            lambda: store.put_file(src, bad),
            lambda: store.put_dir(tmp_path, bad),
            lambda: store.open(bad, "rb"),
            lambda: store.open(bad, "wb"),
            lambda: store.read_bytes(bad),
            lambda: store.get(bad, tmp_path / "dl"),
            lambda: store.list(bad),
            lambda: store.exists(bad),
            lambda: store.delete(bad),
            lambda: store.child(bad),
            lambda: store.uri(bad),
        ]
        for operation in operations:
            with pytest.raises(InvalidInput):
                operation()
        assert store.list() == []

    def test_writing_to_the_root_itself_is_refused(self, store: ArtifactStore) -> None:
        for empty in ("", ".", "./", ".//."):
            with pytest.raises(InvalidInput, match="empty"):
                store.put_bytes(b"x", empty)

    def test_writing_under_a_file_is_invalid_input(self, store: ArtifactStore) -> None:
        store.put_bytes(b"x", "f")
        with pytest.raises(InvalidInput, match="cannot write"):
            store.put_bytes(b"y", "f/g")

    def test_threads_write_distinct_paths_concurrently(self, store: ArtifactStore) -> None:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(10):
                    store.put_bytes(f"{n}-{i}".encode(), f"t{n}/f{i}")
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store.list(recursive=True)) == 80
        assert store.read_bytes("t7/f9") == b"7-9"


class TestSafeRelpath:
    @pytest.mark.parametrize(
        ("given_path", "clean"),
        [
            ("a/b/c", "a/b/c"),
            ("a//b/./c/", "a/b/c"),
            ("./a", "a"),
            ("run:1/metrics.json", "run:1/metrics.json"),
            ("2024-01-01T00:00:00.json", "2024-01-01T00:00:00.json"),
            ("a/..b/c..", "a/..b/c.."),
            ("...", "..."),
        ],
    )
    def test_normalises_safe_paths(self, given_path: str, clean: str) -> None:
        assert safe_relpath(given_path) == clean

    @pytest.mark.parametrize("bad", UNSAFE_PATHS)
    def test_rejects_unsafe_paths_naming_them(self, bad: str) -> None:
        with pytest.raises(InvalidInput) as excinfo:
            safe_relpath(bad)
        assert repr(bad) in str(excinfo.value)

    def test_empty_is_allowed_only_for_the_root(self) -> None:
        assert safe_relpath("", allow_root=True) == ""
        assert safe_relpath("./", allow_root=True) == ""
        with pytest.raises(InvalidInput, match="empty"):
            safe_relpath("")

    def test_non_string_is_invalid_input(self) -> None:
        with pytest.raises(InvalidInput, match="string"):
            safe_relpath(b"a/b")  # type: ignore[arg-type]

    @given(
        st.one_of(
            st.text(),
            st.lists(
                st.sampled_from(["a", "b", ".", "..", "/", "\\", ":", "C:", "s3://", "::", "~", "\x00", " "]),
                max_size=12,
            ).map("".join),
        )
    )
    def test_a_returned_path_never_leaves_the_root(self, path: str) -> None:
        try:
            rel = safe_relpath(path, allow_root=True)
        except InvalidInput:
            return
        assert ".." not in rel.split("/")
        assert not rel.startswith("/")
        assert "\x00" not in rel and "\\" not in rel
        root = "/srv/artifacts"
        joined = os.path.normpath(os.path.join(root, rel))
        assert joined == root or joined.startswith(root + "/")
        assert safe_relpath(rel, allow_root=True) == rel  # already clean


class TestLocalRoot:
    """Local-only behaviour: canonical URLs, symlink confinement and atomic writes."""

    def test_root_is_an_absolute_file_url_created_lazily(
        self, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        store = ArtifactStore("relative/root")
        assert store.root == (tmp_path / "relative" / "root").as_uri()
        assert not (tmp_path / "relative").exists()
        store.put_bytes(b"x", "f")
        assert (tmp_path / "relative" / "root" / "f").read_bytes() == b"x"
        assert ArtifactStore(store.root).read_bytes("f") == b"x"

    def test_unknown_protocol_is_invalid_input(self) -> None:
        with pytest.raises(InvalidInput, match="nosuchproto"):
            ArtifactStore("nosuchproto://x")

    def test_symlinked_dir_escaping_the_root_is_refused_for_reads_and_writes(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        local.put_bytes(b"ok", "ok.txt")
        (tmp_path / "root" / "evil").symlink_to(outside)
        operations: list[Callable[[], object]] = [
            lambda: local.read_bytes("evil/secret.txt"),
            lambda: local.open("evil/secret.txt"),
            lambda: local.put_bytes(b"pwned", "evil/secret.txt"),
            lambda: local.put_bytes(b"pwned", "evil/new.txt"),
            lambda: local.open("evil/new.txt", "w"),
            lambda: local.exists("evil/secret.txt"),
            lambda: local.list("evil"),
            lambda: local.list(recursive=True),
            lambda: local.get("evil/secret.txt", tmp_path / "dl"),
            lambda: local.get("", tmp_path / "dl_all"),
            lambda: local.child("evil").read_bytes("secret.txt"),
            lambda: local.child("evil").put_bytes(b"pwned", "x"),
        ]
        for operation in operations:
            with pytest.raises(InvalidInput, match="escapes the artifact root"):
                operation()
        assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
        assert (outside / "secret.txt").read_bytes() == b"secret"
        assert not (tmp_path / "dl_all").exists()

    def test_nested_symlink_climbing_above_the_root_is_refused(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        local.put_bytes(b"x", "a/keep")
        (tmp_path / "root" / "a" / "b").symlink_to("../../..")
        relative_secret = f"a/b/{tmp_path.name}/outside/secret.txt"
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            local.read_bytes(relative_secret)
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            local.put_bytes(b"pwned", relative_secret)
        assert (outside / "secret.txt").read_bytes() == b"secret"

    def test_symlinked_file_escaping_the_root_is_refused(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        local.put_bytes(b"x", "f")
        (tmp_path / "root" / "link").symlink_to(outside / "secret.txt")
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            local.read_bytes("link")
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            local.put_bytes(b"pwned", "link")
        assert (outside / "secret.txt").read_bytes() == b"secret"

    def test_writing_through_a_symlinked_file_inside_the_root_is_refused(
        self, local: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        local.put_bytes(b"target", "target.txt")
        (tmp_path / "root" / "alias").symlink_to("target.txt")
        assert local.read_bytes("alias") == b"target"  # reading inside the root is fine
        with pytest.raises(InvalidInput, match="symlink"):
            local.put_bytes(b"changed", "alias")
        with pytest.raises(InvalidInput, match="symlink"):
            local.open("alias", "wb")
        assert local.read_bytes("target.txt") == b"target"

    def test_child_of_a_symlinked_subfolder_keeps_the_parent_boundary(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        local.put_bytes(b"x", "f")
        (tmp_path / "root" / "runs").symlink_to(outside)
        child = local.child("runs")
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            child.list()
        with pytest.raises(InvalidInput, match="escapes the artifact root"):
            child.delete()
        assert (outside / "secret.txt").exists()

    def test_delete_of_an_escaping_symlink_removes_only_the_link(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        local.put_bytes(b"x", "f")
        (tmp_path / "root" / "evil").symlink_to(outside)
        local.delete("evil")
        assert not (tmp_path / "root" / "evil").exists()
        assert (outside / "secret.txt").read_bytes() == b"secret"
        (tmp_path / "root" / "evil").symlink_to(outside)
        local.delete()
        assert not (tmp_path / "root").exists()
        assert (outside / "secret.txt").read_bytes() == b"secret"

    def test_put_dir_refuses_a_symlink_leaving_the_source_and_uploads_nothing(
        self, local: ArtifactStore, tmp_path: pathlib.Path, outside: pathlib.Path
    ) -> None:
        src = tmp_path / "src"
        (src / "nested").mkdir(parents=True)
        (src / "a.txt").write_bytes(b"a")
        (src / "nested" / "leak").symlink_to(outside / "secret.txt")
        with pytest.raises(InvalidInput, match="leak"):
            local.put_dir(src)
        assert local.list() == []

    def test_put_dir_follows_symlinks_that_stay_inside_the_source(
        self, local: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        src = tmp_path / "src"
        (src / "data").mkdir(parents=True)
        (src / "data" / "x.bin").write_bytes(b"x")
        (src / "alias.bin").symlink_to("data/x.bin")
        (src / "loop").symlink_to(".")
        with pytest.raises(InvalidInput, match="loop"):
            local.put_dir(src)
        (src / "loop").unlink()
        assert [i.path for i in local.put_dir(src)] == ["alias.bin", "data/x.bin"]
        assert local.read_bytes("alias.bin") == b"x"

    def test_tampered_file_fails_the_integrity_check(
        self, local: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        info = local.put_bytes(b"model weights", "m/w.bin")
        (tmp_path / "root" / "m" / "w.bin").write_bytes(b"model weightz")
        with pytest.raises(IntegrityError) as excinfo:
            local.read_bytes("m/w.bin", expected_sha256=info.sha256)
        assert "m/w.bin" in str(excinfo.value)
        assert str(info.sha256) in str(excinfo.value)
        assert sha(b"model weightz") in str(excinfo.value)

    def test_a_write_is_invisible_until_closed_and_discarded_on_error(
        self, local: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        local.put_bytes(b"old", "f.bin")
        with local.open("f.bin", "wb") as f:
            f.write(b"new, half")
            assert local.read_bytes("f.bin") == b"old"
        assert local.read_bytes("f.bin") == b"new, half"

        with pytest.raises(RuntimeError), local.open("f.bin", "wb") as f:
            f.write(b"torn")
            raise RuntimeError("crash mid-write")
        with pytest.raises(RuntimeError), local.open("g.txt", "w") as f:
            f.write("torn")
            raise RuntimeError("crash mid-write")
        assert local.read_bytes("f.bin") == b"new, half"
        assert not local.exists("g.txt")
        assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["f.bin"]

    def test_writing_over_a_directory_is_invalid_input(self, local: ArtifactStore) -> None:
        # NOTE: local only; an object store may hold both a key 'd' and keys under 'd/'.
        local.put_bytes(b"x", "d/g")
        with pytest.raises(InvalidInput, match="directory"):
            local.put_bytes(b"x", "d")

    def test_temp_files_left_by_a_crash_are_not_listed(
        self, local: ArtifactStore, tmp_path: pathlib.Path
    ) -> None:
        local.put_bytes(b"x", "d/f")
        (tmp_path / "root" / "d" / f".f.{uuid.uuid4().hex}.partial").write_bytes(b"torn")
        assert [i.path for i in local.list("d")] == ["d/f"]
        assert [i.path for i in local.list(recursive=True)] == ["d/f"]


SECRET = "do-not-print-this-secret"


@pytest.mark.s3
class TestObjectStoreErrors:
    """An object store that cannot be used says so once, naming the root URL and never the credentials."""

    def test_a_missing_bucket_is_one_error_naming_the_root(self, s3_server: S3Server) -> None:
        options = {**s3_server.storage_options, "secret": SECRET}
        store = ArtifactStore("s3://no-such-bucket/prefix", storage_options=options)
        for operation in (
            lambda: store.put_bytes(b"x", "a/b"),
            lambda: store.read_bytes("a/b"),
            store.list,
            lambda: store.exists("a"),
        ):
            with pytest.raises(ArtifactStoreError) as excinfo:
                operation()
            message = str(excinfo.value)
            assert "s3://no-such-bucket/prefix" in message and "'no-such-bucket' does not exist" in message
            assert SECRET not in message

    def test_an_unreachable_endpoint_is_one_error_naming_the_root_and_endpoint(self) -> None:
        closed = f"http://127.0.0.1:{free_port()}"
        options = {
            "client_kwargs": {"endpoint_url": closed},
            "key": "x",
            "secret": SECRET,
            # Fail at once rather than after botocore's retries.
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        }
        store = ArtifactStore("s3://bucket/prefix", storage_options=options)
        with pytest.raises(ArtifactStoreError) as excinfo:
            store.put_bytes(b"x", "a/b")
        message = str(excinfo.value)
        assert "s3://bucket/prefix" in message and closed in message
        assert SECRET not in message

    def test_an_object_store_without_its_backend_names_the_extra_to_install(self) -> None:
        if importlib.util.find_spec("gcsfs") is not None:
            pytest.skip("gcsfs is installed here; the hint shows only without it")
        with pytest.raises(ArtifactStoreError, match=r"gs://bucket/x.*gcsfs.*shipyard\[gcs\]"):
            ArtifactStore("gs://bucket/x")

    def test_a_store_configured_from_settings_reaches_the_bucket(self, s3_settings: Settings) -> None:
        store = ArtifactStore.configured(s3_settings)
        assert store.root == s3_settings.artifact_root
        store.put_bytes(b"x", "sub/f")
        # A folder under the root (an experiment's, a run's) gets the same options; a local path none.
        assert ArtifactStore.configured(s3_settings, store.uri("sub")).read_bytes("f") == b"x"
        assert s3_settings.storage_options_for("/tmp/x") == {}
        store.delete()
