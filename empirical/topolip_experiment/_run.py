"""Orchestration: every (model, seed) unit through an executor, then the verdict table; the demo configuration."""

from __future__ import annotations

import time
from pathlib import Path

from ...io.executor import InProcess, Unit
from ...io.results import metadata_block, read_json, write_json
from .._torch import resolve_device
from ..models import MODELS
from ..robustness import RobustnessConfig
from ._config import ExperimentConfig, topo_config, topo_dict, unit_config, unit_name
from ._units import data_and_probe, rebracket_task, unit_task
from ._verdicts import verdicts

__all__ = ["run_experiment", "rebracket_experiment", "DEMO_CONFIG", "PROTOCOL_CONFIG", "run_demo"]


def _units_of(cfg: ExperimentConfig, data, topo) -> list[tuple[str, int, str]]:
    """(model, seed, unit name) of every unit of ``cfg``, in the order the run submits them."""
    out = []
    for seed in cfg.seeds:
        for m in cfg.models:
            out.append((m, seed, unit_name(m, cfg.dataset, seed, unit_config(cfg, m, seed, data, topo))))
    return out


def run_experiment(cfg: ExperimentConfig, out_dir, *, resume: bool = False, device=None, progress=None,
                   executor=None) -> dict:
    """Run every (model, seed) unit, write ``OUT/topolip/verdicts.json``; returns ``{"units", "verdicts", "path"}``.

    ``executor``: ``None`` runs the units here (:class:`boundlab.io.executor.InProcess`, with per-epoch
    ``progress``); an :class:`boundlab.io.executor.Executor` from ``make_executor(scheduler, workers)`` runs them as
    idempotent tasks anywhere (same files, same numbers). ``progress``: a :data:`boundlab.io.progress.Reporter`.
    Finished units are skipped (and reported as such); ``resume=True`` continues killed units after their last
    checkpointed epoch."""
    cfg = cfg.validate()
    dev = resolve_device(device)
    data, _ = data_and_probe(cfg, str(dev))
    topo = topo_config()
    out = Path(out_dir)
    t_all = time.perf_counter()
    executor = executor if executor is not None else InProcess()
    tasks = [Unit(uname, unit_task, {"cfg": cfg, "model_name": m, "seed": seed, "out_dir": str(out.resolve()),
                                     "resume": resume, "device": str(dev)},
                  str(out / "topolip" / uname / "result.json"), accepts_progress=True)
             for m, seed, uname in _units_of(cfg, data, topo)]
    ran = executor.run(tasks, progress=progress)
    units = [{**read_json(t.result_path), "skipped": bool((ran.get(t.key) or {}).get("skipped"))} for t in tasks]
    table, path = _write_verdicts(cfg, out, data, topo, units, t_all)
    return {"units": units, "verdicts": table, "path": path}


def rebracket_experiment(cfg: ExperimentConfig, out_dir, *, progress=None, executor=None) -> dict:
    """Re-bracket every finished unit of ``cfg`` in ``OUT/topolip/`` with the current certificate (no training:
    :func:`rebracket_unit` per unit, as executor tasks like the run's), then write ``verdicts.json`` as
    :func:`run_experiment` does; returns ``{"units", "verdicts", "path", "rebracketed", "skipped"}`` (unit names).

    Refuses (:class:`InputError`, before any work) when a unit of the configuration is not finished. A unit whose
    brackets are already those of the current commit on a clean tree is skipped, so an interrupted re-bracketing
    resumes where it stopped (each unit's ``result.json`` is rewritten atomically once its brackets are done)."""
    from ...io.errors import InputError
    from ...io.executor import read_finished

    cfg = cfg.validate()
    data, _ = data_and_probe(cfg, "cpu")  # the data summary names the units; the brackets are computed on CPU
    topo = topo_config()
    out = Path(out_dir)
    t_all = time.perf_counter()
    names = [uname for _, _, uname in _units_of(cfg, data, topo)]
    paths = {n: out / "topolip" / n / "result.json" for n in names}
    missing = [n for n in names if read_finished(paths[n]) is None]
    if missing:
        raise InputError(f"rebracket: {len(missing)} of the {len(names)} unit(s) of this configuration are not "
                         f"finished in {out / 'topolip'} ({', '.join(missing)}); finish them first (the same "
                         f"command without --rebracket; --resume continues killed units)")
    tasks = [Unit(f"rebracket-{n}", rebracket_task, {"unit_dir": str(paths[n].parent.resolve()),
                                                     "data_dir": cfg.data_dir}, accepts_progress=True)
             for n in names]
    executor = executor if executor is not None else InProcess()
    ran = executor.run(tasks, progress=progress)
    skipped = [n for n in names if (ran.get(f"rebracket-{n}") or {}).get("skipped")]
    units = [{**read_json(paths[n]), "skipped": n in skipped} for n in names]
    table, path = _write_verdicts(cfg, out, data, topo, units, t_all)
    return {"units": units, "verdicts": table, "path": path,
            "rebracketed": [n for n in names if n not in skipped], "skipped": skipped}


