"""Where the named datasets live: official mirrors, and the folders searched before downloading."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .download import download_url
from .errors import DatasetError

SYSTEM_DIR = Path("/usr/share/datasets")


@dataclass(frozen=True)
class DatasetSource:
    """The files of one dataset (name -> md5) at `base_url`; `extracted` is a folder that may
    stand in for them once an archive has been unpacked."""

    name: str
    base_url: str
    files: dict[str, str]
    extracted: str | None = None
    apt_package: str | None = None

    def present_in(self, folder: Path) -> bool:
        if self.extracted and (folder / self.extracted).is_dir():
            return True
        # A `.gz` file also counts when it was decompressed in place.
        return all((folder / f).is_file() or (folder / f.removesuffix(".gz")).is_file() for f in self.files)


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_CIFAR = "https://www.cs.toronto.edu/~kriz/"

SOURCES = {
    "fashion-mnist": DatasetSource(
        "fashion-mnist",
        _FASHION,
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        apt_package="dataset-fashion-mnist",
    ),
    "mnist": DatasetSource(
        "mnist",
        _MNIST,
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "cifar10": DatasetSource(
        "cifar10", _CIFAR, {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}, "cifar-10-batches-py"
    ),
    "cifar100": DatasetSource(
        "cifar100", _CIFAR, {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e55c1d2c8d83a"}, "cifar-100-python"
    ),
}


def default_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnetkit"


def locate_dataset(
    source: DatasetSource | str,
    data_dir: str | Path | None = None,
    download: bool = True,
    *,
    system_dir: Path = SYSTEM_DIR,
    cache_root: Path | None = None,
) -> Path:
    """The folder holding `source`'s files, downloading them if needed and allowed.

    Searched in order: `data_dir` and `data_dir/<name>`, `/usr/share/datasets/<name>` (Debian
    packages), `~/.cache/resnetkit/<name>`. Downloads go to `data_dir/<name>` when a `data_dir`
    is given, else to the cache.
    """
    if isinstance(source, str):
        source = SOURCES[source]
    cache = cache_root or default_cache_root()
    local = [Path(data_dir), Path(data_dir) / source.name] if data_dir is not None else []
    candidates = [*local, system_dir / source.name, cache / source.name]
    for folder in candidates:
        if source.present_in(folder):
            return folder
    target = local[1] if local else cache / source.name
    problem = "downloading is disabled (download=False)"
    if download:
        try:
            for name, md5 in source.files.items():
                if not (target / name).is_file():
                    download_url(source.base_url + name, target / name, md5)
            return target
        except DatasetError as e:
            problem = f"the download failed: {e}"
    hints = [f"install it with `apt-get install {source.apt_package}`"] if source.apt_package else []
    hints.append(f"put {', '.join(source.files)} in a folder and pass that folder as data_dir")
    if not download:
        hints.append("allow downloading (download=True)")
    raise DatasetError(
        f"dataset {source.name!r} not found; looked in {', '.join(map(str, dict.fromkeys(candidates)))}; "
        f"{problem}. To fix: {'; or '.join(hints)}."
    )
