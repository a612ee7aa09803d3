"""``boundlab experiment topolip``: train Attn / Conv / ViT / ResNet-18, probe them, attack them, certify their local
smoothness, and give a verdict on every TopoLip claim (wraps :func:`empirical.topolip_experiment.run_experiment`).

Writes ``OUT/topolip/<unit>/result.json`` (+ the unit's weights) per (model, seed) and ``OUT/topolip/verdicts.json``
(docs/results.md). ``--protocol`` starts from the documented full protocol (docs/protocol.md: 5 seeds, 12 epochs,
probe 200, matched accuracy 0.8, brackets and the sensitivity grid); every option given explicitly overrides it.
``--rebracket`` (same configuration options) recomputes the brackets of the finished units with the current
certificate, without training, and rewrites the verdicts
(:func:`empirical.topolip_experiment.rebracket_experiment`).
"""

from __future__ import annotations

from ._common import CliError, console, device, nonnegative_int, positive_float, positive_int, seed_list
from ._progress import console_reporter

MODEL_NAMES = ("attn", "conv", "vit", "resnet")


def _models(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise CliError(f"--models: unknown model(s) {bad or [text]} (choose from {', '.join(MODEL_NAMES)})")
    return names


def _floats(text: str, option: str, scale: float = 1.0, maximum: float | None = None,
            what: str = "positive numbers") -> tuple[float, ...]:
    """Comma list of numbers in (0, maximum] (fractions such as ``2/255`` accepted), each times ``scale``; an error
    echoes what the user typed, in the option's own units (never the rescaled value)."""
    import argparse

    out = []
    for part in text.split(","):
        if part.strip():
            try:
                v = positive_float(part.strip())
            except argparse.ArgumentTypeError:
                raise CliError(f"{option}: expected {what}, got {part.strip()!r}") from None
            if maximum is not None and v > maximum:
                raise CliError(f"{option}: expected {what}, got {part.strip()!r}")
            out.append(v * scale)
    if not out:
        raise CliError(f"{option}: expected {what}, got {text!r}")
    return tuple(out)


_PIXELS = "numbers in (0, 255] in 1/255 units, comma list (e.g. 2 or 1,2,8)"


def _ints(text: str, option: str, minimum: int = 1) -> tuple[int, ...]:
    try:
        out = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise CliError(f"{option}: expected comma-separated integers >= {minimum}, got {text!r}") from None
    if not out or min(out) < minimum:
        raise CliError(f"{option}: expected comma-separated integers >= {minimum}, got {text!r}")
    return out


def print_verdicts(claims: list[dict]) -> None:
    from rich.table import Table

    colour = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}
    table = Table(title="TopoLip claims (final epoch | matched accuracy)")
    for col in ("claim", "final", "matched", "detail (final)"):
        table.add_column(col, overflow="fold")
    for c in claims:
        m = c.get("matched") or {}
        mv = m.get("label") or m.get("verdict", "inconclusive")
        table.add_row(c["id"], f"[{colour[c['verdict']]}]{c.get('label', c['verdict'])}[/]",
                      f"[{colour.get(m.get('verdict', 'inconclusive'), 'white')}]{mv}[/]", c["detail"])
    console.print(table)


def _option(field: str) -> str:
    """The command-line option of an :class:`ExperimentConfig` field (``probe_epochs[0]`` -> ``--probe-epochs``)."""
    return "--" + field.split("[", 1)[0].replace("_", "-")


