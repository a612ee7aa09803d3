"""One experiment unit: train one (model, seed), probe it at the probe epochs, commit its result exactly once."""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import numpy as np
import torch

from ...io.executor import commit_result
from ...io.progress import emit
from ...io.results import ResultFileError, config_hash, git_commit, metadata_block, read_json, write_json
from ...io.seeds import derive_seed
from .._torch import resolve_device, torch_threads
from ..data import ImageData, corrupt, gaussian_noise, load_dataset, probe_indices
from ..models import build_model, certified_bounds
from ..robustness import eps_key, robustness_report
from ..training import evaluate_accuracy, fit, load_checkpoint, save_checkpoint
from ._config import ExperimentConfig, default_train_config, topo_config, unit_config, unit_name

__all__ = ["make_probe", "run_unit", "unit_task", "data_and_probe", "load_unit", "WEIGHTS", "WEIGHTS_MATCHED",
           "certify_label", "rebracket_unit", "rebracket_task", "brackets_current"]

#: the weights a finished unit keeps (final epoch, matched-accuracy checkpoint): what ``boundlab certify`` reads
WEIGHTS, WEIGHTS_MATCHED = "weights.pt", "weights_matched.pt"


def _save_weights(path: Path, model, h: str, epoch: int) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, {"model": state, "config_hash": h, "epoch": epoch})


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


def _certify(model, probe: dict, cfg: ExperimentConfig, seed: int, eps_list, progress, label: str) -> dict | None:
    """Brackets [empirical lower, certified upper] on the first ``cfg.certify_points`` probe images (BLAS limited to
    ``cfg.threads`` threads, so the numbers do not depend on the executor)."""
    if not cfg.certify_points or not eps_list:
        return None
    from threadpoolctl import threadpool_limits

    from ..certify import SearchConfig, bracket_model

    was = model.training
    model.eval()
    try:
        with threadpool_limits(cfg.threads):
            return bracket_model(model, probe["clean"][:cfg.certify_points].cpu(), list(eps_list),
                                 norm=cfg.certify_norm, seed=derive_seed(seed, "certify", label),
                                 search=SearchConfig(cfg.certify_samples, cfg.certify_restarts, cfg.certify_steps,
                                                     cfg.certify_smooth),
                                 progress=progress, label=label)
    finally:
        model.train(was)


def certify_label(model_name: str, seed: int, matched_epoch: int | None = None) -> str:
    """The label of a unit's brackets: shown in progress and part of their seed
    (``derive_seed(seed, "certify", label)``), so training and :func:`rebracket_unit` must use this one spelling."""
    where = "final" if matched_epoch is None else f"matched, epoch {matched_epoch}"
    return f"{model_name} s{seed} certify ({where})"


def sensitivity_settings(cfg: ExperimentConfig, n_test: int) -> list[dict]:
    """The one-factor-at-a-time settings of the sensitivity grid (the base setting, which the main measurement
    covers, excluded): probe sizes at ``topolip_sigma``, noise levels at the base probe size. A size above the
    test split is clipped to the whole split (``n`` < ``probe``), said in the grid."""
    out, seen = [], {(cfg.probe, round(cfg.topolip_sigma, 12))}
    for n in cfg.sensitivity_probes:
        key = (min(n, n_test), round(cfg.topolip_sigma, 12))
        if key not in seen and key[0] >= 3:
            seen.add(key)
            out.append({"factor": "probe", "probe": n, "n": key[0], "sigma": cfg.topolip_sigma})
    for sg in cfg.sensitivity_sigmas:
        key = (cfg.probe, round(sg, 12))
        if key not in seen:
            seen.add(key)
            out.append({"factor": "sigma", "probe": cfg.probe, "n": cfg.probe, "sigma": sg})
    return out


