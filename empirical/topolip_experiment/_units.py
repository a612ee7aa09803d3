"""One experiment unit: train one (model, seed), probe it at the probe epochs, commit its result exactly once."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import torch

from ...io.executor import commit_result
from ...io.progress import emit
from ...io.results import ResultFileError, config_hash, metadata_block, read_json
from ...io.seeds import derive_seed
from .._torch import resolve_device, torch_threads
from ..data import ImageData, corrupt, gaussian_noise, load_dataset, probe_indices
from ..models import build_model, certified_bounds
from ..robustness import robustness_report
from ..training import fit, load_checkpoint
from ._config import ExperimentConfig, default_train_config, topo_config, unit_config, unit_name

__all__ = ["make_probe", "run_unit", "unit_task", "data_and_probe"]


@torch.no_grad()
def _clouds(model, x: torch.Tensor, batch: int = 256) -> list[np.ndarray]:
    """Per-layer (N, D_l) float64 arrays of flattened layer outputs (eval mode)."""
    model.eval()
    parts: list[list[np.ndarray]] = []
    for i in range(0, x.shape[0], batch):
        outs = model.layer_outputs(x[i:i + batch])
        if not parts:
            parts = [[] for _ in outs]
        for j, o in enumerate(outs):
            parts[j].append(o.reshape(o.shape[0], -1).to("cpu", torch.float64).numpy())
    return [np.concatenate(p) for p in parts]


def _measure(model, probe: dict, cfg: ExperimentConfig, topo, seed: int) -> dict:
    from ..topolip import layer_measurements

    t0 = time.perf_counter()
    bounds = certified_bounds(model)
    clean, pert, shifted = (_clouds(model, probe[k]) for k in ("clean", "perturbed", "shifted"))
    t1 = time.perf_counter()
    layers = layer_measurements(clean, pert, config=topo, shifted=shifted,
                                lipschitz=[None] + list(bounds["blocks"]), seed=seed)
    names = model.layer_names()
    for row in layers:  # the topology helper names layers by index; use the model's names
        row["layer"] = names[row["index"]] if 0 <= row.get("index", -1) < len(names) else row.get("layer")
    t2 = time.perf_counter()
    rob = robustness_report(model, probe["clean"], probe["labels"], cfg.robustness, seed=seed)
    t3 = time.perf_counter()
    return {"clean_accuracy": rob.pop("clean"), "robustness": rob, "network_upper_bound": bounds["network"],
            "block_upper_bounds": bounds["blocks"], "layers": layers,
            "seconds": {"bounds_and_clouds": t1 - t0, "topology": t2 - t1, "robustness": t3 - t2}}


def make_probe(data: ImageData, cfg: ExperimentConfig, device: torch.device) -> dict:
    idx = torch.from_numpy(probe_indices(data.x_test.shape[0], cfg.probe, cfg.probe_seed))
    x = data.x_test[idx].to(device)
    return {"indices": idx, "clean": x, "labels": data.y_test[idx].to(device),
            "perturbed": gaussian_noise(x, cfg.topolip_sigma, derive_seed(cfg.probe_seed, "probe.noise")),
            "shifted": corrupt(x, cfg.shift, cfg.shift_severity)}


def run_unit(cfg: ExperimentConfig, model_name: str, seed: int, data: ImageData, probe: dict, out_dir: Path, *,
             resume: bool = False, device=None, progress=None, topo=None) -> dict:
    """Train and probe one (model, seed) unit; returns its result document (also written to ``result.json``).

    ``progress``: a :data:`boundlab.io.progress.Reporter` (per-batch counts and a line per probed epoch).

    Runs with ``cfg.threads`` torch threads (float reductions depend on the thread count; fixing it makes a unit's
    numbers identical whichever executor runs it)."""
    with torch_threads(cfg.threads):
        return _run_unit(cfg, model_name, seed, data, probe, out_dir, resume=resume, device=device,
                         progress=progress, topo=topo)


def _run_unit(cfg, model_name, seed, data, probe, out_dir, *, resume, device, progress, topo) -> dict:
    dev = resolve_device(device)
    topo = topo if topo is not None else topo_config()
    ucfg = unit_config(cfg, model_name, seed, data, topo)
    h = config_hash(ucfg)
    uname = unit_name(model_name, cfg.dataset, seed, ucfg)
    udir = Path(out_dir) / "topolip" / uname
    result_path, ckpt = udir / "result.json", udir / "checkpoint.pt"
    if result_path.is_file():
        try:
            done = read_json(result_path)
        except ResultFileError:
            done = None
        if done and done.get("status") == "finished":
            done["skipped"] = True
            return done
    if ckpt.is_file() and not resume:
        ckpt.unlink()  # a stale partial run: start afresh (resume=True continues it instead)
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, h)  # fail early, with the file named, on a corrupted or foreign checkpoint
        emit(progress, "units", message=f"{uname}: resuming after epoch {int(state['epoch'])}")
    t0 = time.perf_counter()
    model = build_model(model_name, channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                        mean=data.mean, std=data.std, config=cfg.model_config(model_name), seed=seed).to(dev)
    tcfg = default_train_config(model_name, cfg.epochs, seed)
    probed = set(cfg.epochs_probed)

    def on_epoch(m, e):
        if e not in probed:
            return None
        emit(progress, f"{model_name} s{seed}", message=f"{model_name} seed {seed}: probing epoch {e}")
        return {"epoch": e, **_measure(m, probe, cfg, topo, seed)}

    out = fit(model, data.x_train.to(dev), data.y_train.to(dev), tcfg, checkpoint=ckpt, resume=resume, run_hash=h,
              on_epoch=on_epoch, progress=progress)
    epochs = []
    for entry in out["log"]:
        e = entry["epoch"]
        epochs.append({"epoch": e, "train_loss": out["train_loss"][e] if e < len(out["train_loss"]) else None,
                       **{k: v for k, v in entry.items() if k != "epoch"}})
    final = epochs[-1] if epochs else {}
    doc = {**metadata_block(ucfg, seed), "kind": "topolip_run", "status": "finished", "model": model_name,
           "dataset": cfg.dataset, "unit": uname, "layer_names": model.layer_names(),
           "network_upper_bound": final.get("network_upper_bound"), "train_loss": out["train_loss"],
           "epochs": epochs, "seconds": time.perf_counter() - t0, "device": str(dev)}
    if not commit_result(result_path, doc):  # another executor finished this unit first: keep its result
        doc = read_json(result_path)
        doc["skipped"] = True
    if ckpt.is_file():
        ckpt.unlink()  # the finished result holds everything; the checkpoint only served resume
    return doc


@functools.lru_cache(maxsize=4)
def _data_and_probe(cfg: ExperimentConfig, device: str):
    """Data set and probe tensors, loaded once per process (executor workers each load their own)."""
    dev = resolve_device(device)
    data = load_dataset(cfg.dataset, cfg.data_dir, size=cfg.image_size, max_train=cfg.max_train)
    return data, make_probe(data, cfg, dev)


def data_and_probe(cfg: ExperimentConfig, device: str | None = None) -> tuple[ImageData, dict]:
    """The data set and the probe tensors of ``cfg`` on ``device``, loaded once per process."""
    return _data_and_probe(cfg, str(resolve_device(device)))


def unit_task(cfg: ExperimentConfig, model_name: str, seed: int, out_dir: str, resume: bool = False,
              device: str | None = None, progress=None) -> dict:
    """One (model, seed) unit as an executor task (module level, so Dask can ship it); returns a short summary."""
    data, probe = data_and_probe(cfg, device)
    doc = run_unit(cfg, model_name, seed, data, probe, Path(out_dir), resume=resume, device=device,
                   progress=progress)
    return {"unit": doc.get("unit"), "seconds": doc.get("seconds"), "skipped": bool(doc.get("skipped"))}