def _config(args):
    from dataclasses import replace

    from boundlab.empirical.robustness import RobustnessConfig
    from boundlab.empirical.topolip_experiment import PROTOCOL_CONFIG, ExperimentConfig
    from boundlab.io.errors import InputError

    if args.data_dir is not None and args.dataset != "cifar10":
        raise CliError(f"--data-dir: only used with --dataset cifar10 (the {args.dataset} data are bundled); "
                       f"drop --data-dir {args.data_dir} or add --dataset cifar10")
    if args.max_train is not None and args.dataset != "cifar10":
        raise CliError(f"--max-train: only used with --dataset cifar10 (got --dataset {args.dataset})")
    base = PROTOCOL_CONFIG if args.protocol else ExperimentConfig(seeds=(0, 1))
    kw = {"dataset": args.dataset, "data_dir": args.data_dir, "toy_init": args.toy_init}
    if args.models is not None:
        kw["models"] = _models(args.models)
    for opt, field in (("epochs", "epochs"), ("probe", "probe"), ("scale", "scale"), ("image_size", "image_size"),
                       ("max_train", "max_train"), ("certify_points", "certify_points"), ("bootstrap", "bootstrap")):
        if getattr(args, opt) is not None:
            kw[field] = getattr(args, opt)
    if args.seeds is not None:
        kw["seeds"] = seed_list(args.seeds)
    if args.probe_epochs is not None:
        kw["probe_epochs"] = _ints(args.probe_epochs, "--probe-epochs", minimum=0)
        epochs = kw.get("epochs", base.epochs)
        late = [e for e in kw["probe_epochs"] if e > epochs]
        if late:
            raise CliError(f"--probe-epochs: {args.probe_epochs!r} has epoch(s) {late} after the last one "
                           f"(--epochs {epochs})")
    elif args.epochs is not None and base.probe_epochs is not None:
        # the protocol probes its initialisation and its final epoch: keep that shape under another --epochs
        kw["probe_epochs"] = tuple(sorted({0, args.epochs}))
    if args.target_accuracy is not None:
        what = "one fraction in (0, 1] or 'none'"
        kw["target_accuracy"] = None if args.target_accuracy.strip().lower() == "none" else _floats(
            args.target_accuracy, "--target-accuracy", maximum=1.0, what=what)[0]
        if "," in args.target_accuracy:
            raise CliError(f"--target-accuracy: expected {what}, got {args.target_accuracy!r}")
    if args.certify_eps is not None:
        kw["certify_eps"] = _floats(args.certify_eps, "--certify-eps", 1 / 255, 255.0, _PIXELS)
    if args.sensitivity_probes is not None:
        kw["sensitivity_probes"] = () if args.sensitivity_probes.strip() == "none" else _ints(
            args.sensitivity_probes, "--sensitivity-probes", minimum=3)
    if args.sensitivity_sigmas is not None:
        kw["sensitivity_sigmas"] = () if args.sensitivity_sigmas.strip() == "none" else _floats(
            args.sensitivity_sigmas, "--sensitivity-sigmas", 1 / 255, 255.0, _PIXELS)
    rob = base.robustness
    if args.eps is not None:
        rob = replace(rob, eps=_floats(args.eps, "--eps", 1 / 255, 255.0, _PIXELS))
    if args.pgd_steps is not None:
        rob = replace(rob, pgd_steps=args.pgd_steps)
    kw["robustness"] = RobustnessConfig(**{**rob.__dict__})
    try:
        return replace(base, **kw).validate()
    except CliError:
        raise
    except InputError as exc:  # a field-level message (`probe: ...`): name the option instead
        field, _, rest = str(exc).partition(": ")
        raise CliError(f"{_option(field)}: {rest}" if rest else str(exc)) from None


def cmd_experiment_topolip(args) -> int:
    from boundlab.empirical.topolip_experiment import rebracket_experiment, run_experiment

    if args.rebracket and args.resume:
        raise CliError("--resume: not used with --rebracket (re-bracketing never trains; units whose brackets are "
                       "already current are always skipped)")
    cfg = _config(args)  # every option checked before any work starts
    executor = None
    if args.workers is not None or args.scheduler is not None:
        from ..io.executor import make_executor

        try:
            executor = make_executor(args.scheduler, args.workers)
        except OSError as exc:
            raise CliError(f"--scheduler: {exc}") from exc
    try:
        with console_reporter() as progress:
            if args.rebracket:
                res = rebracket_experiment(cfg, args.out, progress=progress, executor=executor)
            else:
                res = run_experiment(cfg, args.out, resume=args.resume, device=args.device, progress=progress,
                                     executor=executor)
    finally:
        if executor is not None:
            executor.close()
    print_verdicts(res["verdicts"])
    if args.rebracket:
        console.print(f"re-bracketed {len(res['rebracketed'])} unit(s); {len(res['skipped'])} already current")
    console.print(f"verdicts -> {res['path']}")
    return 0


