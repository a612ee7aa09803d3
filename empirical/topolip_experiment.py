r"""The TopoLip experiment end to end: train, probe, attack, measure, and a verdict on every seed claim.

One **unit** = one (model, seed) run; its canonical config (model widths, training, probe, perturbations, TopoLip
and attack parameters) is hashed, the unit lives in ``OUT/topolip/<model>-<dataset>-s<seed>-<hash8>/`` and holds
``checkpoint.pt`` (atomic, every epoch, with the measurements so far) and, when finished, ``result.json``
(docs/results.md). Finished units are skipped on reruns; ``resume=True`` continues a killed unit after its last
epoch. At every probe epoch (including 0) the unit measures, on a fixed seeded probe subset of the test split:

* per-layer point clouds (flattened outputs, index 0 = the input image) of the clean probe, a perturbed copy
  (Gaussian noise, ``topolip_sigma`` in pixel units) and a shifted copy (:func:`empirical.data.corrupt`, variant
  D), passed to :func:`empirical.topolip.layer_measurements` (diagrams, W1/W2/W_inf, variance, ID, TopoLip A-D,
  stability lemmas L1/L3) with the per-block certified Lipschitz upper bounds of :func:`empirical.models.certified_bounds`
  (variant C);
* clean / FGSM / PGD / Gaussian-noise accuracy (:mod:`empirical.robustness`);
* the certified network-level upper bound (:mod:`theory.composition`) of the current weights.

:func:`verdicts` turns the finished units into the verdict table over the claims of topolip.md 6.2 (paired by
seed: ``supported`` when every seed agrees with the claim, ``contradicted`` when every seed disagrees,
``inconclusive`` when seeds disagree, fewer than 2 seeds, or a value is missing). The TopoLip claims appear twice,
raw and scale-normalised (``*_normalised``), because diagram distances scale with the cloud (topolip.md 5.2, L5).
"""

from __future__ import annotations

import functools

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from theory._validate import BoundInputError, choice, positive_float, positive_int

from ._torch import resolve_device, torch_threads
from .data import DATASETS, ImageData, corrupt, gaussian_noise, load_dataset, probe_indices
from .models import MODELS, ModelConfig, build_model, certified_bounds
from .robustness import RobustnessConfig, robustness_report
from .training import TrainConfig, config_hash, fit, load_checkpoint

__all__ = ["ExperimentConfig", "SCALES", "default_train_config", "unit_config", "run_unit", "run_experiment",
           "verdicts", "CLAIMS", "run_demo", "summarise_unit"]

# Widths per scale (free parameters of the paper, topolip.md 6.3; "paper" follows the protocol of 6.4).
SCALES: dict[str, dict[str, ModelConfig]] = {
    "tiny": {"attn": ModelConfig(width=16, depth=3, heads=2, patch=4),
             "conv": ModelConfig(width=16, depth=3),
             "vit": ModelConfig(width=16, depth=2, heads=2, patch=4, mlp_ratio=2),
             "resnet": ModelConfig(width=4)},
    "small": {"attn": ModelConfig(width=32, depth=6, heads=4, patch=4),
              "conv": ModelConfig(width=32, depth=6),
              "vit": ModelConfig(width=32, depth=4, heads=4, patch=4, mlp_ratio=2),
              "resnet": ModelConfig(width=8)},
    "paper": {"attn": ModelConfig(width=64, depth=6, heads=4, patch=4),
              "conv": ModelConfig(width=64, depth=6),
              "vit": ModelConfig(width=192, depth=6, heads=3, patch=4, mlp_ratio=2),
              "resnet": ModelConfig(width=64)},
}


def default_train_config(model: str, epochs: int, seed: int) -> TrainConfig:
    """AdamW 3e-3 (wd 0.05), cosine schedule, batch 32, for every model (short runs; no augmentation).

    topolip.md 6.4 proposes SGD 0.1 for the conv models and 100-200 epochs; in a few epochs on digits SGD left the
    un-normalised toy Conv at chance, so one optimiser for all is the recorded default here."""
    return TrainConfig("adamw", 3e-3, "cosine", epochs, 32, 0.05, 0.9, seed)


