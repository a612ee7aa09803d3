"""Bad input at the command line: one line on stderr naming the argument, exit status 2, no traceback, and no
work done first (the table of the issue "A researcher's first hour")."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from boundlab.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    np.save(d / "K.npy", rng.standard_normal((2, 1, 3, 3)))
    (d / "folder").mkdir()
    (d / "text.txt").write_text("hello world\n")
    (d / "text.npy").write_text("hello world\n")
    (d / "empty.npy").write_bytes(b"")
    np.savez(d / "att.npz", query=np.ones((1, 4, 2)), key=np.ones((1, 4, 2)), value=np.ones((1, 4, 2)))
    raw = (d / "att.npz").read_bytes()
    (d / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    np.savez(d / "obj.npz", query=np.array([{"a": 1}], dtype=object), key=np.ones((1, 4, 2)),
             value=np.ones((1, 4, 2)))
    np.save(d / "W.npy", np.ones((3, 3)))
    cifar = d / "cifar"
    cifar.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (cifar / name).write_text("I am not a pickle")
    return d


CASES = [
    (["lipschitz", "conv", "{d}/K.npy", "--input-size", "8", "--json", "{d}/folder"], "--json", "is a folder"),
    (["lipschitz", "conv", "{d}/text.npy", "--input-size", "8"], "KERNEL", "not a numpy file"),
    (["lipschitz", "conv", "{d}/empty.npy", "--input-size", "8"], "KERNEL", "is empty"),
    (["lipschitz", "conv", "{d}/att.npz", "--input-size", "8"], "KERNEL", "expected a single .npy array"),
    (["lipschitz", "conv", "{d}/missing.npy", "--input-size", "8"], "KERNEL", "file not found"),
    (["lipschitz", "conv", "{d}/W.npy", "--input-size", "8"], "KERNEL", "(c_out, c_in, k_h, k_w)"),
    (["lipschitz", "conv", "{d}/K.npy", "--input-size", "0"], "--input-size", ">= 1"),
    (["lipschitz", "attention", "{d}/K.npy", "--tokens", "3", "--radius", "1"], "WEIGHTS", "single .npy array"),
    (["lipschitz", "attention", "{d}/text.txt", "--tokens", "3", "--radius", "1"], "WEIGHTS", "not a numpy file"),
    (["lipschitz", "attention", "{d}/trunc.npz", "--tokens", "3", "--radius", "1"], "WEIGHTS", "truncated"),
    (["lipschitz", "attention", "{d}/obj.npz", "--tokens", "3", "--radius", "1"], "WEIGHTS", "object dtype"),
    (["lipschitz", "attention", "{d}/att.npz", "--tokens", "3", "--radius", "-1"], "--radius", "> 0"),
    (["lipsdp", "{d}/W.npy"], "", "numpy file"),
    (["demo", "--device", "tpu"], "--device", "cpu or cuda"),
    (["rank-collapse", "--patch", "3"], "patch", "divisor"),
    (["convex-heads", "--features", "{d}/missing.npz"], "FEATURES", "not found"),
    (["verify", "-k", "conv.no_such_bound", "--out", "{d}/v"], "-k", "not a registered bound"),
    (["mutate", "--bound", "no.such", "--out", "{d}/m"], "--bound", "unknown bound"),
    (["mutate", "--factor", "1.5", "--out", "{d}/m"], "--factor", "(0, 1)"),
]


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors (a bad option value) exit 2 from parse_args
        return exc.code


@pytest.mark.parametrize("argv,names,says", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_input_is_one_line_exit_2(files, capsys, argv, names, says):
    assert _run([a.format(d=files) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert names in err and says in err, err


def test_cifar_garbage_is_named_and_never_unpickled_beyond_arrays(files, tmp_path):
    from boundlab.empirical.data import DataError, load_cifar10

    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_cifar10(files / "cifar")

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        with open(tmp_path / name, "wb") as fh:
            pickle.dump({b"data": Evil(), b"labels": [0]}, fh)
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar10(tmp_path)
