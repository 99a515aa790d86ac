"""Downloads, checksums and the offline -> cache -> network lookup, all without a network."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from sgdl_wrap.data.datasets import Checksum, ChecksumError, DownloadError, FileSpec
from sgdl_wrap.data.datasets import download as download_module
from sgdl_wrap.data.datasets.download import extract_member, fetch
from sgdl_wrap.data.datasets.files import resolve_file

CONTENT = b"0\t5\t1\n0\t7\t0\n3\t2\t1\n"


def sha256(content: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(content).hexdigest())


def git_blob(content: bytes) -> Checksum:
    return Checksum("git-blob", hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest())


def served(tmp_path: Path, content: bytes = CONTENT, name: str = "remote.rating") -> str:
    """A ``file://`` URL for ``content``: urllib's real code path without a network."""
    source = tmp_path / "server" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    return source.as_uri()


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


# --- checksums ------------------------------------------------------------------------------


def test_git_blob_id_matches_git_hash_object(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(b"hello\n")
    # `printf 'hello\n' | git hash-object --stdin`
    Checksum("git-blob", "ce013625030ba8dba906f756967f9e9ca394464a").verify(path)
    sha256(b"hello\n").verify(path)


def test_checksum_rejects_malformed_values() -> None:
    with pytest.raises(ValueError, match="64 lowercase hex digits"):
        Checksum("sha256", "abc")
    with pytest.raises(ValueError, match="unknown checksum kind 'md5'"):
        Checksum("md5", "0" * 32)  # type: ignore[arg-type]


# --- fetch ----------------------------------------------------------------------------------


@pytest.mark.parametrize("checksum", [sha256(CONTENT), git_blob(CONTENT)])
def test_fetch_file_url(tmp_path: Path, checksum: Checksum) -> None:
    dest = tmp_path / "cache" / "sub" / "file.rating"
    assert fetch(served(tmp_path), dest, checksum) == dest
    assert dest.read_bytes() == CONTENT
    assert leftovers(dest.parent) == ["file.rating"]


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "file.rating"
    expected = sha256(b"something else")
    with pytest.raises(ChecksumError) as error:
        fetch(served(tmp_path), dest, expected)
    message = str(error.value)
    assert str(dest) in message
    assert expected.value in message and hashlib.sha256(CONTENT).hexdigest() in message
    assert leftovers(dest.parent) == []


class _BrokenStream(io.BytesIO):
    """A response that delivers one block, then fails like a dropped connection."""

    headers = {"Content-Length": str(10 * len(CONTENT))}

    def __init__(self, error: BaseException) -> None:
        super().__init__(CONTENT)
        self.error = error
        self.calls = 0

    def read(self, size: int | None = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise self.error
        return super().read(size)


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (ConnectionResetError("connection reset by peer"), DownloadError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_interrupted_download_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, raised: type
) -> None:
    monkeypatch.setattr(
        download_module.urllib.request, "urlopen", lambda url, timeout: _BrokenStream(error)
    )
    dest = tmp_path / "cache" / "file.rating"
    with pytest.raises(raised):
        fetch("https://example.invalid/file.rating", dest, sha256(CONTENT))
    assert leftovers(dest.parent) == []


def test_short_download_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Short(io.BytesIO):
        headers = {"Content-Length": str(len(CONTENT) + 5)}

    monkeypatch.setattr(
        download_module.urllib.request, "urlopen", lambda url, timeout: Short(CONTENT)
    )
    dest = tmp_path / "cache" / "file.rating"
    with pytest.raises(DownloadError, match=f"got {len(CONTENT)} bytes, the server announced"):
        fetch("https://example.invalid/file.rating", dest, None)
    assert leftovers(dest.parent) == []


def test_fetch_missing_source_raises_download_error(tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere.rating").as_uri()
    with pytest.raises(DownloadError, match="nowhere.rating"):
        fetch(missing, tmp_path / "cache" / "f", sha256(CONTENT))
    assert leftovers(tmp_path / "cache") == []


# --- zip members ----------------------------------------------------------------------------


def make_zip(tmp_path: Path, members: dict[str, bytes]) -> Path:
    archive = tmp_path / "server" / "ml-100k.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return archive


def test_extract_member_verifies(tmp_path: Path) -> None:
    archive = make_zip(tmp_path, {"ml-100k/u.data": CONTENT, "ml-100k/README": b"x"})
    dest = tmp_path / "out" / "u.data"
    extract_member(archive, "ml-100k/u.data", dest, sha256(CONTENT))
    assert dest.read_bytes() == CONTENT
    with pytest.raises(ChecksumError, match="ml-100k.zip:ml-100k/README"):
        extract_member(archive, "ml-100k/README", tmp_path / "out" / "bad", sha256(CONTENT))
    with pytest.raises(DownloadError, match="has no member 'ml-100k/u.item'"):
        extract_member(archive, "ml-100k/u.item", tmp_path / "out" / "none", sha256(CONTENT))
    assert leftovers(tmp_path / "out") == ["u.data"]


def test_resolve_downloads_zip_and_extracts_member(tmp_path: Path) -> None:
    url = make_zip(tmp_path, {"ml-100k/u.data": CONTENT}).as_uri()
    spec = FileSpec("ml-100k-raw/u.data", url, sha256(CONTENT), member="ml-100k/u.data")
    cache = tmp_path / "cache"
    path = resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=cache)
    assert path == cache / "ml-100k-raw" / "u.data" and path.read_bytes() == CONTENT
    assert leftovers(cache / "ml-100k-raw") == ["ml-100k.zip", "u.data"]


def test_resolve_drops_a_zip_whose_member_is_wrong(tmp_path: Path) -> None:
    url = make_zip(tmp_path, {"ml-100k/u.data": b"tampered"}).as_uri()
    spec = FileSpec("ml-100k-raw/u.data", url, sha256(CONTENT), member="ml-100k/u.data")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError):
        resolve_file([spec], data_dir=None, cache_dir=cache)
    assert leftovers(cache / "ml-100k-raw") == []


# --- lookup order ---------------------------------------------------------------------------


def place(root: Path, relative: str, content: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_offline_dir_takes_precedence(tmp_path: Path) -> None:
    spec = FileSpec("ds/f.rating", served(tmp_path), sha256(CONTENT))
    offline = place(tmp_path / "offline", spec.path, CONTENT)
    place(tmp_path / "cache", spec.path, CONTENT)
    assert resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache") == (
        offline
    )


def test_cache_is_used_before_download(tmp_path: Path) -> None:
    spec = FileSpec("ds/f.rating", (tmp_path / "no-such-file").as_uri(), sha256(CONTENT))
    cached = place(tmp_path / "cache", spec.path, CONTENT)
    assert resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache") == (
        cached
    )


