import hashlib
import http.server
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from resnetkit.data import SOURCES, DatasetError, DatasetSource, download_url, file_checksum, locate_dataset

PAYLOAD = b"resnetkit test payload\n" * 1000
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = "0" * 32


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 serving `served/`; yields (folder, base URL)."""
    served = tmp_path_factory.mktemp("served")
    (served / "good.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("checksum, algorithm", [(MD5, "md5"), (SHA256, "sha256"), (MD5.upper(), "md5")])
def test_download_verifies_and_writes(server, tmp_path, checksum, algorithm):
    _, url = server
    dest = download_url(url + "good.bin", tmp_path / "out" / "good.bin", checksum, algorithm)
    assert dest.read_bytes() == PAYLOAD
    assert file_checksum(dest, algorithm) == checksum.lower()
    assert [p.name for p in dest.parent.iterdir()] == ["good.bin"]


def test_checksum_mismatch_names_file_and_both_checksums_and_removes_it(server, tmp_path):
    _, url = server
    dest = tmp_path / "out" / "good.bin"
    with pytest.raises(DatasetError) as error:
        download_url(url + "good.bin", dest, WRONG)
    message = str(error.value)
    assert str(dest) in message and WRONG in message and MD5 in message and "mismatch" in message
    assert list(dest.parent.iterdir()) == []


def test_http_error_is_a_dataset_error_and_leaves_nothing(server, tmp_path):
    _, url = server
    with pytest.raises(DatasetError, match=r"could not download .*absent.bin"):
        download_url(url + "absent.bin", tmp_path / "out" / "absent.bin", MD5)
    assert list((tmp_path / "out").iterdir()) == []


def _source(url: str, md5: str = MD5) -> DatasetSource:
    return DatasetSource("toy", url, {"good.bin": md5}, apt_package="dataset-toy")


def _places(tmp_path: Path) -> dict:
    return {"system_dir": tmp_path / "system", "cache_root": tmp_path / "cache"}


def test_lookup_order_data_dir_then_system_then_cache(server, tmp_path):
    _, url = server
    source, places = _source(url), _places(tmp_path)
    for folder in (tmp_path / "given" / "toy", tmp_path / "system" / "toy", tmp_path / "cache" / "toy"):
        folder.mkdir(parents=True)
        (folder / "good.bin").write_bytes(b"local")
    assert locate_dataset(source, tmp_path / "given", download=False, **places) == tmp_path / "given" / "toy"
    assert locate_dataset(source, tmp_path / "given" / "toy", download=False, **places) == tmp_path / "given" / "toy"
    assert locate_dataset(source, None, download=False, **places) == tmp_path / "system" / "toy"
    (tmp_path / "system" / "toy" / "good.bin").unlink()
    assert locate_dataset(source, None, download=False, **places) == tmp_path / "cache" / "toy"


def test_uncompressed_files_count_as_present(tmp_path):
    source = DatasetSource("toy", "http://unused.invalid/", {"a.gz": WRONG, "b.gz": WRONG})
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "a.gz").write_bytes(b"")
    (tmp_path / "toy" / "b").write_bytes(b"")
    assert locate_dataset(source, tmp_path, download=False, **_places(tmp_path)) == tmp_path / "toy"


def test_downloads_to_cache_or_to_data_dir(server, tmp_path):
    _, url = server
    source, places = _source(url), _places(tmp_path)
    assert locate_dataset(source, None, **places) == tmp_path / "cache" / "toy"
    assert (tmp_path / "cache" / "toy" / "good.bin").read_bytes() == PAYLOAD
    places["cache_root"] = tmp_path / "other_cache"
    assert locate_dataset(source, tmp_path / "mine", **places) == tmp_path / "mine" / "toy"
    assert (tmp_path / "mine" / "toy" / "good.bin").read_bytes() == PAYLOAD


def test_not_found_says_where_it_looked_and_what_to_do(server, tmp_path):
    _, url = server
    places = _places(tmp_path)
    with pytest.raises(DatasetError) as error:
        locate_dataset(_source(url), tmp_path / "given", download=False, **places)
    message = str(error.value)
    for folder in (tmp_path / "given", tmp_path / "system" / "toy", tmp_path / "cache" / "toy"):
        assert str(folder) in message
    assert "apt-get install dataset-toy" in message and "download=True" in message and "data_dir" in message
    with pytest.raises(DatasetError) as error:
        locate_dataset(_source(url, WRONG), None, download=True, **places)
    message = str(error.value)
    assert "download failed" in message and "checksum mismatch" in message
    assert str(tmp_path / "cache" / "toy") in message
    assert not (tmp_path / "cache" / "toy" / "good.bin").exists()


def test_official_sources():
    assert set(SOURCES) == {"fashion-mnist", "mnist", "cifar10", "cifar100"}
    assert SOURCES["fashion-mnist"].base_url == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert SOURCES["fashion-mnist"].files["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert SOURCES["mnist"].files["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    cifar100 = SOURCES["cifar100"]
    assert cifar100.base_url + next(iter(cifar100.files)) == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    for source in SOURCES.values():
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in source.files.values())
    assert replace(SOURCES["mnist"], base_url="http://127.0.0.1/").files == SOURCES["mnist"].files
