"""Readers, the Dataset container, and the registry on the shared data (when present)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdl_wrap.data.datasets import DATASETS, Checksum, Dataset, load_dataset
from sgdl_wrap.data.datasets.movielens import build_ml100k_full
from sgdl_wrap.data.datasets.readers import (
    read_movielens_ratings,
    read_rating_file,
    read_test_file,
)
from sgdl_wrap.data.interactions import Interactions

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "ml100k").is_dir(),
    reason=f"shared benchmark data not available at {SHARED_DATA}",
)


def write(tmp_path: Path, content: bytes, name: str = "data.rating") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- readers -------------------------------------------------------------------------------


def test_rating_file_flags_zero_means_noisy(tmp_path: Path) -> None:
    rows = read_rating_file(write(tmp_path, b"0\t5\t1\n0\t7\t0\n3\t2\t1\n"))
    assert rows.users.tolist() == [0, 0, 3]
    assert rows.items.tolist() == [5, 7, 2]
    assert rows.noisy is not None and rows.noisy.tolist() == [False, True, False]


@pytest.mark.parametrize(
    "content",
    [
        b"0\t5\t1\r\n0\t7\t0\r\n3\t2\t1\r\n",  # CRLF
        b"0\t5\t1\n0\t7\t0\n3\t2\t1",  # no final newline
        b"0\t5\t1\r\n0\t7\t0\r\n3\t2\t1",  # CRLF, no final newline
        b"0\t5\t1\n0\t7\t0\n3\t2\t1\n\n\n",  # blank trailing lines
        b"0\t5\t1\r\n0\t7\t0\r\n3\t2\t1\r\n\r\n  \n",  # blank (whitespace-only) trailing lines
    ],
)
def test_rating_file_line_ending_quirks(tmp_path: Path, content: bytes) -> None:
    rows = read_rating_file(write(tmp_path, content))
    assert rows.users.tolist() == [0, 0, 3]
    assert rows.items.tolist() == [5, 7, 2]
    assert rows.noisy is not None and rows.noisy.tolist() == [False, True, False]


def test_duplicates_are_dropped_warned_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, b"0\t5\t1\n0\t7\t0\n0\t5\t1\n1\t1\t1\n0\t7\t0\n")
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning) as record:
        rows = read_rating_file(path)
    message = str(record[0].message)
    assert str(path) in message and "dropped 2 duplicate rows" in message
    assert any("dropped 2 duplicate rows" in entry.message for entry in caplog.records)
    assert rows.users.tolist() == [0, 0, 1]  # first occurrences, in file order
    assert rows.items.tolist() == [5, 7, 1]


def test_duplicates_with_huge_ids_do_not_collide(tmp_path: Path) -> None:
    big = 10**17
    content = f"{big}\t{big}\t1\n{big}\t{big - 1}\t0\n{big}\t{big}\t1\n".encode()
    with pytest.warns(UserWarning, match="dropped 1 duplicate rows"):
        rows = read_rating_file(write(tmp_path, content))
    assert rows.items.tolist() == [big, big - 1]


def test_conflicting_duplicates_raise(tmp_path: Path) -> None:
    path = write(tmp_path, b"0\t5\t1\n1\t1\t1\n0\t5\t0\n")
    with pytest.raises(ValueError, match=r"item 5\) appears on lines 1 and 3"):
        read_rating_file(path)


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"0\t5\t1\n0\tx\t1\n", 2, "unexpected character 'x'"),
        (b"0\t5\t1\n0\t6\t1\n0 7 1\n", 3, "unexpected character ' '"),
        (b"0\t5\t1\n-1\t6\t1\n", 2, "unexpected character '-'"),
        (b"0\t5\t1\n0\t6\n", 2, "expected 3 fields, got 2"),
        (b"0\t5\t1\n0\t6\t1\t9\n", 2, "expected 3 fields, got 4"),
        (b"0\t5\t1\n0\t\t1\n", 2, "empty field"),
        (b"0\t5\t1\n0\t6\t1\t\n", 2, "empty field"),
        (b"0\t5\t1\n\n0\t6\t1\n", 2, "blank line"),
        (b"0\t5\t1\n0\t6\t2\n", 2, "flag must be 0 .* got 2"),
        (b"0\t5\t1\n0\t1234567890123456789\t1\n", 2, "19\\+ digits"),
        (b"0\t5\t1\r0\t6\t1\n", 1, "unexpected character '\\\\r'"),
    ],
)
def test_malformed_lines_name_file_line_and_content(
    tmp_path: Path, content: bytes, line: int, problem: str
) -> None:
    path = write(tmp_path, content)
    shown = content.replace(b"\r\n", b"\n").split(b"\n")[line - 1].decode()
    with pytest.raises(ValueError, match=problem) as error:
        read_rating_file(path)
    message = str(error.value)
    assert str(path) in message
    assert f"line {line}:" in message
    assert repr(shown) in message


def test_test_file_two_columns(tmp_path: Path) -> None:
    rows = read_test_file(write(tmp_path, b"0\t5\n0\t6\n2\t1\n"))
    assert rows.users.tolist() == [0, 0, 2] and rows.items.tolist() == [5, 6, 1]
    assert rows.noisy is None


def test_test_file_three_columns_crlf(tmp_path: Path) -> None:
    rows = read_test_file(write(tmp_path, b"0\t5\t1\r\n0\t6\t1\r\n2\t1\t1\r\n"))
    assert rows.users.tolist() == [0, 0, 2] and rows.items.tolist() == [5, 6, 1]
    assert rows.noisy is not None and not rows.noisy.any()


def test_test_file_tuples_with_negatives(tmp_path: Path) -> None:
    content = b"(0, 5)\t17\t23\t99\r\n(0,6)\t1\t2\r\n( 12 , 3 )\r\n(4, 8)\t7\r\n\r\n"
    rows = read_test_file(write(tmp_path, content))
    assert rows.users.tolist() == [0, 0, 12, 4]
    assert rows.items.tolist() == [5, 6, 3, 8]
    assert rows.noisy is None


def test_test_file_tuple_duplicates_and_errors(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="dropped 1 duplicate rows"):
        rows = read_test_file(write(tmp_path, b"(0, 5)\t1\n(0, 5)\t2\n(1, 1)\t3\n"))
    assert rows.users.tolist() == [0, 1]
    path = write(tmp_path, b"(0, 5)\t1\n(0 5)\t2\n", "bad.negative")
    with pytest.raises(ValueError, match=r"line 2: expected '\(user, item\)'.*'\(0 5\)\\t2'"):
        read_test_file(path)


def test_test_file_rejects_other_layouts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 1: expected 2 or 3 fields, got 4"):
        read_test_file(write(tmp_path, b"0\t5\t1\t7\n"))
    with pytest.raises(ValueError, match="line 2: expected 2 fields, got 3"):
        read_test_file(write(tmp_path, b"0\t5\n0\t6\t1\n"))


def test_empty_files(tmp_path: Path) -> None:
    assert len(read_test_file(write(tmp_path, b"\n"))) == 0
    assert len(read_rating_file(write(tmp_path, b""))) == 0


def test_movielens_ratings(tmp_path: Path) -> None:
    rows = read_movielens_ratings(
        write(tmp_path, b"196\t242\t3\t881250949\n186\t302\t1\t891717742")
    )
    assert rows.users.tolist() == [196, 186]
    assert rows.items.tolist() == [242, 302]
    assert rows.ratings.tolist() == [3, 1]
    assert rows.timestamps.tolist() == [881250949, 891717742]


@settings(max_examples=30, deadline=None)
@given(
    table=st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 1)),
        min_size=1,
        max_size=50,
        unique_by=lambda row: row[:2],
    ),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_rating_file_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    table: list[tuple[int, int, int]],
    crlf: bool,
    final_newline: bool,
) -> None:
    newline = "\r\n" if crlf else "\n"
    text = newline.join("\t".join(map(str, row)) for row in table) + (newline * final_newline)
    path = tmp_path_factory.mktemp("round_trip") / "f.rating"
    path.write_text(text, newline="")
    rows = read_rating_file(path)
    expected = np.array(table, dtype=np.int64)
    assert np.array_equal(rows.users, expected[:, 0])
    assert np.array_equal(rows.items, expected[:, 1])
    assert rows.noisy is not None and np.array_equal(rows.noisy, expected[:, 2] == 0)


def test_out_of_range_ids_name_the_file(tmp_path: Path) -> None:
    rows = read_rating_file(write(tmp_path, b"0\t5\t1\n3\t9\t1\n"))
    with pytest.raises(ValueError, match=r"data.rating: item id 9 is outside .* 8 items"):
        rows.to_interactions(4, 8)


# --- Dataset ------------------------------------------------------------------------------


def test_dataset_validates_id_space_and_clean_test() -> None:
    train = Interactions([0, 1], [0, 1], 2, 3, np.array([False, True]))
    test = Interactions([0], [2], 2, 3)
    with pytest.raises(ValueError, match="different id spaces"):
        Dataset("x", train, Interactions([0], [1], 2, 4), test)
    with pytest.raises(ValueError, match="1 test interactions are flagged noisy"):
        Dataset("x", train, train, train)
    summary = Dataset("x", train, train.select([0]), test).summary()
    assert summary["train"] == 2 and summary["test"] == 1
    assert summary["train_noise_rate"] == 0.5 and summary["valid_noise_rate"] == 0.0


def test_unknown_dataset_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'; available: adressa, ml100k"):
        load_dataset("nope")


def test_ml100k_full_split_is_per_user_and_seeded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(1, 31), 40)
    items = np.concatenate([rng.choice(np.arange(1, 1683), 40, replace=False) for _ in range(30)])
    ratings = rng.integers(1, 6, users.size)
    lines = [f"{u}\t{i}\t{r}\t0" for u, i, r in zip(users, items, ratings, strict=True)]
    path = write(tmp_path, "\n".join(lines).encode(), "u.data")
    first = build_ml100k_full(read_movielens_ratings(path), seed=3)
    again = build_ml100k_full(read_movielens_ratings(path), seed=3)
    other = build_ml100k_full(read_movielens_ratings(path), seed=4)
    assert np.array_equal(first.test.items, again.test.items)
    assert not np.array_equal(first.test.items, other.test.items)
    assert first.n_users == 943 and first.n_items == 1683
    # 40 ratings per user: 32 / 4 / 4, minus noisy test rows.
    assert np.array_equal(first.train.user_counts[:30], np.full(30, 32))
    assert np.array_equal(first.valid.user_counts[:30], np.full(30, 4))
    assert first.test.noisy is None
    assert first.train.noisy is not None and first.valid.noisy is not None
    removed = int((ratings < 3).sum()) - int(first.train.noisy.sum() + first.valid.noisy.sum())
    assert len(first.train) + len(first.valid) + len(first.test) == users.size - removed


# --- registry on the shared data -------------------------------------------------------------


@needs_shared
def test_registry_checksums_match_shared_files() -> None:
    checked = 0
    for spec in DATASETS.values():
        for candidates in spec.files.values():
            for file in candidates:
                local = SHARED_DATA / file.path
                if local.is_file():
                    file.checksum.verify(local)
                    checked += 1
    assert checked == 8


@needs_shared
def test_ml100k_counts(tmp_path: Path) -> None:
    data = load_dataset("ml100k", data_dir=SHARED_DATA, cache_dir=tmp_path, download=False)
    assert (len(data.train), len(data.valid), len(data.test)) == (66_899, 8_652, 7_208)
    assert (data.n_users, data.n_items) == (497, 1683)
    assert data.train.noisy is not None and int(data.train.noisy.sum()) == 11_899
    assert data.valid.noisy is not None and int(data.valid.noisy.sum()) == 1_532
    assert data.test.noisy is None or not data.test.noisy.any()
    assert int((data.train.user_counts > 0).sum()) == 497


@needs_shared
def test_ml100k_full_counts(tmp_path: Path) -> None:
    data = load_dataset("ml100k-full", data_dir=SHARED_DATA, cache_dir=tmp_path, download=False)
    assert (data.n_users, data.n_items) == (943, 1683)
    assert int((data.train.user_counts > 0).sum()) == 943
    # Users whose few test draws were all noisy end up without test items (13 with seed 0).
    assert int((data.test.user_counts > 0).sum()) > 900
    assert data.train.noisy is not None and data.valid.noisy is not None
    noisy_kept = int(data.train.noisy.sum() + data.valid.noisy.sum())
    removed_from_test = 6_110 + 11_370 - noisy_kept  # ratings 1 and 2
    total = len(data.train) + len(data.valid) + len(data.test)
    assert total == 100_000 - removed_from_test
    assert abs(float(data.train.noisy.mean()) - 0.1748) < 0.005
    assert len(data.train) / 100_000 == pytest.approx(0.8, abs=0.01)


@needs_shared
@pytest.mark.parametrize("name", ["yelp", "adressa"])
def test_missing_train_file_error(tmp_path: Path, name: str) -> None:
    train = DATASETS[name].files["train"][0]
    with pytest.raises(FileNotFoundError) as error:
        load_dataset(name, data_dir=SHARED_DATA, cache_dir=tmp_path, download=False)
    message = str(error.value)
    assert train.path in message
    assert str(SHARED_DATA / train.path) in message
    assert str(tmp_path / train.path) in message
    assert train.url in message and train.url.startswith("https://raw.githubusercontent.com/")
    assert "download=False" in message


def _tiny_train(tmp_path: Path, name: str, n_users: int, n_items: int) -> Path:
    path = tmp_path / name
    path.write_text(f"0\t0\t1\n{n_users - 1}\t{n_items - 1}\t0\n")
    return path


@needs_shared
def test_adressa_files_fit_the_hard_coded_id_space(tmp_path: Path) -> None:
    spec = DATASETS["adressa"]
    paths = {
        "train": _tiny_train(tmp_path, "train.rating", spec.n_users, spec.n_items),
        "valid": SHARED_DATA / "adressa/adressa.valid.rating",
        "test": SHARED_DATA / "adressa/from_DeCA/adressa.test.negative",
    }
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        data = spec.build(spec, paths, 0)
    messages = [str(entry.message) for entry in record]
    assert any("dropped 604 duplicate rows" in message for message in messages)
    assert any(
        "95 (user, item) pairs are in both valid and test" in message for message in messages
    )
    assert (data.n_users, data.n_items) == (212_231, 6_596)
    assert (len(data.valid), len(data.test)) == (53_262, 18_028)
    assert data.valid.noisy is not None and int(data.valid.noisy.sum()) == 35_770
    assert int((data.test.user_counts > 0).sum()) == 10_380


@needs_shared
def test_yelp_files_fit_the_hard_coded_id_space(tmp_path: Path) -> None:
    spec = DATASETS["yelp"]
    paths = {
        "train": _tiny_train(tmp_path, "train.rating", spec.n_users, spec.n_items),
        "valid": SHARED_DATA / "yelp/yelp.valid.rating",
        "test": SHARED_DATA / "yelp/yelp.test.negative",
    }
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        data = spec.build(spec, paths, 0)
    assert (data.n_users, data.n_items) == (45_548, 57_396)
    assert (len(data.valid), len(data.test)) == (209_453 - 1_202, 163_308 - 874)
    assert int((data.test.user_counts > 0).sum()) == 45_525


def test_registry_sources_are_pinned() -> None:
    assert set(DATASETS) == {"ml100k", "ml100k-full", "adressa", "yelp"}
    for spec in DATASETS.values():
        for candidates in spec.files.values():
            for file in candidates:
                assert isinstance(file.checksum, Checksum)
                if file.url.startswith("https://raw.githubusercontent.com/"):
                    commit = file.url.split("/")[5]
                    assert len(commit) == 40 and int(commit, 16) >= 0
                else:
                    assert file.url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
                    assert file.member == "ml-100k/u.data"
