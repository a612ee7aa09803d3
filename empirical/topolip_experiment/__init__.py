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

:func:`verdicts` turns the finished units into the verdict table over the claims of docs/research/topolip.md 6.2 (paired by
seed: ``supported`` when every seed agrees with the claim, ``contradicted`` when every seed disagrees,
``inconclusive`` when seeds disagree, fewer than 2 seeds, or a value is missing). The TopoLip claims appear twice,
raw and scale-normalised (``*_normalised``), because diagram distances scale with the cloud (docs/research/topolip.md 5.2, L5).
"""

from ._config import (SCALES, ExperimentConfig, default_probe_epochs, default_train_config, topo_config, topo_dict,
                      unit_config, unit_name)
from ._run import DEMO_CONFIG, PROTOCOL_CONFIG, rebracket_experiment, run_demo, run_experiment
from ._stats import bootstrap_mean_ci, paired, sign_flip_test, verdict_from_interval
from ._units import (WEIGHTS, WEIGHTS_MATCHED, load_unit, make_probe, rebracket_unit, run_unit, sensitivity_settings,
                     unit_task)
from ._verdicts import CLAIMS, grid_settings, summarise_unit, verdicts

__all__ = ["ExperimentConfig", "SCALES", "default_train_config", "default_probe_epochs", "topo_config", "topo_dict",
           "unit_config", "unit_name", "make_probe", "run_unit", "unit_task", "run_experiment", "verdicts", "CLAIMS",
           "run_demo", "DEMO_CONFIG", "PROTOCOL_CONFIG", "summarise_unit", "grid_settings", "sensitivity_settings",
           "bootstrap_mean_ci", "paired", "sign_flip_test", "verdict_from_interval", "load_unit", "WEIGHTS",
           "WEIGHTS_MATCHED", "rebracket_unit", "rebracket_experiment"]
