"""CIFAR sources: bit-exact against a plain re-implementation of the original, and bad inputs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from dataset_files import python2_cifar_pickle, write_cifar10, write_cifar100, write_pickle

from pgtools.errors import PgtoolsError
from pgtools.sources.cifar import open_cifar10, open_cifar100


def reference_images(rows: np.ndarray) -> np.ndarray:
    """Row r holds channel c, row y, column x at index c*1024 + y*32 + x."""
    out = np.empty((len(rows), 3, 32, 32), dtype=np.uint8)
    for i, row in enumerate(rows):
        for c in range(3):
            for y in range(32):
                out[i, c, y] = row[c * 1024 + y * 32:c * 1024 + y * 32 + 32]
    return out


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    for i, label in enumerate(labels):
        out[i, label] = 1
    return out


def collect(source) -> np.ndarray:
    return np.concatenate(list(source.batches))


def test_cifar10_images_and_labels(tmp_path):
    rows, labels = write_cifar10(tmp_path, 30)
    source = open_cifar10(tmp_path, export_labels=True)
    assert (source.resolution, source.channels, source.count) == (32, 3, 150)
    np.testing.assert_array_equal(collect(source), reference_images(rows))
    np.testing.assert_array_equal(source.labels, one_hot(labels, 10))
    assert source.attrs["source_format"] == "cifar10"


def test_cifar10_without_labels(tmp_path):
    write_cifar10(tmp_path, 3)
    assert open_cifar10(tmp_path).labels is None


@pytest.mark.parametrize("label_type, classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_fine_and_coarse(tmp_path, label_type, classes):
    rows, fine, coarse = write_cifar100(tmp_path, 80)
    source = open_cifar100(tmp_path, export_labels=True, label_type=label_type)
    np.testing.assert_array_equal(collect(source), reference_images(rows))
    np.testing.assert_array_equal(source.labels, one_hot(fine if label_type == "fine" else coarse, classes))
    assert source.attrs["label_type"] == label_type


def test_pickles_written_by_python2_load(tmp_path):
    rows, labels = write_cifar10(tmp_path, 6)
    for index in range(5):
        part = slice(6 * index, 6 * index + 6)
        (tmp_path / f"data_batch_{index + 1}").write_bytes(python2_cifar_pickle(rows[part], labels[part].tolist()))
    assert (tmp_path / "data_batch_1").read_bytes()[:2] == b"\x80\x02"
    source = open_cifar10(tmp_path, export_labels=True)
    np.testing.assert_array_equal(collect(source), reference_images(rows))
    np.testing.assert_array_equal(source.labels, one_hot(labels, 10))


def test_str_keys_are_accepted(tmp_path):
    rows, labels, _ = write_cifar100(tmp_path, 5)
    write_pickle(tmp_path / "train", {"data": rows, "fine_labels": list(labels), "coarse_labels": [0] * 5})
    np.testing.assert_array_equal(collect(open_cifar100(tmp_path)), reference_images(rows))


def test_missing_folder(tmp_path):
    with pytest.raises(PgtoolsError, match=r"nowhere: no such folder \(expected the CIFAR files data_batch_1, "):
        open_cifar10(tmp_path / "nowhere")


def test_missing_batch_file(tmp_path):
    write_cifar10(tmp_path, 2)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(PgtoolsError, match=r"data_batch_4: no such file$"):
        open_cifar10(tmp_path)


def test_extracted_parent_folder_gets_a_hint(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", 2)
    with pytest.raises(PgtoolsError, match=r"data_batch_1: no such file \(found cifar-10-batches-py/data_batch_1 inside: pass .*cifar-10-batches-py instead\)"):
        open_cifar10(tmp_path)


def test_pickle_without_expected_keys(tmp_path):
    write_cifar10(tmp_path, 2)
    write_pickle(tmp_path / "data_batch_2", {b"images": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    with pytest.raises(PgtoolsError) as err:
        open_cifar10(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'data_batch_2'}: the pickle has no b'data' entry (found: b'images', b'labels'); "
        f"expected a CIFAR python batch with b'data' and b'labels'"
    )


def test_cifar100_pickle_is_not_cifar10(tmp_path):
    write_pickle(tmp_path / "train", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    with pytest.raises(PgtoolsError, match=r"train: the pickle has no b'fine_labels' entry"):
        open_cifar100(tmp_path)


def test_code_in_a_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    write_cifar10(tmp_path, 2)
    with open(tmp_path / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": Evil(), b"labels": []}, handle, protocol=2)
    with pytest.raises(PgtoolsError, match=r"data_batch_1: not a readable CIFAR python pickle \(UnpicklingError: it refers to posix.system"):
        open_cifar10(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_garbage_file(tmp_path):
    write_cifar10(tmp_path, 2)
    (tmp_path / "data_batch_3").write_bytes(b"this is not a pickle at all")
    with pytest.raises(PgtoolsError, match=r"data_batch_3: not a readable CIFAR python pickle"):
        open_cifar10(tmp_path)


def test_truncated_pickle(tmp_path):
    write_cifar10(tmp_path, 4)
    data = (tmp_path / "data_batch_5").read_bytes()
    (tmp_path / "data_batch_5").write_bytes(data[:len(data) // 2])
    with pytest.raises(PgtoolsError, match=r"data_batch_5: not a readable CIFAR python pickle"):
        open_cifar10(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2, 3], r"data_batch_1: the pickle holds a list, not the dict of a CIFAR batch"),
        ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
         r"data_batch_1: b'data' is uint8 \(2, 1024\); expected uint8 \(n, 3072\)"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]},
         r"data_batch_1: image/label count mismatch: 3 images but 2 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
         r"data_batch_1 b'labels': label 10 at index 1 is outside 0..9"),
    ],
    ids=["not-a-dict", "wrong-data-shape", "count-mismatch", "label-out-of-range"],
)
def test_malformed_batch(tmp_path, content, message):
    write_cifar10(tmp_path, 2)
    write_pickle(tmp_path / "data_batch_1", content)
    with pytest.raises(PgtoolsError, match=message):
        open_cifar10(tmp_path)