def default_probe_epochs(epochs: int) -> tuple[int, ...]:
    """0, 1, 5, 25 (those below ``epochs``) and the final epoch (topolip.md 6.4)."""
    return tuple(sorted({e for e in (0, 1, 5, 25) if e < epochs} | {epochs}))


@dataclass(frozen=True)
class ExperimentConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int = 16                 # digits only (CIFAR-10 is 32)
    max_train: int | None = None         # CIFAR-10 only: first rows of the train split
    models: tuple[str, ...] = MODELS
    scale: str = "small"
    epochs: int = 5
    probe_epochs: tuple[int, ...] | None = None
    probe: int = 200
    probe_seed: int = 12345
    seeds: tuple[int, ...] = (0, 1)
    topolip_sigma: float = 8 / 255       # the perturbed cloud: Gaussian noise in pixel units
    shift: str = "blur"                  # the shifted cloud (variant D)
    shift_severity: float = 1.0
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    topolip_summary: str = "max"         # how per-layer TopoLip becomes one number per model: max over hidden layers
    topolip_variant: str = "A"           # which variant the claims compare (B, C, D are in the result files)
    threads: int = 1                     # torch intra-op threads per unit: fixed so numbers match on any executor
    toy_init: str = "kaiming"            # initialisation of the toy Attn/Conv ("pytorch": PyTorch's default)

    def model_config(self, model: str):
        """The widths/depths of ``model`` at this scale (toy models with ``toy_init``)."""
        base = SCALES[self.scale][model]
        return replace(base, init=self.toy_init) if model in ("attn", "conv") else base

    def validate(self) -> "ExperimentConfig":
        choice("dataset", self.dataset, DATASETS)
        choice("scale", self.scale, tuple(SCALES))
        if not self.models:
            raise BoundInputError("models: expected at least one model")
        for m in self.models:
            choice("models", m, MODELS)
        if not self.seeds:
            raise BoundInputError("seeds: expected at least one seed")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int):
                raise BoundInputError(f"seeds: expected integers, got {s!r}")
        positive_int("epochs", self.epochs, minimum=0)
        positive_int("threads", self.threads)
        choice("toy_init", self.toy_init, ("kaiming", "pytorch"))
        positive_int("probe", self.probe, minimum=3)
        positive_float("topolip_sigma", self.topolip_sigma)
        choice("topolip_summary", self.topolip_summary, ("max", "mean"))
        choice("topolip_variant", self.topolip_variant, ("A", "B", "C", "D"))
        for e in self.probe_epochs or ():
            if not (isinstance(e, int) and 0 <= e <= self.epochs):
                raise BoundInputError(f"probe_epochs: expected integers in 0..{self.epochs}, got {e!r}")
        self.robustness.validate()
        return self

    @property
    def epochs_probed(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.probe_epochs))) if self.probe_epochs else default_probe_epochs(self.epochs)


def _topo_config():
    from .topolip import TopoConfig

    return TopoConfig()


def _topo_dict(tc) -> dict:
    d = asdict(tc)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def unit_config(cfg: ExperimentConfig, model: str, seed: int, data: ImageData, topo=None) -> dict:
    """The canonical config of one unit (everything its numbers depend on; device excluded)."""
    topo = topo if topo is not None else _topo_config()
    summary = data.summary()
    summary.pop("description")
    return {"model": model, "dataset": cfg.dataset, "data": summary, "seed": seed,
            "model_config": cfg.model_config(model).as_dict(), "scale": cfg.scale,
            "train": default_train_config(model, cfg.epochs, seed).as_dict(),
            "probe": {"n": cfg.probe, "seed": cfg.probe_seed, "split": "test", "epochs": list(cfg.epochs_probed),
                      "point": "flattened output of one block for one image; layer 0 = the input image"},
            "perturbation": {"kind": "gaussian_noise", "sigma": cfg.topolip_sigma, "space": "pixels, clipped to [0,1]"},
            "shift": {"kind": cfg.shift, "severity": cfg.shift_severity},
            "robustness": cfg.robustness.as_dict(), "topolip": _topo_dict(topo),
            "lipschitz": "certified upper bound per block on the pixel box (theory.composition.network_bound)",
            "torch_threads": cfg.threads}


