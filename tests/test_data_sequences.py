"""Sequence readers (time series and text) on small files written here in their real formats, the
UCR/UEA datasets aeon bundles, Debian's fortunes, and every bad input: one line naming the file."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from resnetkit.data import DatasetError
from resnetkit.data.sequences import (
    MAX_VALUES,
    TEST_FRACTION,
    SequenceSplit,
    is_sequence_spec,
    load_sequences,
    ucr_names,
    znormalize,
)
from resnetkit.data.sequences.fortunes import FORTUNES_DIR, MIN_FORTUNES
from resnetkit.data.sequences.ts_format import read_ts
from resnetkit.data.sequences.ucr import aeon_data_dir

ISSUE_SETS = ("GunPoint", "ArrowHead", "ItalyPowerDemand", "OSULeaf", "BasicMotions", "JapaneseVowels")


def _one_line(error: pytest.ExceptionInfo, path: Path | str, *needles: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, message
    return message


def _ts(
    path: Path, rows: list[str], header: str = "@univariate true\n@equalLength false\n@classLabel true a b"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# written by the test\n@problemName Test\n{header}\n@data\n" + "\n".join(rows) + "\n")
    return path


def _line(header: str, row: int) -> str:
    """The line number of data row ``row`` (from 0) in a file written by ``_ts``."""
    return f"line {5 + header.count(chr(10)) + row}"


def _two_class_rows(n: int = 5, channels: int = 1) -> list[str]:
    rows = []
    for i in range(2 * n):
        series = ":".join(",".join(str((i + 1) * (t + c + 1) % 7) for t in range(4 + i % 3)) for c in range(channels))
        rows.append(f"{series}:{'ab'[i % 2]}")
    return rows


def _normalised(split: SequenceSplit) -> None:
    for i, length in enumerate(split.lengths):
        valid = split.values[i, :, :length].astype(np.float64)
        for channel in valid:
            if channel.any():
                assert abs(channel.mean()) < 1e-5 and abs(channel.std() - 1) < 1e-4
        assert not split.values[i, :, length:].any(), "padding must stay zero"


# ---- UCR/UEA datasets bundled with aeon ------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    return {
        (name, split): load_sequences(f"ucr:{name}", split)
        for name in ("GunPoint", "BasicMotions", "JapaneseVowels")
        for split in ("train", "test")
    }


def test_the_issue_datasets_are_bundled_and_regression_sets_are_not():
    names = ucr_names()
    assert set(ISSUE_SETS) <= set(names), names
    assert "Covid3Month" not in names and "CardanoSentiment" not in names  # @targetLabel: regression


def test_gunpoint_keeps_the_archives_split(bundled):
    train, test = bundled["GunPoint", "train"], bundled["GunPoint", "test"]
    assert train.values.shape == (50, 1, 150) and test.values.shape == (150, 1, 150)
    assert train.values.dtype == np.float32 and train.lengths.dtype == train.targets.dtype == np.int64
    assert train.classes == test.classes == ("1", "2")
    assert train.kind == "series" and train.source == "ucr:GunPoint"
    assert np.bincount(train.targets).tolist() == [24, 26] and np.bincount(test.targets).tolist() == [76, 74]
    _normalised(train)


def test_basic_motions_has_six_channels_and_sorted_classes(bundled):
    train = bundled["BasicMotions", "train"]
    assert train.values.shape == (40, 6, 100)
    assert train.classes == ("badminton", "running", "standing", "walking")  # aeon lowercases labels
    _normalised(train)


def test_japanese_vowels_unequal_lengths_are_padded_and_recorded(bundled):
    train, test = bundled["JapaneseVowels", "train"], bundled["JapaneseVowels", "test"]
    assert train.in_chans == test.in_chans == 12
    assert (train.lengths.min(), train.lengths.max()) == (7, 26) and train.values.shape == (270, 12, 26)
    assert (test.lengths.min(), test.lengths.max()) == (7, 29) and test.values.shape == (370, 12, 29)
    assert train.classes == tuple(str(i) for i in range(1, 10))
    _normalised(train)
    _normalised(test)


def test_our_ts_reader_reads_the_bundled_files_as_aeon_does():
    from aeon.datasets import load_from_ts_file

    for name in ("GunPoint", "JapaneseVowels", "BasicMotions"):
        path = aeon_data_dir() / name / f"{name}_TRAIN.ts"
        ours = read_ts(path)
        x, y = load_from_ts_file(str(path))
        assert [label.lower() for label in ours.labels] == list(y)
        for i, series in enumerate(x):
            assert np.array_equal(ours.values[i, :, : ours.lengths[i]], np.asarray(series, dtype=np.float32))


def test_bundled_sets_load_with_downloading_made_impossible(monkeypatch):
    import aeon.datasets._data_loaders as loaders

    def no_network(*args, **kwargs):
        raise AssertionError("aeon was asked to download")

    monkeypatch.setattr(loaders, "_download_all_zenodo_files", no_network)
    monkeypatch.setattr(loaders, "urlopen", no_network)
    for name in ISSUE_SETS:
        assert len(load_sequences(f"ucr:{name}", "train")) > 0


def test_a_validation_split_is_stratified_and_seeded(bundled):
    train = bundled["GunPoint", "train"]
    kept, held = train.split(10, seed=0)
    assert len(kept) == 40 and len(held) == 10 and np.bincount(held.targets).tolist() == [5, 5]
    assert np.array_equal(train.split(10, seed=0)[1].values, held.values)
    assert held.classes == train.classes and held.kind == "series"


def test_a_name_aeon_does_not_bundle_is_refused_without_download():
    with pytest.raises(DatasetError) as error:
        load_sequences("ucr:Wafer", "train")
    _one_line(error, "ucr:Wafer", "nothing is downloaded", "GunPoint, ItalyPowerDemand")


def test_ucr_names_match_any_case_and_a_root_holds_an_archive(tmp_path):
    assert load_sequences("ucr:gunpoint", "test").source == "ucr:GunPoint"
    rows = _two_class_rows()
    header = "@univariate true\n@equalLength false\n@classLabel true a b"
    _ts(tmp_path / "Mine" / "Mine_TRAIN.ts", rows, header)
    _ts(tmp_path / "Mine" / "Mine_TEST.ts", rows[:4], header)
    assert ucr_names(tmp_path) == ["Mine"]
    test = load_sequences("ucr:Mine", "test", root=tmp_path)
    assert len(test) == 4 and test.classes == ("a", "b")


def test_max_length_applies_to_bundled_series():
    with pytest.raises(DatasetError) as error:
        load_sequences("ucr:ItalyPowerDemand", "train", max_length=20)
    _one_line(error, "ItalyPowerDemand_TRAIN.ts", "24 steps", "max_length=20")


# ---- z-normalisation ---------------------------------------------------------------------------------


def test_znormalize_per_series_and_channel_over_valid_steps():
    values = np.zeros((3, 2, 5), dtype=np.float32)
    values[0, 0] = [1, 2, 3, 4, 5]
    values[0, 1] = [7, 7, 7, 7, 7]  # constant: zeros, not NaN
    values[1, 0, :3] = [10, 20, 30]  # length 3: the padding must not count
    values[1, 1, :3] = [-1e-20, 0, 1e-20]  # tiny but not constant
    lengths = np.array([5, 3, 1])
    values[2, :, 0] = [4, -4]  # one step: constant
    out = znormalize(values.copy(), lengths)
    assert np.allclose(out[0, 0], (np.arange(1, 6) - 3) / np.sqrt(2))
    assert not out[0, 1].any() and not out[2].any() and not np.isnan(out).any()
    assert np.allclose(out[1, 0, :3], [-1.2247449, 0, 1.2247449]) and not out[1, :, 3:].any()
    assert np.allclose(out[1, 1, :3], [-1.2247449, 0, 1.2247449])


# ---- .ts files -------------------------------------------------------------------------------------


def test_ts_multivariate_unequal_lengths(tmp_path):
    path = _ts(
        tmp_path / "m.ts", _two_class_rows(5, channels=3), "@dimensions 3\n@equalLength false\n@classLabel true a b"
    )
    train = load_sequences(str(path), "train")
    test = load_sequences(str(path), "test")
    assert train.in_chans == test.in_chans == 3 and len(train) + len(test) == 10 and len(test) == 2
    assert set(train.lengths.tolist()) <= {4, 5, 6} and train.values.shape[2] == train.lengths.max()
    assert np.bincount(test.targets).tolist() == [1, 1]  # stratified: one of each class
    _normalised(train)


def test_a_folder_of_train_and_test_files_keeps_them(tmp_path):
    rows = _two_class_rows()
    _ts(tmp_path / "Data_TRAIN.ts", rows)
    _ts(tmp_path / "Data_TEST.ts", rows[:3])
    assert is_sequence_spec(str(tmp_path))
    assert len(load_sequences(str(tmp_path), "train")) == 10 and len(load_sequences(str(tmp_path), "test")) == 3


def test_a_test_label_train_lacks_is_an_error(tmp_path):
    header = "@univariate true\n@classLabel true a b c"
    _ts(tmp_path / "X_TRAIN.ts", _two_class_rows(), header)
    test = _ts(tmp_path / "X_TEST.ts", ["1,2,3:a", "1,2,3:c"], header)
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "test")
    _one_line(error, f"{test}, {_line(header, 1)}", "'c'", "training split's classes")


_BAD_TS = {
    "dimensions": (
        "@dimensions 2\n@classLabel true a b",
        ["1,2:3,4:a", "1,2:b"],
        1,
        "1 channels, but @dimensions says 2",
    ),
    "univariate": (
        "@univariate true\n@classLabel true a b",
        ["1,2:3,4:a"],
        0,
        "2 channels, but @univariate true means 1",
    ),
    "channel_counts": (
        "@classLabel true a b",
        ["1,2:3,4:a", "1,2:3,4:5,6:b"],
        1,
        "3 channels, but earlier lines have 2",
    ),
    "series_length": (
        "@equalLength true\n@seriesLength 3\n@classLabel true a b",
        ["1,2,3:a", "1,2:b"],
        1,
        "@seriesLength says 3",
    ),
    "equal_length": ("@equalLength true\n@classLabel true a b", ["1,2,3:a", "1,2:b"], 1, "(@equalLength true) says 3"),
    "label": ("@classLabel true a b", ["1,2:a", "1,2:z"], 1, "'z' is not listed in @classLabel"),
    "nan": ("@classLabel true a b", ["1,NaN,3:a"], 0, "channel 1: value 2 is nan"),
    "missing": ("@missing true\n@classLabel true a b", ["1,?,3:a"], 0, "missing ('?')"),
    "infinite": ("@classLabel true a b", ["1,inf:a"], 0, "value 2 is inf"),
    "not_a_number": ("@classLabel true a b", ["1,x2:a"], 0, "'x2'"),
    "ragged_channels": ("@dimensions 2\n@classLabel true a b", ["1,2:1,2,3:a"], 0, "different lengths (2, 3)"),
    "unknown_tag": ("@classLable true a b", ["1:a"], -2, "unknown header tag '@classLable'"),
    "no_labels": ("@classLabel false", ["1,2"], None, "no class labels"),
    "timestamps": ("@timeStamps true\n@classLabel true a b", ["1:a"], None, "time-stamped"),
    "regression": ("@targetLabel true", ["1:0.5"], None, "regression"),
    "twice": ("@classLabel true a b\n@classLabel true a b", ["1:a"], -2, "given twice"),
    "channels_past_the_limit": ("@classLabel true a", [":" * 3000 + "a"], 0, "3,000 channels, past the limit of 2,048"),
    "bad_boolean": ("@equalLength maybe\n@classLabel true a", ["1:a"], -3, "true or false"),
}


@pytest.mark.parametrize("case", list(_BAD_TS))
def test_ts_header_and_data_that_disagree_are_one_line(tmp_path, case):
    header, rows, row, needle = _BAD_TS[case]
    path = _ts(tmp_path / "bad.ts", rows, header)
    with pytest.raises(DatasetError) as error:
        read_ts(path)
    _one_line(error, f"{path}{'' if row is None else ', ' + _line(header, row)}", needle)


def test_ts_structure_errors(tmp_path):
    cases = {
        "empty.ts": (b"", "empty file"),
        "nodata.ts": (b"@problemName x\n@classLabel true a\n", "no @data line"),
        "early.ts": (b"@problemName x\n1,2:a\n@data\n", "line 2: data before @data"),
        "nothing.ts": (b"@classLabel true a\n@data\n\n", "no series after @data"),
        "latin1.ts": (b"@problemName caf\xe9\n@data\n", "byte offset 16"),
    }
    for name, (data, needle) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError) as error:
            read_ts(tmp_path / name)
        _one_line(error, tmp_path / name, needle)


def test_a_series_longer_than_max_length_is_an_error(tmp_path):
    path = _ts(tmp_path / "long.ts", ["1,2:a", "1,2,3,4,5,6:a", "1,2:b"], "@classLabel true a b")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(path), "train", max_length=5)
    _one_line(error, f"{path}, {_line('', 1)}", "6 steps", "max_length=5")


def test_a_class_with_a_single_example_is_an_error(tmp_path):
    path = _ts(tmp_path / "one.ts", [*_two_class_rows(5), "1,2,3:c"], "@classLabel true a b c")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(path), "train")
    _one_line(error, path, "class 'c' has", "once 20% is held out as test", "at least 2")
    _ts(tmp_path / "X_TRAIN.ts", [*_two_class_rows(5), "1,2,3:c"], "@classLabel true a b c")
    _ts(tmp_path / "X_TEST.ts", _two_class_rows(1), "@classLabel true a b c")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "test")
    _one_line(error, tmp_path / "X_TRAIN.ts", "class 'c' has a single example in the training split (each")


def test_train_and_test_with_different_channel_counts(tmp_path):
    _ts(tmp_path / "train.ts", _two_class_rows(5, 2), "@classLabel true a b")
    test = _ts(tmp_path / "test.ts", _two_class_rows(2, 3), "@classLabel true a b")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "test")
    _one_line(error, test, "3 channels, but the training file has 2")


# ---- .npz ------------------------------------------------------------------------------------------


def test_npz_two_and_three_dimensional(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "flat.npz", X=rng.normal(size=(20, 16)), y=np.array(["up", "down"] * 10))
    flat = load_sequences(str(tmp_path / "flat.npz"), "train")
    assert flat.values.shape == (16, 1, 16) and flat.classes == ("down", "up")
    x = rng.normal(size=(12, 3, 9)).astype(np.float32)
    lengths = np.array([9, 5] * 6)
    x[1::2, :, 5:] = np.nan  # past each length: ignored
    np.savez(tmp_path / "train.npz", X=x, y=np.array([0, 1, 2] * 4), lengths=lengths, classes=np.array(["a", "b", "c"]))
    np.savez(tmp_path / "test.npz", X=np.nan_to_num(x[:6]), y=np.array([2, 1, 0] * 2))
    train, test = load_sequences(str(tmp_path), "train"), load_sequences(str(tmp_path), "test")
    assert train.classes == ("a", "b", "c") and train.lengths.tolist() == lengths.tolist()
    assert test.targets.tolist() == [2, 1, 0] * 2 and test.lengths.tolist() == [9] * 6
    _normalised(train)
    np.savez(tmp_path / "test.npz", X=np.ones((2, 3, 9)), y=np.array([1, 3]))
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "test")
    _one_line(error, f"{tmp_path / 'test.npz'}: X[1]", "label 3 is out of range 0..2")


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_bad_input_is_one_line(tmp_path):
    x = np.ones((4, 5))
    y = np.array([0, 1, 0, 1])
    nan = x.copy()
    nan[2, 3] = np.nan
    cases = {
        "nan": ({"X": nan, "y": y}, "X[2] channel 1 step 4 is nan"),
        "y_size": ({"X": x, "y": y[:3]}, "X holds 4 series but y has 3"),
        "x_4d": ({"X": np.ones((2, 2, 2, 2)), "y": y[:2]}, "X must be numbers"),
        "extra": ({"X": x, "y": y, "w": y}, "unexpected array 'w.npy'"),
        "out_of_range": (
            {"X": x, "y": np.array([0, 1, 2, 0]), "classes": np.array(["a", "b"])},
            "y[2] = 2 is out of range 0..1",
        ),
        "lengths": ({"X": x, "y": y, "lengths": np.array([5, 0, 5, 5])}, "lengths[1] = 0 is outside 1..5"),
        "no_y": ({"X": x}, "no array 'y'"),
        "float_y": ({"X": x, "y": y * 1.5}, "y must be one-dimensional integers or strings"),
        "empty": ({"X": np.ones((0, 5)), "y": y[:0]}, "is empty"),
    }
    for name, (arrays, needle) in cases.items():
        path = _npz(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DatasetError) as error:
            load_sequences(str(path), "train")
        _one_line(error, path, needle)
    (tmp_path / "objects.npz").write_bytes(b"")
    np.savez(tmp_path / "objects.npz", X=x, y=np.array([[1], "a", None, 2.0], dtype=object))
    (tmp_path / "zero.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("X,y\n")
    for name, needle in (("objects", "Python objects"), ("zero", "empty file"), ("text", "not an .npz file")):
        with pytest.raises(DatasetError) as error:
            load_sequences(str(tmp_path / f"{name}.npz"), "train")
        _one_line(error, tmp_path / f"{name}.npz", needle)


def test_npz_header_is_checked_before_the_array_is_read(tmp_path):
    """A few bytes that declare X of 2^26 x 16 float64: refused from the header, never allocated."""
    import zipfile

    header = {"descr": "<f8", "fortran_order": False, "shape": (1 << 26, 1, 16)}
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("X.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(64))
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(1 << 26, dtype=np.int8))
    with pytest.raises(DatasetError) as error:
        load_sequences(str(path), "train")
    _one_line(error, path, "declares 8,589,934,592 bytes")
    header["shape"] = (4, 1, 16)  # within the limits, but more than the entry holds
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("X.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(bytes(64))
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(4, dtype=np.int8))
    with pytest.raises(DatasetError) as error:
        load_sequences(str(path), "train")
    _one_line(error, path, "more than its zip entry holds")


# ---- UCR-style CSV/TSV -------------------------------------------------------------------------------


def _rows(n_per_class: int = 10, sep: str = "\t") -> str:
    lines = []
    for i in range(2 * n_per_class):
        values = [str((i * 7 + t * 3) % 11) for t in range(i + 2)]  # each row a length of its own
        lines.append(sep.join([str(i % 2 + 1), *values]))
    return "\n".join(lines) + "\n\n"


def test_tsv_and_csv_with_a_seeded_stratified_split(tmp_path):
    (tmp_path / "d.tsv").write_text(_rows())
    (tmp_path / "d.csv").write_text(_rows(sep=","))
    for name in ("d.tsv", "d.csv"):
        train = load_sequences(str(tmp_path / name), "train", seed=3)
        test = load_sequences(str(tmp_path / name), "test", seed=3)
        assert train.classes == ("1", "2") and len(test) == round(20 * TEST_FRACTION)
        assert np.bincount(test.targets).tolist() == [2, 2]
        assert not set(train.lengths.tolist()) & set(test.lengths.tolist())  # disjoint: lengths are unique
        again = load_sequences(str(tmp_path / name), "test", seed=3)
        assert np.array_equal(again.lengths, test.lengths)
        other = load_sequences(str(tmp_path / name), "test", seed=4)
        assert not np.array_equal(other.lengths, test.lengths)


def test_the_ucr_archives_own_tsv_and_its_nan_padding(tmp_path):
    path = aeon_data_dir() / "GunPoint" / "GunPoint_TRAIN.tsv"
    tsv = load_sequences(str(path), "train")
    assert len(tsv) + len(load_sequences(str(path), "test")) == 50 and tsv.in_chans == 1
    (tmp_path / "padded.tsv").write_text("1\t1\t2\t3\n2\t4\t5\tNaN\n1\t3\t2\t1\n2\t1\t5\tNaN\n" * 3)
    padded = load_sequences(str(tmp_path / "padded.tsv"), "train")
    assert sorted(set(padded.lengths.tolist())) == [2, 3]


def test_delimited_bad_input_is_one_line(tmp_path):
    cases = {
        "nan.csv": ("1,1,2\n2,1,NaN,3\n", "line 2", "value 2 is nan"),
        "empty_value.csv": ("1,1,,2\n", "line 1", "value 2 is empty"),
        "label_only.csv": ("1,1,2\n2\n", "line 2", "a label and no values"),
        "header.csv": ("label,t1,t2\n1,1,2\n", "line 1", "no header row"),
        "blank.tsv": ("\n\n", "", "no series"),
        "empty.tsv": ("", "", "empty file"),
    }
    for name, (text, where, needle) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DatasetError) as error:
            load_sequences(str(tmp_path / name), "train")
        _one_line(error, f"{tmp_path / name}{', ' + where if where else ''}", needle)


# ---- Text ------------------------------------------------------------------------------------------


def _texts(root: Path, per_class: int = 5) -> Path:
    for c, name in enumerate(("spam", "ham")):
        for i in range(per_class):
            path = root / name / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name} message {i} {'é' * c}\n", encoding="utf-8")
    return root


def test_a_text_folder_as_utf8_bytes(tmp_path):
    root = _texts(tmp_path / "texts")
    assert is_sequence_spec(str(root))
    train = load_sequences(str(root), "train")
    test = load_sequences(str(root), "test")
    assert train.kind == "text" and train.values.dtype == np.uint8 and train.classes == ("ham", "spam")
    assert len(train) == 8 and np.bincount(test.targets).tolist() == [1, 1]
    texts = {bytes(train.values[i, 0, : train.lengths[i]]).decode() for i in range(len(train))}
    assert "ham message 0 é" in texts or "ham message 1 é" in texts  # é is two bytes; the line end is gone
    assert all(not train.values[i, 0, train.lengths[i] :].any() for i in range(len(train)))


def test_a_text_folder_with_train_and_test(tmp_path):
    _texts(tmp_path / "train")
    _texts(tmp_path / "test", per_class=2)
    assert is_sequence_spec(str(tmp_path))
    assert len(load_sequences(str(tmp_path), "test")) == 4


def test_a_text_csv_with_quoted_commas_and_lines(tmp_path):
    path = tmp_path / "texts.csv"
    rows = "".join(f'"row {i}, with a comma\nand a second line",{"ab"[i % 2]}\n' for i in range(10))
    path.write_text("\ufeffLabel,Text\n".replace("Label,Text", "text,label") + rows, encoding="utf-8")
    train = load_sequences(str(path), "train")
    assert train.kind == "text" and train.classes == ("a", "b")
    assert bytes(train.values[0, 0, : train.lengths[0]]).decode().startswith("row ")


def test_text_bad_input_is_one_line(tmp_path):
    root = _texts(tmp_path / "empty")
    (root / "ham" / "3.txt").write_text("  \n")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(root), "train")
    _one_line(error, root / "ham" / "3.txt", "empty text")
    root = _texts(tmp_path / "latin1")
    (root / "spam" / "2.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DatasetError) as error:
        load_sequences(str(root), "train")
    _one_line(error, root / "spam" / "2.txt", "not UTF-8", "byte offset 3")
    root = _texts(tmp_path / "long")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(root), "train", max_length=12)
    _one_line(error, root / "ham", "bytes, longer than max_length=12")
    cases = {
        "header.csv": ("words,class\nhi,a\n", "line 1", "a text CSV's header is text,label"),
        "three.csv": ("text,label,id\nhi,a,1\n", "line 1", "must name the columns text and label"),
        "fields.csv": ("text,label\nhi,a,b\n", "line 2", "3 fields"),
        "empty_text.csv": ('text,label\n"",a\n', "line 2", "empty text"),
        "empty_label.csv": ("text,label\nhi,\n", "line 2", "empty label"),
        "only_header.csv": ("text,label\n", "", "a header and no texts"),
    }
    for name, (text, where, needle) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DatasetError) as error:
            load_sequences(str(tmp_path / name), "train")
        _one_line(error, f"{tmp_path / name}{', ' + where if where else ''}", needle)
    (tmp_path / "latin1.csv").write_bytes(b"text,label\ncaf\xe9,a\n")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path / "latin1.csv"), "train")
    _one_line(error, tmp_path / "latin1.csv", "byte offset 14")


# ---- Fortunes --------------------------------------------------------------------------------------


def _fortunes(root: Path) -> Path:
    root.mkdir()
    sizes = {"big": MIN_FORTUNES + 5, "large": MIN_FORTUNES + 20, "small": MIN_FORTUNES - 1}
    for name, n in sizes.items():
        items = [f"{name} fortune {i}\n\t\t-- someone" for i in range(n)]
        items += ["x" * 3000, "shared by two files"]
        (root / name).write_text("%\n" + "\n%\n".join(items) + "\n%\n")
        (root / f"{name}.dat").write_bytes(b"\0" * 24)
        (root / f"{name}.u8").symlink_to(name)
    (root / "off").mkdir()
    (root / "off" / "rude").write_text("\n%\n".join(["rude"] * 500))
    (root / "notes").write_text("no .dat beside it: not a category")
    return root


def test_fortunes_rules_and_a_seeded_stratified_split(tmp_path, caplog):
    root = _fortunes(tmp_path / "fortunes")
    train = load_sequences("fortunes", "train", seed=1, root=root)
    test = load_sequences("fortunes", "test", seed=1, root=root)
    assert train.classes == test.classes == ("big", "large")
    assert train.kind == "text" and train.source == "fortunes"
    assert len(train) + len(test) == 2 * MIN_FORTUNES + 25  # the long and the shared ones dropped
    assert np.bincount(test.targets).tolist() == [21, 24]
    texts = lambda s: {bytes(s.values[i, 0, : s.lengths[i]]) for i in range(len(s))}
    assert not texts(train) & texts(test)
    assert b"big fortune 3\n\t\t-- someone" in texts(train) | texts(test)
    assert np.array_equal(load_sequences("fortunes", "test", seed=1, root=root).values, test.values)
    assert not np.array_equal(load_sequences("fortunes", "test", seed=2, root=root).values, test.values)
    assert "3 longer than 1024 bytes dropped" in caplog.text and "1 dropped (small)" in caplog.text


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes are not installed (make install)")
def test_debians_fortunes():
    train = load_sequences("fortunes", "train")
    test = load_sequences("fortunes", "test")
    assert len(train.classes) >= 20 and "computers" in train.classes and "off" not in train.classes
    assert len(train) + len(test) > 10_000 and train.values.shape[2] <= 1024
    assert abs(len(test) / (len(train) + len(test)) - TEST_FRACTION) < 0.01


# ---- Specs -----------------------------------------------------------------------------------------


def test_which_specs_are_sequences(tmp_path):
    from PIL import Image

    (tmp_path / "images" / "cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "cat" / "a.png")
    (tmp_path / "images" / "cat" / "notes.txt").write_text("an image folder may hold notes")
    _texts(tmp_path / "texts")
    for spec in ("ucr:GunPoint", "fortunes", "missing.ts", "x/y.npz", "a.tsv", "b.csv", str(tmp_path / "texts")):
        assert is_sequence_spec(spec), spec
    for spec in ("fashion-mnist", "cifar10", str(tmp_path / "images"), str(tmp_path / "nothing"), "a.png"):
        assert not is_sequence_spec(spec), spec


def test_bad_specs_and_arguments(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path / "missing.ts"), "train")
    _one_line(error, tmp_path / "missing.ts", "not found")
    with pytest.raises(ValueError, match="split must be"):
        load_sequences("ucr:GunPoint", "val")
    with pytest.raises(DatasetError, match="max_length=0"):
        load_sequences("ucr:GunPoint", "train", max_length=0)
    _ts(tmp_path / "a_TRAIN.ts", _two_class_rows())
    shutil.copy(tmp_path / "a_TRAIN.ts", tmp_path / "b_TRAIN.ts")
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "train")
    _one_line(error, tmp_path, "several .ts train or test files", "a_TRAIN.ts, b_TRAIN.ts")
    (tmp_path / "b_TRAIN.ts").unlink()
    with pytest.raises(DatasetError) as error:
        load_sequences(str(tmp_path), "train")
    _one_line(error, tmp_path, "expected a train and a test file of one format", "found a_TRAIN.ts")


def test_a_folder_with_several_formats_reads_the_first_complete_pair(tmp_path):
    for name in ("GunPoint_TRAIN.ts", "GunPoint_TEST.ts", "GunPoint_TRAIN.tsv"):  # as aeon's folder holds them
        shutil.copy(aeon_data_dir() / "GunPoint" / name, tmp_path / name)
    assert load_sequences(str(tmp_path), "test").values.shape == (150, 1, 150)


def test_padding_past_the_limit_is_refused_before_allocating(tmp_path):
    """One long series among many short ones would pad to more than MAX_VALUES."""
    long = ",".join(["1"] * 100_000)
    n = MAX_VALUES // 100_000 + 1
    path = _ts(tmp_path / "ragged.ts", [f"{long}:a"] + ["1:b"] * n)
    with pytest.raises(DatasetError) as error:
        read_ts(path)
    _one_line(error, path, "past the limit", "values for one split")