def _write_verdicts(cfg: ExperimentConfig, out: Path, data, topo, units: list[dict], t_all: float):
    """The verdict table of the finished ``units`` and ``OUT/topolip/verdicts.json``; returns ``(table, path)``."""
    table = verdicts(units, topo_degree=topo.topolip_degree, topo_order=topo.topolip_order,
                     variant=cfg.topolip_variant, how=cfg.topolip_summary, n_boot=cfg.bootstrap,
                     seed=cfg.bootstrap_seed)
    config = {"command": "experiment topolip", "dataset": cfg.dataset, "data": data.summary(),
              "models": list(cfg.models), "seeds": list(cfg.seeds), "scale": cfg.scale, "epochs": cfg.epochs,
              "probe": cfg.probe, "probe_seed": cfg.probe_seed, "probe_epochs": list(cfg.epochs_probed),
              "topolip": topo_dict(topo), "topolip_variant": cfg.topolip_variant,
              "topolip_summary": cfg.topolip_summary, "topolip_sigma": cfg.topolip_sigma,
              "shift": {"kind": cfg.shift, "severity": cfg.shift_severity}, "robustness": cfg.robustness.as_dict(),
              "verdict_rule": "paired by seed: bootstrap 95% percentile interval of the mean paired difference "
                              "(log scale for positive scale-like quantities); supported if the interval lies on "
                              "the claim's side of 0, contradicted if on the other side, else (or < 2 seeds, or a "
                              "null) inconclusive; exact sign-flip test reported beside it; smoothness claims "
                              "also on the certified end (a's certified upper vs b's empirical lower)",
              "bootstrap": {"resamples": cfg.bootstrap, "seed": cfg.bootstrap_seed},
              "target_accuracy": cfg.target_accuracy,
              "certify": {"eps": list(cfg.certify_eps), "points": cfg.certify_points, "norm": cfg.certify_norm},
              "sensitivity": {"probes": list(cfg.sensitivity_probes), "sigmas": list(cfg.sensitivity_sigmas)},
              "units": [d.get("unit") for d in units]}
    path = write_json(out / "topolip" / "verdicts.json",
                      {**metadata_block(config, None), "kind": "topolip_verdicts", "claims": table,
                       "timings": {"total_seconds": time.perf_counter() - t_all,
                                   "units": {f"{d['model']}-s{d['seed']}": d.get("seconds") for d in units}}})
    return table, path


DEMO_CONFIG = ExperimentConfig(dataset="digits", image_size=16, models=MODELS, scale="tiny", epochs=3,
                               probe_epochs=(0, 3), probe=100, seeds=(0, 1),
                               robustness=RobustnessConfig(eps=(2 / 255, 8 / 255), noise_sigmas=(8 / 255,),
                                                           pgd_steps=5),
                               target_accuracy=0.5, certify_eps=(2 / 255,), certify_points=1, certify_samples=16,
                               certify_steps=2, sensitivity_probes=(50,), sensitivity_sigmas=(4 / 255,),
                               bootstrap=500)

#: the documented full protocol on digits (docs/protocol.md): four models, 5 seeds, matched accuracy 0.8
PROTOCOL_CONFIG = ExperimentConfig(dataset="digits", image_size=16, models=MODELS, scale="small", epochs=12,
                                   probe_epochs=(0, 12), probe=200, seeds=(0, 1, 2, 3, 4),
                                   robustness=RobustnessConfig(eps=(1 / 255, 2 / 255, 4 / 255, 8 / 255),
                                                               noise_sigmas=(2 / 255, 4 / 255, 8 / 255),
                                                               pgd_steps=10),
                                   target_accuracy=0.8, certify_eps=(2 / 255, 1 / 255, 0.05 / 255),
                                   certify_points=2, certify_samples=64, certify_steps=16,
                                   sensitivity_probes=(200, 500, 1000), sensitivity_sigmas=(2 / 255, 4 / 255, 8 / 255))


def run_demo(out_dir, device=None, progress=None) -> Path:
    """A small TopoLip experiment on the embedded digits (4 tiny models, 3 epochs, probe 100, 2 seeds);
    returns the path of ``verdicts.json``."""
    return run_experiment(DEMO_CONFIG, out_dir, resume=False, device=device, progress=progress)["path"]
