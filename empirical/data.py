"""Image data for the TopoLip experiment: CIFAR-10 from local pickle batches, scikit-learn's digits as the default.

Images are float32 tensors ``(N, C, H, W)`` in the **pixel box** :math:`[0,1]`; the per-channel normalisation
``(x - mean) / std`` is done inside every model (:mod:`empirical.models`), so attacks, noise and corruptions act in
pixel space and stay in the box the certified network bounds cover.

* :func:`load_cifar10`: the standard python-pickle batches (``data_batch_1..5``, ``test_batch``) from a local
  folder; nothing is downloaded. Missing files raise :class:`DataError` naming them and how to get them.
  ``max_train`` / ``max_test`` keep the first rows (reproducible, no randomness).
* :func:`load_digits`: scikit-learn's bundled 8x8 digits (1797 images, shipped with the package, no files needed),
  scaled to [0,1], bilinearly resized to ``size`` x ``size``, split train/test by a seeded permutation.
* :func:`probe_indices`: a fixed, seeded subset of the test split (the same images for every model and epoch).
* :func:`gaussian_noise`, :func:`corrupt`: the perturbed and shifted copies of the probe (seeded, clipped to [0,1]).
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from boundlab.theory.validate import InputError, choice, positive_float, positive_int

__all__ = [
    "DataError",
    "ImageData",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_FILES",
    "DATASETS",
    "load_cifar10",
    "load_digits",
    "digits_images",
    "patch_tokens",
    "load_dataset",
    "probe_indices",
    "gaussian_noise",
    "corrupt",
]

# The usual CIFAR-10 per-channel statistics of the training split (pixel values in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DATASETS = ("digits", "cifar10")


class DataError(InputError):
    """Missing or malformed data files, or a request the data cannot satisfy (message names the argument)."""


@dataclass(frozen=True)
class ImageData:
    """A train/test split of images in [0, 1] with the normalisation the models apply."""

    name: str
    x_train: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    description: str

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    def summary(self) -> dict:
        return {"name": self.name, "n_train": int(self.x_train.shape[0]), "n_test": int(self.x_test.shape[0]),
                "channels": self.channels, "image_size": self.image_size, "num_classes": self.num_classes,
                "mean": list(self.mean), "std": list(self.std), "description": self.description}


# --------------------------------------------------------------------------- CIFAR-10
class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR-10 batch holds (dicts, lists, bytes, numpy arrays) and refuses any other class, so
    a foreign pickle in the data folder cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (a CIFAR-10 batch holds arrays only)")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 pickle batch: ``data`` (n, 3072) uint8 (R, G, B planes, row-major) and ``labels`` (n,)."""
    try:
        with open(path, "rb") as fh:
            batch = _BatchUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a data error
        raise DataError(f"data_dir: {path} is not a CIFAR-10 python batch (the files of {CIFAR10_URL}, "
                        f"extracted); reading it failed: {type(exc).__name__}: {str(exc)[:160]}") from exc
    if not isinstance(batch, dict):
        raise DataError(f"data_dir: {path} is not a CIFAR-10 batch (expected a dict, got {type(batch).__name__})")
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"data_dir: {path} lacks the keys 'data' and 'labels' of a CIFAR-10 batch")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DataError(f"data_dir: {path}: 'data' must be (n, 3072) uint8, got {data.shape} {data.dtype}")
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"data_dir: {path}: 'labels' must be n = {data.shape[0]} integers in 0..9")
    return data, labels


def _cifar_folder(data_dir) -> Path:
    if data_dir is None:
        raise DataError(f"data_dir: the cifar10 dataset needs --data-dir (a folder with {', '.join(CIFAR10_FILES)}; "
                        f"get them from {CIFAR10_URL} and extract)")
    root = Path(data_dir)
    for cand in (root, root / "cifar-10-batches-py"):
        if all((cand / f).is_file() for f in CIFAR10_FILES):
            return cand
    missing = [f for f in CIFAR10_FILES if not (root / f).is_file()]
    raise DataError(f"data_dir: {root} lacks the CIFAR-10 python batches {missing}; download {CIFAR10_URL} "
                    f"(no download happens at run time), extract it and pass the folder cifar-10-batches-py")


def _to_images(data: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)


def load_cifar10(data_dir, *, max_train: int | None = None, max_test: int | None = None) -> ImageData:
    """CIFAR-10 from the python-pickle batches in ``data_dir`` (or ``data_dir/cifar-10-batches-py``).

    ``max_train`` / ``max_test`` keep the first rows of the train / test split (for quick runs)."""
    folder = _cifar_folder(data_dir)
    parts = [_read_batch(folder / f) for f in CIFAR10_FILES[:-1]]
    xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = _read_batch(folder / "test_batch")
    if max_train is not None:
        n = positive_int("max_train", max_train)
        xtr, ytr = xtr[:n], ytr[:n]
    if max_test is not None:
        n = positive_int("max_test", max_test)
        xte, yte = xte[:n], yte[:n]
    return ImageData("cifar10", _to_images(xtr), torch.from_numpy(ytr), _to_images(xte), torch.from_numpy(yte),
                     CIFAR10_MEAN, CIFAR10_STD, 10, f"CIFAR-10 python batches from {folder}")


# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def _sk_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    images = d.images.astype(np.float64) / 16.0
    images.setflags(write=False)
    target = d.target.astype(np.int64)
    target.setflags(write=False)
    return images, target


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, the one place they are read: ``(1797, 8, 8)`` float64 in [0, 1] (values
    0..16 divided by 16) and the ``(1797,)`` labels. Read-only arrays, loaded once per process."""
    return _sk_digits_arrays()


def patch_tokens(images, patch: int, stride: int | None = None):
    """Patches of images as tokens, the one tokenisation of boundlab (ViT-style, row-major over the grid).

    ``images``: ``(N, C, H, W)`` (a tensor or an array) or ``(N, H, W)`` (one channel); ``stride`` defaults to
    ``patch`` (non-overlapping). Returns ``(N, T, C * patch * patch)`` of the same type, features ordered
    (channel, row, column) within a patch, tokens row-major over the grid of patch corners.
    """
    patch = positive_int("patch", patch)
    stride = patch if stride is None else positive_int("stride", stride)
    is_tensor = isinstance(images, torch.Tensor)
    x = images if is_tensor else torch.as_tensor(np.asarray(images, dtype=np.float64))
    if x.dim() == 3:
        x = x.unsqueeze(1)  # (N, 1, H, W)
    if x.dim() != 4:
        raise DataError(f"images: expected (N, C, H, W) or (N, H, W), got shape {tuple(x.shape)}")
    if patch > min(x.shape[2:]):
        raise DataError(f"patch: {patch} is larger than the image ({x.shape[2]}x{x.shape[3]})")
    t = F.unfold(x, kernel_size=patch, stride=stride).transpose(1, 2)  # (N, T, C*p*p)
    return t if is_tensor else t.contiguous().numpy()


def load_digits(*, size: int = 16, test_fraction: float = 1 / 3, seed: int = 0) -> ImageData:
    """scikit-learn's bundled digits (8x8, 1 channel, values 0..16) scaled to [0,1] and resized to ``size``.

    The split is a seeded permutation; ``mean``/``std`` are the training split's pixel statistics."""
    size = positive_int("size", size, minimum=8)
    frac = positive_float("test_fraction", test_fraction)
    if not 0 < frac < 1:
        raise DataError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed: expected an integer, got {seed!r}")
    images, target = digits_images()
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    y = torch.from_numpy(target.copy())
    perm = torch.from_numpy(np.random.default_rng(int(seed)).permutation(x.shape[0]))
    n_test = int(round(frac * x.shape[0]))
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = float(x[tr].mean()), float(x[tr].std())
    return ImageData("digits", x[tr].contiguous(), y[tr], x[te].contiguous(), y[te], (mean,), (std,), 10,
                     f"scikit-learn digits resized 8->{size} (bilinear), split seed {seed}")


def load_dataset(name: str, data_dir=None, **kwargs) -> ImageData:
    """``"digits"`` (embedded) or ``"cifar10"`` (needs ``data_dir``)."""
    choice("dataset", name, DATASETS)
    if name == "digits":
        return load_digits(**{k: v for k, v in kwargs.items() if k in ("size", "test_fraction", "seed")})
    return load_cifar10(data_dir, **{k: v for k, v in kwargs.items() if k in ("max_train", "max_test")})


# --------------------------------------------------------------------------- probe and perturbations
def probe_indices(n_test: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct sorted test indices drawn with ``seed``; ``n > n_test`` is an error naming ``probe``."""
    n = positive_int("probe", n)
    if n > n_test:
        raise DataError(f"probe: {n} probe images requested but the test split has only {n_test}")
    return np.sort(np.random.default_rng(int(seed)).choice(n_test, size=n, replace=False))


def gaussian_noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``clip(x + sigma * N(0, I), 0, 1)`` with a seeded generator (pixel scale)."""
    sigma = positive_float("sigma", sigma)
    g = torch.Generator(device=x.device)
    g.manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
    return (x + sigma * noise).clamp(0.0, 1.0)


CORRUPTIONS = ("blur", "contrast")


def corrupt(x: torch.Tensor, kind: str = "blur", severity: float = 1.0) -> torch.Tensor:
    """A deterministic distribution shift of ``x`` (variant D's shifted data), clipped to [0, 1].

    ``blur``: Gaussian blur, standard deviation ``severity`` pixels (kernel radius ``ceil(2 severity)``,
    reflect padding). ``contrast``: ``mean + (x - mean) / (1 + severity)`` per image and channel."""
    choice("kind", kind, CORRUPTIONS)
    s = positive_float("severity", severity)
    if kind == "contrast":
        m = x.mean(dim=(2, 3), keepdim=True)
        return (m + (x - m) / (1.0 + s)).clamp(0.0, 1.0)
    r = max(1, int(np.ceil(2 * s)))
    r = min(r, x.shape[-1] - 1)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k1 = torch.exp(-0.5 * (t / s) ** 2)
    k1 = k1 / k1.sum()
    c = x.shape[1]
    xp = F.pad(x, (r, r, r, r), mode="reflect")
    xp = F.conv2d(xp, k1.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    xp = F.conv2d(xp, k1.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return xp.clamp(0.0, 1.0)