def unit_name(model: str, dataset: str, seed: int, ucfg: dict) -> str:
    return f"{model}-{dataset}-s{seed}-{config_hash(ucfg)[:8]}"


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
    from .topolip import layer_measurements

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
            "perturbed": gaussian_noise(x, cfg.topolip_sigma, cfg.probe_seed + 1),
            "shifted": corrupt(x, cfg.shift, cfg.shift_severity)}


def run_unit(cfg: ExperimentConfig, model_name: str, seed: int, data: ImageData, probe: dict, out_dir: Path, *,
             resume: bool = False, device=None, progress=None, topo=None) -> dict:
    """Train and probe one (model, seed) unit; returns its result document (also written to ``result.json``).

    Runs with ``cfg.threads`` torch threads (float reductions depend on the thread count; fixing it makes a unit's
    numbers identical whichever executor runs it)."""
    with torch_threads(cfg.threads):
        return _run_unit(cfg, model_name, seed, data, probe, out_dir, resume=resume, device=device,
                         progress=progress, topo=topo)


def _run_unit(cfg, model_name, seed, data, probe, out_dir, *, resume, device, progress, topo) -> dict:
    from boundlab.results import metadata_block, read_json

    dev = resolve_device(device)
    topo = topo if topo is not None else _topo_config()
    ucfg = unit_config(cfg, model_name, seed, data, topo)
    h = config_hash(ucfg)
    uname = unit_name(model_name, cfg.dataset, seed, ucfg)
    udir = Path(out_dir) / "topolip" / uname
    result_path, ckpt = udir / "result.json", udir / "checkpoint.pt"
    if result_path.is_file():
        try:
            done = read_json(result_path)
        except ValueError:
            done = None
        if done and done.get("status") == "finished":
            done["skipped"] = True
            return done
    if ckpt.is_file() and not resume:
        ckpt.unlink()  # a stale partial run: start afresh (resume=True continues it instead)
    if resume and ckpt.is_file():
        load_checkpoint(ckpt, h)  # fail early, with the file named, on a corrupted or foreign checkpoint
    t0 = time.perf_counter()
    model = build_model(model_name, channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                        mean=data.mean, std=data.std, config=cfg.model_config(model_name), seed=seed).to(dev)
    tcfg = default_train_config(model_name, cfg.epochs, seed)
    probed = set(cfg.epochs_probed)

    def on_epoch(m, e):
        if e not in probed:
            return None
        if progress is not None:
            progress.console.print(f"  {model_name} seed {seed}: probing epoch {e}")
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
    from boundlab.executor import commit_result

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


def unit_task(cfg: ExperimentConfig, model_name: str, seed: int, out_dir: str, resume: bool = False,
              device: str | None = None) -> dict:
    """One (model, seed) unit as an executor task (module level, so Dask can ship it); returns a short summary."""
    data, probe = _data_and_probe(cfg, str(resolve_device(device)))
    doc = run_unit(cfg, model_name, seed, data, probe, Path(out_dir), resume=resume, device=device)
    return {"unit": doc.get("unit"), "seconds": doc.get("seconds"), "skipped": bool(doc.get("skipped"))}


# --------------------------------------------------------------------------- verdicts
def _final(doc: dict) -> dict | None:
    eps = doc.get("epochs") or []
    return eps[-1] if eps else None


def _hidden(epoch: dict) -> list[dict]:
    """Per-layer rows without the logits (the claims are about hidden representations)."""
    layers = epoch.get("layers") or []
    return layers[:-1] if len(layers) > 1 else layers


def _mean(values) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(vals)) if vals and len(vals) == len(list(values)) else None


def summarise_unit(doc: dict, topo_degree: int = 0, topo_order="inf", variant: str = "A",
                   how: str = "max") -> dict:
    """The per-model numbers the claims compare (final epoch; ``None`` where a measurement is missing)."""
    ep = _final(doc)
    if ep is None:
        return {}
    hidden = _hidden(ep)
    key_h, key_p = f"H{topo_degree}", str(topo_order)

    def dist(row):
        d = (row.get("diagram_distance_to_previous") or {}).get(key_h) or {}
        return d.get(key_p)

    def topolip(suffix):
        vals = [(row.get("topolip") or {}).get(variant + suffix) for row in hidden]
        if not vals or any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in vals):
            return None
        return float(max(vals) if how == "max" else np.mean(vals))

    pgd = (ep.get("robustness") or {}).get("pgd") or {}
    return {"variance": _mean([r.get("variance") for r in hidden]),
            "id_twonn": _mean([r.get("id_twonn") for r in hidden]),
            "stability": _mean([dist(r) for r in hidden]),
            "topolip": topolip(""), "topolip_normalised": topolip("_normalised") if variant in "AB" else None,
            "robust_accuracy": _mean(list(pgd.values())) if pgd else None,
            "clean_accuracy": ep.get("clean_accuracy")}


