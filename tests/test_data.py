"""Data: the CIFAR-10 pickle reader on small batch files written here in the real format, digits, probe, shifts."""

import pickle

import numpy as np
import pytest
import torch

from boundlab.empirical import data as D


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: torch's intra-op threads oversubscribe them (10x slower under load); restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def _write_cifar(folder, n_per_batch=6, skip=(), seed=0):
    """Write the six CIFAR-10 python batches (bytes keys, (n, 3072) uint8 rows of R, G, B planes)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in D.CIFAR10_FILES:
        if name in skip:
            continue
        x = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": y, b"data": x, b"filenames": []}, fh)
        arrays[name] = (x, y)
    return arrays


def test_cifar10_reader_layout_and_scale(tmp_path):
    arrays = _write_cifar(tmp_path)
    d = D.load_cifar10(tmp_path)
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_test.shape == (6, 3, 32, 32)
    x, y = arrays["test_batch"]
    # pixel (c, i, j) of image 0 is data[0, c*1024 + i*32 + j] / 255; a wrong reshape/transpose breaks this
    for c, i, j in ((0, 0, 0), (1, 5, 7), (2, 31, 30)):
        assert d.x_test[0, c, i, j].item() == pytest.approx(x[0, c * 1024 + i * 32 + j] / 255.0)
    assert d.y_test.tolist() == y
    # train batches concatenated in order 1..5 (wrong order breaks this)
    assert d.y_train[6:12].tolist() == arrays["data_batch_2"][1]
    assert d.mean == D.CIFAR10_MEAN and d.std == D.CIFAR10_STD
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1


def test_cifar10_nested_folder_and_limits(tmp_path):
    nested = tmp_path / "cifar-10-batches-py"
    nested.mkdir()
    _write_cifar(nested)
    d = D.load_cifar10(tmp_path, max_train=4, max_test=2)
    assert d.x_train.shape[0] == 4 and d.x_test.shape[0] == 2


def test_cifar10_missing_files_named(tmp_path):
    _write_cifar(tmp_path, skip=("data_batch_3", "test_batch"))
    with pytest.raises(D.DataError, match="data_batch_3.*test_batch|test_batch.*data_batch_3"):
        D.load_cifar10(tmp_path)
    with pytest.raises(D.DataError, match="data-dir"):
        D.load_cifar10(None)


def test_cifar10_malformed_batch(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(D.DataError, match="test_batch"):
        D.load_cifar10(tmp_path)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(D.DataError, match="3072"):
        D.load_cifar10(tmp_path)


def test_digits_embedded_split_and_resize():
    d = D.load_digits(size=16, seed=3)
    assert d.x_train.shape[1:] == (1, 16, 16)
    assert d.x_train.shape[0] + d.x_test.shape[0] == 1797
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1
    # mean/std are the training split's statistics (a constant placeholder would break this)
    assert d.mean[0] == pytest.approx(float(d.x_train.mean()), rel=1e-5)
    # the split depends on the seed and is reproducible
    assert torch.equal(D.load_digits(size=16, seed=3).y_test, d.y_test)
    assert not torch.equal(D.load_digits(size=16, seed=4).y_test, d.y_test)


def test_dataset_and_probe_errors():
    with pytest.raises(D.InputError, match="dataset"):
        D.load_dataset("mnist")
    with pytest.raises(D.DataError, match="probe"):
        D.probe_indices(10, 11, 0)
    idx = D.probe_indices(100, 20, 7)
    assert len(set(idx.tolist())) == 20 and np.array_equal(idx, D.probe_indices(100, 20, 7))
    assert not np.array_equal(idx, D.probe_indices(100, 20, 8))


def test_noise_and_corruptions_stay_in_box():
    x = torch.rand(4, 3, 16, 16)
    n1, n2 = D.gaussian_noise(x, 0.1, 1), D.gaussian_noise(x, 0.1, 1)
    assert torch.equal(n1, n2) and not torch.equal(n1, D.gaussian_noise(x, 0.1, 2))
    assert float(n1.min()) >= 0 and float(n1.max()) <= 1
    for kind in D.CORRUPTIONS:
        c = D.corrupt(x, kind, 1.0)
        assert c.shape == x.shape and float(c.min()) >= 0 and float(c.max()) <= 1
        assert not torch.allclose(c, x)
    # blur preserves constant images (a kernel that does not sum to 1 breaks this); contrast keeps the mean
    const = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(D.corrupt(const, "blur", 1.0), const, atol=1e-6)
    assert torch.allclose(D.corrupt(x, "contrast", 1.0).mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-5)
    with pytest.raises(D.InputError, match="kind"):
        D.corrupt(x, "fog")