def _sensitivity(model, data: ImageData, cfg: ExperimentConfig, topo, seed: int, device, progress) -> list[dict]:
    """Per-layer measurements (H0 diagrams) of every sensitivity setting at the current weights."""
    from dataclasses import replace

    from ..topolip import layer_measurements

    settings = sensitivity_settings(cfg, data.x_test.shape[0])
    light = replace(topo, degrees=(0,), orders=(topo.topolip_order,), topolip_degree=0)
    bounds = certified_bounds(model)
    out = []
    for i, st in enumerate(settings):
        t0 = time.perf_counter()
        idx = torch.from_numpy(probe_indices(data.x_test.shape[0], st["n"], derive_seed(cfg.probe_seed,
                                                                                         "sensitivity", st["n"])))
        x = data.x_test[idx].to(device)
        pert = gaussian_noise(x, st["sigma"], derive_seed(cfg.probe_seed, "sensitivity.noise", st["n"],
                                                          eps_key(st["sigma"])))
        clouds = [_clouds(model, t) for t in (x, pert, corrupt(x, cfg.shift, cfg.shift_severity))]
        layers = layer_measurements(clouds[0], clouds[1], config=light, shifted=clouds[2],
                                    lipschitz=[None] + list(bounds["blocks"]), seed=seed)
        names = model.layer_names()
        for row in layers:
            row["layer"] = names[row["index"]] if 0 <= row.get("index", -1) < len(names) else row.get("layer")
        out.append({**st, "layers": layers, "seconds": time.perf_counter() - t0})
        emit(progress, "sensitivity", i + 1, len(settings), f"sensitivity {st['factor']}: n={st['n']}, "
             f"sigma={st['sigma']:.4g}")
    return out


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
    matched_done = False
    if resume and ckpt.is_file():
        matched_done = any(isinstance(e, dict) and e.get("matched") for e in state["log"])
    t0 = time.perf_counter()
    model = build_model(model_name, channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                        mean=data.mean, std=data.std, config=cfg.model_config(model_name), seed=seed).to(dev)
    tcfg = default_train_config(model_name, cfg.epochs, seed)
    probed = set(cfg.epochs_probed)
    flags = {"matched": matched_done}
    target = cfg.target_accuracy

    def on_epoch(m, e):
        acc = evaluate_accuracy(m, probe["clean"], probe["labels"])
        entry = {"epoch": e, "probe_accuracy": acc}
        matched = target is not None and not flags["matched"] and acc >= target
        if e in probed or matched:
            emit(progress, f"{model_name} s{seed}", message=f"{model_name} seed {seed}: probing epoch {e}"
                 + (f" (matched accuracy {acc:.3f} >= {target})" if matched else ""))
            entry["measurement"] = {"epoch": e, **_measure(m, probe, cfg, topo, seed)}
        if matched:
            flags["matched"] = True
            entry["matched"] = True
            _save_weights(udir / WEIGHTS_MATCHED, m, h, e)
            entry["certify"] = _certify(m, probe, cfg, seed, cfg.certify_eps[:1], progress,
                                        certify_label(model_name, seed, matched_epoch=e))
        if e == cfg.epochs:
            entry["certify_final"] = _certify(m, probe, cfg, seed, cfg.certify_eps, progress,
                                              certify_label(model_name, seed))
            entry["sensitivity"] = _sensitivity(m, data, cfg, topo, seed, probe["clean"].device, progress)
        return entry

    out = fit(model, data.x_train.to(dev), data.y_train.to(dev), tcfg, checkpoint=ckpt, resume=resume, run_hash=h,
              on_epoch=on_epoch, progress=progress)
    epochs, trace, matched, final_extra = [], [], None, {}
    for entry in out["log"]:
        e = entry["epoch"]
        trace.append({"epoch": e, "probe_accuracy": entry.get("probe_accuracy")})
        meas = entry.get("measurement")
        if meas is not None:
            epochs.append({"epoch": e, "train_loss": out["train_loss"][e] if e < len(out["train_loss"]) else None,
                           **{k: v for k, v in meas.items() if k != "epoch"},
                           **({"matched": True} if entry.get("matched") else {})})
        if entry.get("matched"):
            matched = {"target_accuracy": target, "epoch": e, "probe_accuracy": entry.get("probe_accuracy"),
                       "certify": entry.get("certify")}
        if e == cfg.epochs:
            final_extra = {"certify": entry.get("certify_final"), "sensitivity": entry.get("sensitivity") or []}
    if matched is None:
        best = max(trace, key=lambda t: t["probe_accuracy"] or -1.0) if trace else {}
        matched = {"target_accuracy": target, "epoch": None, "probe_accuracy": None, "certify": None,
                   "reason": ("no target set" if target is None else
                              f"never reached: best probe accuracy {best.get('probe_accuracy')} at epoch "
                              f"{best.get('epoch')}")}
    final = epochs[-1] if epochs else {}
    doc = {**metadata_block(ucfg, seed), "kind": "topolip_run", "status": "finished", "model": model_name,
           "dataset": cfg.dataset, "unit": uname, "layer_names": model.layer_names(),
           "network_upper_bound": final.get("network_upper_bound"), "train_loss": out["train_loss"],
           "epochs": epochs, "accuracy_trace": trace, "matched": matched, "certify": final_extra.get("certify"),
           "sensitivity": final_extra.get("sensitivity", []), "seconds": time.perf_counter() - t0,
           "device": str(dev)}
    _save_weights(udir / WEIGHTS, model, h, cfg.epochs)  # before the commit: a finished unit has its weights
    if not commit_result(result_path, doc):  # another executor finished this unit first: keep its result
        doc = read_json(result_path)
        doc["skipped"] = True
    if ckpt.is_file():
        ckpt.unlink()  # the finished result holds everything; the checkpoint only served resume
    return doc