# (id, claim, source, metric key, model a, model b, direction: a "lower"/"higher" than b)
CLAIMS = (
    ("attn_vs_conv.variance", "Attn has lower activation variance than Conv", "TopoLip v1 abstract; rev. 2",
     "variance", "attn", "conv", "lower"),
    ("attn_vs_conv.intrinsic_dimension", "Attn has lower intrinsic dimension than Conv", "v1 abstract; rev. 4",
     "id_twonn", "attn", "conv", "lower"),
    ("attn_vs_conv.stability", "Attn is more stable (smaller diagram distance between layer input and output)",
     "v1 abstract", "stability", "attn", "conv", "lower"),
    ("attn_vs_conv.topolip", "Attn is smoother (smaller TopoLip) than Conv", "v2 abstract", "topolip",
     "attn", "conv", "lower"),
    ("attn_vs_conv.topolip_normalised", "Attn has smaller scale-normalised TopoLip than Conv",
     "v2 abstract; scale check of topolip.md 5.2 L5", "topolip_normalised", "attn", "conv", "lower"),
    ("attn_vs_conv.robust_accuracy", "Attn is more robust (higher PGD accuracy) than Conv", "v2 abstract",
     "robust_accuracy", "attn", "conv", "higher"),
    ("vit_vs_resnet.variance", "ViT has higher activation variance than ResNet-18", "v1 abstract; rev. 2",
     "variance", "vit", "resnet", "higher"),
    ("vit_vs_resnet.stability", "ViT is more stable (smaller diagram distance between layer input and output)",
     "v1 abstract", "stability", "vit", "resnet", "lower"),
    ("vit_vs_resnet.topolip", "ViT is smoother (smaller TopoLip) than ResNet-18", "v2 abstract", "topolip",
     "vit", "resnet", "lower"),
    ("vit_vs_resnet.topolip_normalised", "ViT has smaller scale-normalised TopoLip than ResNet-18",
     "v2 abstract; scale check of topolip.md 5.2 L5", "topolip_normalised", "vit", "resnet", "lower"),
    ("vit_vs_resnet.robust_accuracy", "ViT is more robust (higher PGD accuracy) than ResNet-18", "v2 abstract",
     "robust_accuracy", "vit", "resnet", "higher"),
)

_METRIC_TEXT = {"variance": "activation variance, mean over hidden layers, final epoch",
                "id_twonn": "TwoNN intrinsic dimension, mean over hidden layers, final epoch",
                "stability": "W_p(H_k) between consecutive layers' diagrams, mean over hidden layers, final epoch",
                "topolip": "TopoLip variant {v}, {how} over hidden layers, final epoch",
                "topolip_normalised": "TopoLip variant {v}_normalised, {how} over hidden layers, final epoch",
                "robust_accuracy": "PGD accuracy, mean over eps, final epoch, probe set"}


def _fmt(vals: list[float]) -> str:
    a = np.asarray(vals, dtype=float)
    return f"{a.mean():.4g} +- {a.std(ddof=1) if a.size > 1 else 0.0:.2g}"


def _pair_verdict(va: dict, vb: dict, a: str, b: str, direction: str) -> tuple[str, str]:
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        return "inconclusive", f"no finished runs of both {a} and {b}"
    missing = [s for s in seeds if va[s] is None or vb[s] is None]
    if missing:
        return "inconclusive", f"measurement missing (null) for seeds {missing}"
    xa, xb = [va[s] for s in seeds], [vb[s] for s in seeds]
    agree = [(x < y) if direction == "lower" else (x > y) for x, y in zip(xa, xb)]
    detail = f"{a} {_fmt(xa)} vs {b} {_fmt(xb)} over {len(seeds)} seed(s); claim holds for {sum(agree)}/{len(seeds)}"
    if len(seeds) < 2:
        return "inconclusive", detail + " (fewer than 2 seeds)"
    if all(agree):
        return "supported", detail
    if not any(agree):
        return "contradicted", detail
    return "inconclusive", detail + " (seeds disagree)"


