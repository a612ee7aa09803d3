"""Experiment configuration: model scales, training defaults, the canonical (hashed) config of one unit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ...io.results import config_hash
from ...theory.validate import InputError, choice, positive_float, positive_int
from ..data import DATASETS, ImageData
from ..models import MODELS, ModelConfig
from ..robustness import RobustnessConfig
from ..training import TrainConfig

__all__ = ["SCALES", "default_train_config", "default_probe_epochs", "ExperimentConfig", "topo_config", "topo_dict",
           "unit_config", "unit_name"]

# Widths per scale (free parameters of the paper, docs/research/topolip.md 6.3; "paper" follows the protocol of 6.4).
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

    docs/research/topolip.md 6.4 proposes SGD 0.1 for the conv models and 100-200 epochs; in a few epochs on digits SGD left the
    un-normalised toy Conv at chance, so one optimiser for all is the recorded default here."""
    return TrainConfig("adamw", 3e-3, "cosine", epochs, 32, 0.05, 0.9, seed)


def default_probe_epochs(epochs: int) -> tuple[int, ...]:
    """0, 1, 5, 25 (those below ``epochs``) and the final epoch (docs/research/topolip.md 6.4)."""
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
    # matched clean accuracy: the first epoch whose probe clean accuracy reaches the target is measured in full
    target_accuracy: float | None = 0.8
    # certified local brackets [empirical lower, certified upper] at the final epoch (all radii) and at the matched
    # checkpoint (the first radius), on the first certify_points probe images
    certify_eps: tuple[float, ...] = (2 / 255, 1 / 255, 8 / 255)
    certify_points: int = 3
    certify_norm: str = "linf"
    certify_samples: int = 64            # empirical search per region: random points / vertices,
    certify_restarts: int = 4            # the best of them start projected ascent,
    certify_steps: int = 16              # this many steps each,
    certify_smooth: float | None = 50.0  # steered by the softplus-beta surrogate of every ReLU (None: the model)
    # sensitivity at the final epoch (one factor at a time around the base probe size and topolip_sigma)
    sensitivity_probes: tuple[int, ...] = (200, 500, 1000)
    sensitivity_sigmas: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    bootstrap: int = 2000                # resamples of the paired bootstrap of every compared quantity
    bootstrap_seed: int = 2024

    def model_config(self, model: str):
        """The widths/depths of ``model`` at this scale (toy models with ``toy_init``)."""
        base = SCALES[self.scale][model]
        return replace(base, init=self.toy_init) if model in ("attn", "conv") else base

    def validate(self) -> "ExperimentConfig":
        choice("dataset", self.dataset, DATASETS)
        choice("scale", self.scale, tuple(SCALES))
        if not self.models:
            raise InputError("models: expected at least one model")
        for m in self.models:
            choice("models", m, MODELS)
        if not self.seeds:
            raise InputError("seeds: expected at least one seed")
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int):
                raise InputError(f"seeds: expected integers, got {s!r}")
        positive_int("epochs", self.epochs, minimum=0)
        positive_int("threads", self.threads)
        choice("toy_init", self.toy_init, ("kaiming", "pytorch"))
        positive_int("probe", self.probe, minimum=3)
        positive_float("topolip_sigma", self.topolip_sigma)
        choice("topolip_summary", self.topolip_summary, ("max", "mean"))
        choice("topolip_variant", self.topolip_variant, ("A", "B", "C", "D"))
        for e in self.probe_epochs or ():
            if not (isinstance(e, int) and 0 <= e <= self.epochs):
                raise InputError(f"probe_epochs: expected integers in 0..{self.epochs}, got {e!r}")
        if self.target_accuracy is not None:
            t = positive_float("target_accuracy", self.target_accuracy)
            if t > 1:
                raise InputError(f"target_accuracy: expected a fraction in (0, 1], got {t}")
        for i, e in enumerate(self.certify_eps):
            positive_float(f"certify_eps[{i}]", e)
        positive_int("certify_points", self.certify_points, minimum=0)
        if self.certify_points > self.probe:
            raise InputError(f"certify_points: {self.certify_points} exceeds the probe size {self.probe}")
        choice("certify_norm", self.certify_norm, ("linf", "l2"))
        positive_int("certify_samples", self.certify_samples, minimum=0)
        positive_int("certify_steps", self.certify_steps, minimum=0)
        positive_int("certify_restarts", self.certify_restarts, minimum=0)
        if self.certify_smooth is not None:
            positive_float("certify_smooth", self.certify_smooth)
        for i, n in enumerate(self.sensitivity_probes):
            positive_int(f"sensitivity_probes[{i}]", n, minimum=3)
        for i, v in enumerate(self.sensitivity_sigmas):
            positive_float(f"sensitivity_sigmas[{i}]", v)
        positive_int("bootstrap", self.bootstrap, minimum=100)
        self.robustness.validate()
        return self

    @property
    def epochs_probed(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.probe_epochs))) if self.probe_epochs else default_probe_epochs(self.epochs)


def topo_config():
    from ..topolip import TopoConfig

    return TopoConfig()


def topo_dict(tc) -> dict:
    d = asdict(tc)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def unit_config(cfg: ExperimentConfig, model: str, seed: int, data: ImageData, topo=None) -> dict:
    """The canonical config of one unit (everything its numbers depend on; device excluded)."""
    topo = topo if topo is not None else topo_config()
    summary = data.summary()
    summary.pop("description")
    return {"model": model, "dataset": cfg.dataset, "data": summary, "seed": seed,
            "model_config": cfg.model_config(model).as_dict(), "scale": cfg.scale,
            "train": default_train_config(model, cfg.epochs, seed).as_dict(),
            "probe": {"n": cfg.probe, "seed": cfg.probe_seed, "split": "test", "epochs": list(cfg.epochs_probed),
                      "point": "flattened output of one block for one image; layer 0 = the input image"},
            "perturbation": {"kind": "gaussian_noise", "sigma": cfg.topolip_sigma, "space": "pixels, clipped to [0,1]"},
            "shift": {"kind": cfg.shift, "severity": cfg.shift_severity},
            "robustness": cfg.robustness.as_dict(), "topolip": topo_dict(topo),
            "lipschitz": "certified upper bound per block on the pixel box (theory.composition.network_bound)",
            "torch_threads": cfg.threads,
            "matched": {"target_accuracy": cfg.target_accuracy, "rule": "first epoch whose clean accuracy on the "
                        "probe split reaches the target; measured in full there"},
            "certify": {"eps": list(cfg.certify_eps), "points": cfg.certify_points, "norm": cfg.certify_norm,
                        "samples": cfg.certify_samples, "steps": cfg.certify_steps,
                        "restarts": cfg.certify_restarts, "smooth": cfg.certify_smooth,
                        "bound": "local.lipschitz_l2", "region": "eps-ball around each of the first probe images, "
                        "intersected with the pixel box [0, 1]"},
            "sensitivity": {"probes": list(cfg.sensitivity_probes), "sigmas": list(cfg.sensitivity_sigmas),
                            "design": "one factor at a time around (probe, topolip_sigma); H0 diagrams, final "
                            "epoch"}}


def unit_name(model: str, dataset: str, seed: int, ucfg: dict) -> str:
    return f"{model}-{dataset}-s{seed}-{config_hash(ucfg)[:8]}"


