"""``boundlab experiment topolip``: train Attn / Conv / ViT / ResNet-18, probe them, attack them, and give a verdict
on every TopoLip seed claim (wraps :func:`empirical.topolip_experiment.run_experiment`).

Writes ``OUT/topolip/<unit>/result.json`` per (model, seed) and ``OUT/topolip/verdicts.json`` (docs/results.md).
"""

from __future__ import annotations

from ._common import CliError, console, nonnegative_int, positive_int, seed_list
from ._progress import console_reporter

MODEL_NAMES = ("attn", "conv", "vit", "resnet")


def _models(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise CliError(f"--models: unknown model(s) {bad or [text]} (choose from {', '.join(MODEL_NAMES)})")
    return names


def print_verdicts(claims: list[dict]) -> None:
    from rich.table import Table

    colour = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}
    table = Table(title="TopoLip seed claims")
    for col in ("claim", "verdict", "detail"):
        table.add_column(col, overflow="fold")
    for c in claims:
        table.add_row(c["id"], f"[{colour[c['verdict']]}]{c['verdict']}[/]", c["detail"])
    console.print(table)


def cmd_experiment_topolip(args) -> int:
    from boundlab.empirical.robustness import RobustnessConfig
    from boundlab.empirical.topolip_experiment import ExperimentConfig, run_experiment

    eps = tuple(float(e) / 255 for e in args.eps.split(",")) if args.eps else RobustnessConfig().eps
    probe_epochs = tuple(int(e) for e in args.probe_epochs.split(",")) if args.probe_epochs else None
    cfg = ExperimentConfig(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                           max_train=args.max_train, models=_models(args.models), scale=args.scale,
                           epochs=args.epochs, probe_epochs=probe_epochs, probe=args.probe, seeds=seed_list(args.seeds),
                           robustness=RobustnessConfig(eps=eps, pgd_steps=args.pgd_steps), toy_init=args.toy_init)
    executor = None
    if args.workers is not None or args.scheduler is not None:
        from ..io.executor import make_executor

        try:
            executor = make_executor(args.scheduler, args.workers)
        except OSError as exc:
            raise CliError(f"--scheduler: {exc}") from exc
    try:
        with console_reporter() as progress:
            res = run_experiment(cfg, args.out, resume=args.resume, device=args.device, progress=progress,
                                 executor=executor)
    finally:
        if executor is not None:
            executor.close()
    print_verdicts(res["verdicts"])
    console.print(f"verdicts -> {res['path']}")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("experiment", help="experiments (TopoLip: Attn/Conv/ViT/ResNet, verdicts)")
    sub = s.add_subparsers(dest="experiment", required=True)
    t = sub.add_parser("topolip", help="train, probe and attack the four models; verdict table over the claims")
    t.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    t.add_argument("--data-dir", default=None, help="folder with the CIFAR-10 python batches (no download)")
    t.add_argument("--models", default="attn,conv,vit,resnet", help="comma-separated subset of attn,conv,vit,resnet")
    t.add_argument("--epochs", type=nonnegative_int, default=5,
                   help="training epochs per unit (0: measure the initialisation only; default: %(default)s)")
    t.add_argument("--probe", type=positive_int, default=200, help="probe images from the test split")
    t.add_argument("--seeds", nargs="+", default=["0", "1"], help="seeds, e.g. 0 1 2 or 0,1,2")
    t.add_argument("--scale", choices=("tiny", "small", "paper"), default="small", help="model widths/depths")
    t.add_argument("--image-size", type=positive_int, default=16, help="digits: resize 8x8 to this size")
    t.add_argument("--max-train", type=positive_int, default=None, help="cifar10: first N training images")
    t.add_argument("--probe-epochs", default=None, help="comma list (default 0,1,5,25 below --epochs, and final)")
    t.add_argument("--eps", default=None, help="attack budgets in 1/255 units, comma list (default 1,2,4,8)")
    t.add_argument("--pgd-steps", type=positive_int, default=10)
    t.add_argument("--out", default="boundlab-results")
    t.add_argument("--resume", action="store_true", help="continue killed units from their last checkpoint")
    t.add_argument("--device", default=None, help="cpu (default) or cuda")
    t.add_argument("--toy-init", choices=("kaiming", "pytorch"), default="kaiming",
                   help="initialisation of the toy Attn/Conv (PyTorch's default barely trains them in a few epochs)")
    t.add_argument("--workers", type=positive_int, default=None, help="run the units on a local Dask cluster of N "
                   "worker processes")
    t.add_argument("--scheduler", default=None, help="run the units on an existing Dask cluster (tcp://HOST:PORT)")
    t.set_defaults(func=cmd_experiment_topolip)