def _spearman_claim(by_model: dict, metric: str, cid: str, label: str) -> dict:
    from scipy.stats import spearmanr

    models = sorted(by_model)
    seeds = sorted(set.intersection(*(set(by_model[m]) for m in models))) if models else []
    values = {m: {"topolip": [by_model[m][s].get(metric) for s in seeds],
                  "robust_accuracy": [by_model[m][s].get("robust_accuracy") for s in seeds]} for m in models}
    rhos, pooled_t, pooled_r = [], [], []
    for s in seeds:
        t = [by_model[m][s].get(metric) for m in models]
        r = [by_model[m][s].get("robust_accuracy") for m in models]
        if any(v is None for v in t + r):
            continue
        pooled_t += t
        pooled_r += r
        if len(set(t)) > 1 and len(set(r)) > 1:
            rhos.append(float(spearmanr(t, r).statistic))
        else:
            rhos.append(float("nan"))
    base = {"id": cid, "claim": f"smaller {label} goes with higher robust accuracy across models (Spearman rho < 0)",
            "source": "v2 abstract (TopoLip correlates with adversarial robustness)",
            "metric": f"Spearman rho between {_METRIC_TEXT[metric].split(',')[0]} and PGD accuracy, per seed, "
                      f"across models", "values": {**values, "rho_per_seed": rhos}}
    if len(models) < 3:
        return {**base, "verdict": "inconclusive", "detail": f"only {len(models)} model(s); need >= 3 for a rank test"}
    if not rhos or len(rhos) < len(seeds):
        return {**base, "verdict": "inconclusive", "detail": "measurement missing (null) for some model and seed"}
    pooled = spearmanr(pooled_t, pooled_r)
    detail = (f"rho per seed {[round(r, 3) for r in rhos]} over {len(models)} models; pooled over {len(pooled_t)} "
              f"units rho = {pooled.statistic:.3f} (p = {pooled.pvalue:.3g})")
    if len(rhos) < 2:
        return {**base, "verdict": "inconclusive", "detail": detail + " (fewer than 2 seeds)"}
    if all(r < 0 for r in rhos):
        return {**base, "verdict": "supported", "detail": detail}
    if all(r > 0 for r in rhos):
        return {**base, "verdict": "contradicted", "detail": detail}
    return {**base, "verdict": "inconclusive", "detail": detail + " (seeds disagree or ties)"}


def verdicts(results: list[dict], *, topo_degree: int = 0, topo_order="inf", variant: str = "A",
             how: str = "max") -> list[dict]:
    """The verdict table over :data:`CLAIMS` plus the TopoLip-robustness rank correlation (raw and normalised)."""
    by_model: dict[str, dict[int, dict]] = {}
    for doc in results:
        if doc.get("status") == "finished":
            by_model.setdefault(doc["model"], {})[doc["seed"]] = summarise_unit(doc, topo_degree, topo_order,
                                                                                variant, how)
    out = []
    for cid, text, source, metric, a, b, direction in CLAIMS:
        va = {s: v.get(metric) for s, v in by_model.get(a, {}).items()}
        vb = {s: v.get(metric) for s, v in by_model.get(b, {}).items()}
        verdict, detail = _pair_verdict(va, vb, a, b, direction)
        out.append({"id": cid, "claim": text, "source": source,
                    "metric": _METRIC_TEXT[metric].format(v=variant, how=how),
                    "values": {a: [va[s] for s in sorted(va)], b: [vb[s] for s in sorted(vb)]},
                    "seeds": {a: sorted(va), b: sorted(vb)}, "verdict": verdict, "detail": detail})
    out.append(_spearman_claim(by_model, "topolip", "topolip_vs_robustness.spearman", "TopoLip"))
    out.append(_spearman_claim(by_model, "topolip_normalised", "topolip_vs_robustness.spearman_normalised",
                               "scale-normalised TopoLip"))
    return out