def register(subparsers) -> None:
    import argparse

    s = subparsers.add_parser("experiment", help="experiments (TopoLip: Attn/Conv/ViT/ResNet, verdicts)")
    sub = s.add_subparsers(dest="experiment", required=True)
    t = sub.add_parser("topolip", help="train, probe, attack and certify the four models; verdict table over the "
                       "claims", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--protocol", action="store_true", help="start from the full protocol of docs/protocol.md "
                   "(5 seeds, 12 epochs, probe 200, matched accuracy 0.8, brackets, sensitivity grid); options "
                   "given explicitly override it (default: off, the quick 2-seed configuration)")
    t.add_argument("--dataset", choices=("digits", "cifar10"), default="digits",
                   help="digits: bundled 8x8 digits (no download); cifar10: the python batches in --data-dir "
                   "(default: %(default)s)")
    t.add_argument("--data-dir", default=None, help="--dataset cifar10 only: folder with the CIFAR-10 python "
                   "batches (data_batch_1..5, test_batch; no download); an error with digits (default: none)")
    t.add_argument("--models", default=None, help="comma-separated subset of attn,conv,vit,resnet (default: all "
                   "four)")
    t.add_argument("--epochs", type=nonnegative_int, default=None,
                   help="training epochs per unit, >= 0; 0 means no training: the initialisation is probed, "
                   "attacked and certified (default: 5; protocol: 12)")
    t.add_argument("--probe", type=positive_int, default=None, help="probe images from the test split, >= 3 "
                   "(default: 200; protocol: 200)")
    t.add_argument("--seeds", nargs="+", default=None, help="seeds, e.g. 0 1 2 or 0,1,2 (default: 0 1; protocol: "
                   "0 1 2 3 4)")
    t.add_argument("--scale", choices=("tiny", "small", "paper"), default=None, help="model widths/depths "
                   "(default: small)")
    t.add_argument("--image-size", type=positive_int, default=None, help="digits: resize 8x8 to this size "
                   "(default: 16)")
    t.add_argument("--max-train", type=positive_int, default=None, help="--dataset cifar10 only: first N training "
                   "images (default: all 50000)")
    t.add_argument("--probe-epochs", default=None, help="epochs to probe in full, comma list of integers in "
                   "0..--epochs (default: 0,1,5,25 below --epochs and the final one; protocol: 0 and the final "
                   "one)")
    t.add_argument("--eps", default=None, help="FGSM/PGD attack budgets in 1/255 units, comma list of numbers in "
                   "(0, 255] (default: 1,2,4,8)")
    t.add_argument("--pgd-steps", type=positive_int, default=None, help="PGD steps (default: 10)")
    t.add_argument("--target-accuracy", default=None, help="matched clean accuracy on the probe split, a fraction "
                   "in (0, 1], or 'none' to skip (default: 0.8)")
    t.add_argument("--certify-eps", default=None, help="radii of the certified brackets in 1/255 units, comma "
                   "list, first = the matched checkpoint's (default: 2,1,8; protocol: 2,1)")
    t.add_argument("--certify-points", type=nonnegative_int, default=None, help="probe images certified per "
                   "radius, 0 to skip (default: 3; protocol: 2)")
    t.add_argument("--sensitivity-probes", default=None, help="probe sizes of the sensitivity grid, comma list or "
                   "'none' (default: 200,500,1000; clipped to the test split)")
    t.add_argument("--sensitivity-sigmas", default=None, help="noise levels of the sensitivity grid in 1/255 "
                   "units, comma list or 'none' (default: 2,4,8)")
    t.add_argument("--bootstrap", type=positive_int, default=None, help="bootstrap resamples per compared "
                   "quantity, >= 100 (default: 2000)")
    t.add_argument("--out", default="boundlab-results", metavar="DIR",
                   help="results folder; units go to DIR/topolip/<unit>/ (default: %(default)s)")
    t.add_argument("--rebracket", action="store_true", help="no training: recompute the certified brackets of "
                   "every finished unit of this configuration with the current certificate (the stored empirical "
                   "lower bounds must reproduce), skip units already re-bracketed at this commit (clean tree), then "
                   "rewrite verdicts.json; refused while a unit is unfinished; runs on CPU (default: off)")
    t.add_argument("--resume", action="store_true", help="continue killed units from their last checkpoint "
                   "(finished units are always skipped; default: off)")
    t.add_argument("--device", type=device, default=None, help="cpu or cuda[:N], checked before any work "
                   "(default: cpu)")
    t.add_argument("--toy-init", choices=("kaiming", "pytorch"), default="kaiming",
                   help="initialisation of the toy Attn/Conv; PyTorch's default barely trains them in a few epochs "
                   "(default: %(default)s)")
    t.add_argument("--workers", type=positive_int, default=None, help="run the units on a local Dask cluster of N "
                   "worker processes (default: in this process, one unit at a time)")
    t.add_argument("--scheduler", default=None, help="run the units on an existing Dask cluster (tcp://HOST:PORT) "
                   "(default: none)")
    t.set_defaults(func=cmd_experiment_topolip)