def load_unit(unit_dir, *, checkpoint: str = "final", data_dir=None):
    """A finished unit folder as ``(doc, model in eval mode, data, probe images)`` for ``boundlab certify``.

    ``checkpoint``: ``"final"`` (``weights.pt``) or ``"matched"`` (``weights_matched.pt``). Every problem is an
    :class:`InputError` naming ``MODEL_DIR`` (or ``--checkpoint``/``--data-dir``): not a folder, no finished
    ``result.json`` of kind ``topolip_run``, weights missing or written for another configuration."""
    from ...theory.validate import InputError
    from ..models import ModelConfig

    d = Path(unit_dir)
    if not d.is_dir():
        raise InputError(f"MODEL_DIR: {d} is not a folder")
    rp = d / "result.json"
    if not rp.is_file():
        raise InputError(f"MODEL_DIR: {d} is not an experiment unit (no result.json)")
    try:
        doc = read_json(rp)
    except ResultFileError as exc:
        raise InputError(f"MODEL_DIR: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "topolip_run" or doc.get("status") != "finished":
        raise InputError(f"MODEL_DIR: {rp} is not a finished topolip_run result")
    cfg = doc.get("config") or {}
    if checkpoint not in ("final", "matched"):
        raise InputError(f"--checkpoint: expected final or matched, got {checkpoint!r}")
    wp = d / (WEIGHTS if checkpoint == "final" else WEIGHTS_MATCHED)
    if not wp.is_file():
        what = "the final weights" if checkpoint == "final" else "matched-accuracy weights (target never reached?)"
        raise InputError(f"MODEL_DIR: {d} has no {wp.name} ({what})")
    state = load_checkpoint_weights(wp, config_hash(cfg))
    data_summary = cfg.get("data") or {}
    try:
        data = load_dataset(cfg["dataset"], data_dir, size=data_summary.get("image_size", 16))
    except KeyError as exc:
        raise InputError(f"MODEL_DIR: {rp} lacks the config entry {exc}") from exc
    mc = ModelConfig(**cfg["model_config"])
    model = build_model(cfg["model"], channels=data.channels, image_size=data.image_size,
                        num_classes=data.num_classes, mean=data.mean, std=data.std, config=mc, seed=int(cfg["seed"]))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise InputError(f"MODEL_DIR: {wp} does not fit the unit's model: {exc}") from exc
    model.eval()
    pr = cfg.get("probe") or {}
    idx = torch.from_numpy(probe_indices(data.x_test.shape[0], int(pr["n"]), int(pr["seed"])))
    return doc, model, data, data.x_test[idx]


def load_checkpoint_weights(path: Path, expect_hash: str) -> dict:
    from ...theory.validate import InputError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(f"MODEL_DIR: {path} is corrupted or not boundlab weights ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"MODEL_DIR: {path} holds no model weights")
    if state.get("config_hash") != expect_hash:
        raise InputError(f"MODEL_DIR: {path} was written for another configuration than its result.json")
    return state


# --------------------------------------------------------------------------- re-bracketing a finished unit
def _stored_config(doc: dict, rp: Path) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of a finished unit as far as :func:`_certify` reads it, rebuilt from the
    unit's stored config and validated; a missing entry is an :class:`InputError` naming it."""
    from ...theory.validate import InputError

    stored = doc.get("config") or {}

    def entry(path: str):
        cur = stored
        for key in path.split("."):
            if not isinstance(cur, dict) or key not in cur:
                raise InputError(f"MODEL_DIR: {rp} lacks the config entry {path} (needed to re-bracket the unit)")
            cur = cur[key]
        return cur

    kw = {"dataset": entry("dataset"), "models": (entry("model"),), "seeds": (entry("seed"),),
          "probe": entry("probe.n"), "probe_seed": entry("probe.seed"), "threads": entry("torch_threads"),
          "certify_eps": tuple(entry("certify.eps")), "certify_points": entry("certify.points"),
          "certify_norm": entry("certify.norm"), "certify_samples": entry("certify.samples"),
          "certify_steps": entry("certify.steps"), "certify_restarts": entry("certify.restarts"),
          # units written before the ReLU surrogate existed searched with the model's own gradient
          "certify_smooth": entry("certify").get("smooth")}
    try:
        return ExperimentConfig(**kw).validate()
    except InputError as exc:
        raise InputError(f"MODEL_DIR: {rp}: the stored config does not validate ({exc})") from exc


def _number(v) -> float:
    try:
        return float(v)  # non-finite values are stored as "inf" / "nan" strings
    except (TypeError, ValueError):
        return math.nan


def _check_lowers(stored: dict | None, new: dict | None, rp: Path, where: str) -> None:
    """The recomputed empirical lower bounds must be the stored ones (relative 1e-9): they depend only on the
    weights, the probe images and the seeded search, never on the certificate."""
    from ...io.errors import CheckError

    def lowers(block):
        rows = (block or {}).get("per_eps") or {}
        return {lab: [p.get("empirical_lower") for p in row.get("points") or []] for lab, row in rows.items()}

    a, b = lowers(stored), lowers(new)
    why = ("the unit's weights, probe images or search differ from those its brackets were computed with; "
           f"{rp.name} left unchanged")
    shape_a, shape_b = ({k: len(v) for k, v in x.items()} for x in (a, b))
    if (stored is None) != (new is None) or shape_a != shape_b:
        raise CheckError(f"{rp}: {where}: stored brackets {shape_a or None} (radius: points), recomputed "
                         f"{shape_b or None}: {why}")
    for lab, old in a.items():
        for i, (x, y) in enumerate(zip(old, b[lab])):
            if not math.isclose(_number(x), _number(y), rel_tol=1e-9):
                raise CheckError(f"{rp}: {where} eps {lab} point {i}: recomputed empirical lower {y!r} != stored "
                                 f"{x!r}: {why}")


def _upper_gmeans(block: dict | None) -> dict | None:
    if block is None:
        return None
    return {lab: row.get("certified_upper_gmean") for lab, row in (block.get("per_eps") or {}).items()}


def rebracket_unit(unit_dir, *, data_dir=None, progress=None) -> dict:
    """Recompute the brackets of a finished unit with the current certificate, without retraining; returns the
    rewritten ``result.json`` document.

    ``certify`` (final weights, every radius) and ``matched.certify`` (the matched-accuracy weights, the first
    radius; only where the unit has that checkpoint) are recomputed by the call training makes (:func:`_certify`
    with the config rebuilt from the stored one, the same labels and so the same seeds). The empirical lower bounds
    do not depend on the certificate, so they must reproduce the stored ones: otherwise a :class:`CheckError`
    (the unit or its probe differs) and nothing is written. ``result.json`` is rewritten atomically with the new
    blocks and a ``rebracketed`` entry (created, commit, versions, seconds, and under ``previous`` the commit of
    the replaced brackets and their ``certified_upper_gmean`` per checkpoint and radius; the entries of earlier
    re-bracketings under ``earlier``); every other entry keeps its content. ``data_dir``: CIFAR-10 units only.
    ``progress``: a :data:`boundlab.io.progress.Reporter`."""
    d = Path(unit_dir)
    rp = d / "result.json"
    doc, model, _, images = load_unit(d, checkpoint="final", data_dir=data_dir)
    cfg = _stored_config(doc, rp)
    name, seed = cfg.models[0], cfg.seeds[0]
    probe = {"clean": images}
    matched = doc.get("matched") or {}
    epoch = matched.get("epoch")
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        final = _certify(model, probe, cfg, seed, cfg.certify_eps, progress, certify_label(name, seed))
        _check_lowers(doc.get("certify"), final, rp, "certify")
        if epoch is not None:
            _, model_matched, _, _ = load_unit(d, checkpoint="matched", data_dir=data_dir)
            new_matched = _certify(model_matched, probe, cfg, seed, cfg.certify_eps[:1], progress,
                                   certify_label(name, seed, matched_epoch=epoch))
            _check_lowers(matched.get("certify"), new_matched, rp, "matched.certify")
    meta, before = metadata_block(), doc.get("rebracketed")
    entry = {"created": meta["created"], "commit": meta["commit"], "versions": meta["versions"],
             "seconds": time.perf_counter() - t0,
             "previous": {"commit": before.get("commit") if before else doc.get("commit"),
                          "certified_upper_gmean": {"final": _upper_gmeans(doc.get("certify")),
                                                    "matched": _upper_gmeans(matched.get("certify"))}}}
    if before:
        entry["earlier"] = [*before.get("earlier", []), {k: v for k, v in before.items() if k != "earlier"}]
    new = {**{k: v for k, v in doc.items() if k != "skipped"}, "certify": final, "rebracketed": entry}
    if epoch is not None:
        new["matched"] = {**matched, "certify": new_matched}
    write_json(rp, new)
    return new


def brackets_current(doc: dict, commit: str | None) -> bool:
    """Whether a unit's brackets (those of its last re-bracketing, else of its training) were computed at
    ``commit`` on a clean tree (a ``+dirty`` or unknown commit is never current)."""
    if not commit or commit.endswith("+dirty"):
        return False
    at = doc["rebracketed"].get("commit") if doc.get("rebracketed") else doc.get("commit")
    return at == commit


def rebracket_task(unit_dir: str, data_dir: str | None = None, progress=None) -> dict:
    """One finished unit through :func:`rebracket_unit` as an executor task (module level, so Dask can ship it);
    skipped when its brackets are already current (:func:`brackets_current`), so an interrupted re-bracketing
    resumes where it stopped. Returns a short summary."""
    doc = read_json(Path(unit_dir) / "result.json")
    commit = git_commit()
    if brackets_current(doc, commit):
        emit(progress, "rebracket", message=f"{doc.get('unit')}: brackets already at commit {commit[:12]}, skipped")
        return {"unit": doc.get("unit"), "skipped": True}
    new = rebracket_unit(unit_dir, data_dir=data_dir, progress=progress)
    return {"unit": new.get("unit"), "skipped": False, "seconds": new["rebracketed"]["seconds"]}


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