# --------------------------------------------------------------------------- orchestration
def run_experiment(cfg: ExperimentConfig, out_dir, *, resume: bool = False, device=None, console=None,
                   show_progress: bool = True, executor=None) -> dict:
    """Run every (model, seed) unit, write ``OUT/topolip/verdicts.json``; returns ``{"units", "verdicts", "path"}``.

    ``executor``: ``None`` runs the units here with per-epoch progress; a :class:`boundlab.executor.Executor`
    (``make_executor(scheduler, workers)``) runs them as idempotent tasks anywhere (same files, same numbers)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from boundlab.results import metadata_block, write_json

    cfg = cfg.validate()
    dev = resolve_device(device)
    data = load_dataset(cfg.dataset, cfg.data_dir, size=cfg.image_size, max_train=cfg.max_train)
    probe = make_probe(data, cfg, dev)
    topo = _topo_config()
    out = Path(out_dir)
    units, t_all = [], time.perf_counter()
    if executor is not None:
        from boundlab.executor import Unit

        tasks = []
        for seed in cfg.seeds:
            for m in cfg.models:
                ucfg = unit_config(cfg, m, seed, data, topo)
                uname = unit_name(m, cfg.dataset, seed, ucfg)
                tasks.append(Unit(uname, unit_task, {"cfg": cfg, "model_name": m, "seed": seed,
                                                     "out_dir": str(out.resolve()), "resume": resume,
                                                     "device": str(dev)},
                                  str(out / "topolip" / uname / "result.json")))
        executor.run(tasks, progress=show_progress)
        from boundlab.results import read_json

        units = [read_json(t.result_path) for t in tasks]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not show_progress or executor is not None, transient=False) as progress:
        task = progress.add_task("topolip units", total=0 if executor is not None else len(cfg.models) * len(cfg.seeds))
        for seed in (cfg.seeds if executor is None else ()):
            for m in cfg.models:
                progress.update(task, description=f"topolip: {m} seed {seed}")
                doc = run_unit(cfg, m, seed, data, probe, out, resume=resume, device=dev,
                               progress=progress if show_progress else None, topo=topo)
                units.append(doc)
                progress.advance(task)
    table = verdicts(units, topo_degree=topo.topolip_degree, topo_order=topo.topolip_order,
                     variant=cfg.topolip_variant, how=cfg.topolip_summary)
    config = {"command": "experiment topolip", "dataset": cfg.dataset, "data": data.summary(),
              "models": list(cfg.models), "seeds": list(cfg.seeds), "scale": cfg.scale, "epochs": cfg.epochs,
              "probe": cfg.probe, "probe_seed": cfg.probe_seed, "probe_epochs": list(cfg.epochs_probed),
              "topolip": _topo_dict(topo), "topolip_variant": cfg.topolip_variant,
              "topolip_summary": cfg.topolip_summary, "topolip_sigma": cfg.topolip_sigma,
              "shift": {"kind": cfg.shift, "severity": cfg.shift_severity}, "robustness": cfg.robustness.as_dict(),
              "verdict_rule": "paired by seed: supported if every seed agrees with the claim, contradicted if none "
                              "does, else (or < 2 seeds, or a null) inconclusive",
              "units": [d.get("unit") for d in units]}
    path = write_json(out / "topolip" / "verdicts.json",
                      {**metadata_block(config, None), "kind": "topolip_verdicts", "claims": table,
                       "timings": {"total_seconds": time.perf_counter() - t_all,
                                   "units": {f"{d['model']}-s{d['seed']}": d.get("seconds") for d in units}}})
    return {"units": units, "verdicts": table, "path": path}


DEMO_CONFIG = ExperimentConfig(dataset="digits", image_size=16, models=MODELS, scale="tiny", epochs=3, probe_epochs=(0, 3), probe=100,
                               seeds=(0, 1), robustness=RobustnessConfig(eps=(2 / 255, 8 / 255),
                                                                         noise_sigmas=(8 / 255,), pgd_steps=5))


def run_demo(out_dir, device=None) -> Path:
    """A small TopoLip experiment on the embedded digits (4 tiny models, 3 epochs, probe 100, 2 seeds);
    returns the path of ``verdicts.json``."""
    return run_experiment(DEMO_CONFIG, out_dir, resume=False, device=device)["path"]