def test_download_goes_to_cache(tmp_path: Path) -> None:
    spec = FileSpec("ds/f.rating", served(tmp_path), git_blob(CONTENT))
    path = resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "ds" / "f.rating" and path.read_bytes() == CONTENT
    assert not (tmp_path / "offline").exists()


def test_environment_variables_locate_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = FileSpec("ds/f.rating", (tmp_path / "no-such-file").as_uri(), sha256(CONTENT))
    offline = place(tmp_path / "env-offline", spec.path, CONTENT)
    monkeypatch.setenv("SGDL_DATA_DIR", str(tmp_path / "env-offline"))
    monkeypatch.setenv("SGDL_CACHE_DIR", str(tmp_path / "env-cache"))
    assert resolve_file([spec]) == offline
    monkeypatch.delenv("SGDL_DATA_DIR")
    with pytest.raises(FileNotFoundError) as error:
        resolve_file([spec], download=False)
    assert "not set (pass data_dir= or set SGDL_DATA_DIR)" in str(error.value)
    assert str(tmp_path / "env-cache" / spec.path) in str(error.value)


def test_missing_offline_file_message(tmp_path: Path) -> None:
    url = "https://raw.githubusercontent.com/o/r/0123456789abcdef0123456789abcdef01234567/f"
    spec = FileSpec("ds/f.rating", url, sha256(CONTENT))
    with pytest.raises(FileNotFoundError) as error:
        resolve_file(
            [spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache", download=False
        )
    message = str(error.value)
    assert "ds/f.rating not found" in message
    assert str(tmp_path / "offline" / "ds" / "f.rating") in message
    assert str(tmp_path / "cache" / "ds" / "f.rating") in message
    assert url in message and spec.checksum.value in message
    assert "download=False" in message


def test_failed_download_is_reported_as_missing(tmp_path: Path) -> None:
    spec = FileSpec("ds/f.rating", (tmp_path / "gone.rating").as_uri(), sha256(CONTENT))
    with pytest.raises(
        FileNotFoundError, match=r"download failed: downloading file://.*gone.rating"
    ) as error:
        resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache")
    assert isinstance(error.value, FileNotFoundError)
    assert leftovers(tmp_path / "cache" / "ds") == []


def test_corrupt_local_copy_is_an_error(tmp_path: Path) -> None:
    spec = FileSpec("ds/f.rating", served(tmp_path), sha256(CONTENT))
    bad = place(tmp_path / "offline", spec.path, b"0\t5\t1\n")
    with pytest.raises(ChecksumError, match=str(bad)):
        resolve_file([spec], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache")


def test_alternative_found_locally_beats_download(tmp_path: Path) -> None:
    preferred = FileSpec("ds/t.negative", served(tmp_path), sha256(CONTENT))
    alternative = FileSpec("ds/alt/t.negative", served(tmp_path, b"1\t1\n", "b"), sha256(b"1\t1\n"))
    local = place(tmp_path / "offline", alternative.path, b"1\t1\n")
    found = resolve_file(
        [preferred, alternative], data_dir=tmp_path / "offline", cache_dir=tmp_path / "cache"
    )
    assert found == local
    assert not (tmp_path / "cache").exists()


def test_file_spec_paths_stay_inside_the_data_dir() -> None:
    with pytest.raises(ValueError, match="must be relative"):
        FileSpec("../escape", "file:///x", sha256(CONTENT))
