"""Certified local brackets: the interval type, the model descriptions, soundness and first-order exactness on the
studied architectures, the CLI and the report section."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from boundlab.cli import main
from boundlab.empirical.certify import bracket_model, network_of, region_lower_bound, torch_function
from boundlab.empirical.lipschitz import jacobian_norm
from boundlab.empirical.models import MODELS, ModelConfig, build_model
from boundlab.theory import local as TL
from boundlab.theory.local import Box, LocalProblem, Options, Region, certify, evaluate
from boundlab.io.seeds import derive_seed
from boundlab.theory.validate import InputError

CFG = ModelConfig(width=8, depth=2, heads=2, patch=4, mlp_ratio=2)


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: torch's intra-op threads oversubscribe them; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model(name, seed=0):
    m = build_model(name, channels=1, image_size=8, num_classes=4, mean=(0.3,), std=(0.3,), config=CFG, seed=seed)
    m = m.double().eval()
    if name == "resnet":  # non-trivial eval statistics, so the BatchNorm enclosure is exercised
        g = torch.Generator().manual_seed(seed)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_var.copy_(0.2 + torch.rand(mod.running_var.shape, generator=g, dtype=torch.float64))
                mod.running_mean.copy_(0.3 * torch.randn(mod.running_mean.shape, generator=g, dtype=torch.float64))
    for p in m.parameters():
        p.requires_grad_(False)
    return m


# --------------------------------------------------------------------------- the interval type
def test_box_operations_enclose_every_member():
    """Every Box operation must contain the exact result for members drawn from the operand boxes. Catches a radius
    formula missing a term (e.g. |a| r_b in products), a reciprocal/sqrt/exp endpoint taken on the wrong side, or
    a softmax enclosure that is not monotone-correct."""
    rng = np.random.default_rng(0)
    for trial in range(30):
        am, bm = rng.standard_normal((3, 4)) * 3, rng.standard_normal((4, 2)) * 3
        ar, br = rng.random((3, 4)) * 0.5, rng.random((4, 2)) * 0.5
        a, b = Box(am, ar), Box(bm, br)
        pos = Box(np.abs(am) + ar + 0.1, ar)
        ops = {"matmul": (lambda x, y: x @ y, a @ b), "mul": (lambda x, y: x * y[:, :1].T, a * Box(bm[:, :1].T, br[:, :1].T)),
               "exp": (lambda x, y: np.exp(x), a.exp()), "square": (lambda x, y: x * x, a.square()),
               "softmax": (lambda x, y: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True), a.softmax())}
        for _ in range(50):
            x = am + ar * rng.uniform(-1, 1, am.shape)
            y = bm + br * rng.uniform(-1, 1, bm.shape)
            for name, (f, box) in ops.items():
                v = f(x, y)
                assert (box.lower <= v).all() and (v <= box.upper).all(), (name, trial)
            xp = pos.mid + pos.rad * rng.uniform(-1, 1, am.shape)
            for name, f, box in (("reciprocal", lambda t: 1 / t, pos.reciprocal()), ("sqrt", np.sqrt, pos.sqrt())):
                v = f(xp)
                assert (box.lower <= v).all() and (v <= box.upper).all(), name


# --------------------------------------------------------------------------- descriptions of the models
@pytest.mark.parametrize("name", MODELS)
def test_description_is_the_model(name):
    """The theory description (numpy evaluation and its torch function) equals the model on random inputs. Catches
    a transposed weight, a wrong patch order, a missed BatchNorm statistic or LayerNorm eps, a dropped residual
    or shortcut, a wrong pooling."""
    m = _model(name)
    net = network_of(m)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        ref = m(x).numpy()
        tf = torch_function(net)(x).numpy()
    npv = np.stack([evaluate(net, xi.numpy()) for xi in x])
    assert np.allclose(ref, tf, rtol=1e-10, atol=1e-12) and np.allclose(ref, npv, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_certificate_is_first_order_exact_on_tiny_regions(name):
    """At eps -> 0 every ReLU is stable and the smooth layers' spread vanishes, so the certificate must converge to
    the exact ||J_f(x0)||_2 (dense Jacobian). Catches a wrong attention / LayerNorm Jacobian formula, a wrong
    BatchNorm scale, a wrong transposed convolution or stride, a residual path counted twice or dropped."""
    m = _model(name, seed=1)
    net = network_of(m)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64) * 0.8 + 0.1
    exact = float(jacobian_norm(lambda z: m(z), x)[0])
    small, big = (certify(LocalProblem.create(net, Region.create(x[0].numpy(), e))).value for e in (1e-9, 1e-7))
    assert exact <= small <= exact * (1 + 1e-5), (name, exact, small)
    # the excess over the exact value is first order in eps: 100x smaller region, (at least) 10x smaller excess
    # (+ the outward rounding, amplified through the layers: ~1e-6 relative for the 17 ReLU layers of ResNet-18)
    assert small - exact <= (big - exact) / 10 + 1e-5 * exact, (name, exact, small, big)


@pytest.mark.parametrize("name", MODELS)
def test_certified_upper_dominates_region_search(name):
    """Soundness on every studied architecture at a radius where ReLUs flip and softmax moves: the certified bound is
    >= the largest Jacobian norm the region search finds. Catches an unsound residual merge of generators, a BN or
    normalisation scale enclosed on the wrong side, an unstable neuron treated as stable."""
    m = _model(name, seed=2)
    net = network_of(m)
    g = torch.Generator().manual_seed(3)
    for i in range(2):
        x = torch.rand((1, 8, 8), generator=g, dtype=torch.float64)
        eps = 4 / 255
        cert = certify(LocalProblem.create(net, Region.create(x.numpy(), eps)))
        emp = region_lower_bound(m, x, eps, samples=32, restarts=2, steps=4, seed=i).lower_bound
        assert emp <= cert.value * (1 + 1e-9), (name, emp, cert.value)


def test_dropping_the_unstable_term_is_caught_on_a_model():
    """The planted slip on a real architecture: with the unstable ReLUs' derivative set to 0, some region of a conv
    model has a searched Jacobian above the slipped bound (so the search has the power to catch it)."""
    m = _model("conv", seed=4)
    net = network_of(m)
    g = torch.Generator().manual_seed(5)
    caught = False
    for i in range(6):
        x = torch.rand((1, 8, 8), generator=g, dtype=torch.float64)
        prob = LocalProblem.create(net, Region.create(x.numpy(), 16 / 255))
        slipped = certify(prob, Options(mutant_drop_unstable=True)).value
        emp = region_lower_bound(m, x, 16 / 255, samples=32, seed=i).lower_bound
        assert emp <= certify(prob).value * (1 + 1e-9)
        caught |= emp > slipped * (1 + 1e-9)
    assert caught


def test_generator_norm_bound_dominates_every_member():
    """The backward set's generator part is bounded by min(||A||_2 ||B||_2, ||A^T |B| ||_2): both must dominate
    ||At^T B||_2 for every |At| <= A (drawn: random signs and scales, and the extreme points of the set), and the
    entrywise bound is the smaller one when the generators' supports are disjoint (unstable neurons)."""
    from boundlab.theory.local.propagate import _Back, _norm_bound

    rng = np.random.default_rng(derive_seed(0, "test.generator_norm"))
    for disjoint in (False, True):
        k, n, m = 4, 30, 25
        A = rng.uniform(0, 1, (m, k))
        B = np.eye(m, n) * rng.normal(size=(m, 1)) if disjoint else rng.normal(size=(m, n))
        st = _Back(rng.normal(size=(k, n)), A, B, np.zeros((k, n)))
        mid, gen, rem = _norm_bound(st)
        assert mid >= np.linalg.norm(st.M, 2) and rem < 1e-300  # round_up(0) is the smallest subnormal
        for _ in range(200):
            At = A * rng.choice([-1.0, 1.0], size=A.shape) * (rng.uniform(size=A.shape) if _ % 2 else 1.0)
            assert np.linalg.norm(At.T @ B, 2) <= gen
        product = np.linalg.norm(A, 2) * np.linalg.norm(B, 2)
        if disjoint:
            assert gen < 0.9 * product  # the entrywise bound wins on disjoint supports
        assert gen <= product * (1 + 1e-9)  # never worse than the product bound (up to the rounding up)


def test_bad_input_is_one_error_naming_the_argument():
    net = network_of(_model("conv"))
    good = np.full((1, 8, 8), 0.5)
    with pytest.raises(InputError, match="center"):
        Region.create(np.full((1, 8, 8), np.nan), 0.1)
    with pytest.raises(InputError, match="eps"):
        Region.create(good, -0.1)
    with pytest.raises(InputError, match="norm"):
        Region.create(good, 0.1, norm="l1")
    with pytest.raises(InputError, match="region"):
        LocalProblem.create(net, Region.create(np.full((1, 4, 4), 0.5), 0.1))
    with pytest.raises(InputError, match="center"):
        Region.create(np.full((1, 8, 8), 1.5), 0.1)  # outside the pixel box it is clipped to
    with pytest.raises(InputError, match="layers"):
        TL.Network.create((3,), [TL.Dense.create(np.ones((2, 4)))])
    with pytest.raises(InputError, match="images"):
        bracket_model(_model("conv"), torch.full((1, 1, 8, 8), float("nan")), [2 / 255])


def test_brackets_and_global_bound():
    """bracket_model: certified >= empirical per point, ratios consistent, the global bound and its explanation."""
    m = _model("resnet")
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    res = bracket_model(m, x, [1 / 255, 2 / 255], seed=0)
    assert set(res["per_eps"]) == {"1/255", "2/255"}
    for row in res["per_eps"].values():
        assert row["n_points"] == 2
        for p in row["points"]:
            assert p["certified_upper"] >= p["empirical_lower"] > 0
            assert math.isclose(p["ratio"], p["certified_upper"] / p["empirical_lower"])
    g = res["global"]
    assert g["value"] > 0 and g["why_vacuous"] and g["largest_factors"]


def test_smooth_relu_mode_replaces_every_relu_and_only_inside():
    from boundlab.empirical.certify.ascent import SmoothRelu

    x = torch.linspace(-1, 1, 9, dtype=torch.float64)
    soft = torch.nn.functional.softplus(x, beta=7.0)
    with SmoothRelu(7.0):
        for y in (torch.nn.functional.relu(x), torch.relu(x), x.relu(), torch.nn.ReLU()(x)):
            assert torch.allclose(y, soft)
    assert torch.equal(torch.nn.functional.relu(x), x.clamp_min(0))
    with pytest.raises(InputError, match="smooth"):
        SmoothRelu(0.0)


def _gated(x):
    """f(x) = (x_1, 10 relu(x_0 - 0.51)) on a batch: at x = (0.5, 0.5) the ReLU is off and the model's own
    ascent gradient is zero, the largest ||J|| (10) of the 0.02-box lies at x_0 > 0.51."""
    x = x.reshape(x.shape[0], -1)
    return torch.stack([x[:, 1], 10 * torch.nn.functional.relu(x[:, 0] - 0.51)], dim=1)


def test_smoothed_ascent_finds_what_the_relu_gradient_cannot():
    """Centre only (no random points): the model's own gradient cannot leave the centre (value 1); the softplus
    surrogate steers across the kink (value 10). Every reported value is ||J_f|| of the model at a region point."""
    c = torch.tensor([0.5, 0.5], dtype=torch.float64)
    plain = region_lower_bound(_gated, c, 0.02, samples=0, restarts=1, steps=4, seed=0)
    smooth = region_lower_bound(_gated, c, 0.02, samples=0, restarts=1, steps=4, seed=0, smooth=50.0)
    assert plain.lower_bound == pytest.approx(1.0)
    assert smooth.lower_bound == pytest.approx(10.0)
    a = torch.as_tensor(smooth.argmax)
    assert (a - c).abs().max() <= 0.02 + 1e-15
    jac = torch.func.jacrev(lambda z: _gated(z.unsqueeze(0)).squeeze(0))(a)
    assert torch.linalg.matrix_norm(jac, 2).item() == pytest.approx(smooth.lower_bound)
    with pytest.raises(InputError, match="smooth"):
        region_lower_bound(_gated, c, 0.02, smooth=-1.0)


def test_eps_labels():
    from boundlab.empirical.certify import eps_label

    assert [eps_label(e) for e in (2 / 255, 1 / 255, 0.05 / 255, 0.25 / 255, 0.001)] == \
        ["2/255", "1/255", "0.05/255", "0.25/255", "0.001"]
    assert eps_label(0.0078, tol=0.014) == "2/255" and eps_label(0.0078) == "0.0078"


# --------------------------------------------------------------------------- CLI and report on a finished unit
@pytest.fixture(scope="module")
def finished_unit(tmp_path_factory):
    from boundlab.empirical.robustness import RobustnessConfig
    from boundlab.empirical.topolip_experiment import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("unit")
    cfg = ExperimentConfig(image_size=8, models=("conv",), scale="tiny", epochs=1, probe_epochs=(1,), probe=12,
                           seeds=(0,), robustness=RobustnessConfig(eps=(2 / 255,), noise_sigmas=(8 / 255,), pgd_steps=1),
                           target_accuracy=None, certify_eps=(2 / 255,), certify_points=1, certify_samples=8,
                           certify_steps=1, sensitivity_probes=(), sensitivity_sigmas=(), bootstrap=200)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_experiment(cfg, out)
    finally:
        torch.set_num_threads(n)
    return out, out / "topolip" / res["units"][0]["unit"]


def test_cli_certify_writes_brackets(finished_unit, tmp_path, capsys):
    _, unit = finished_unit
    out = tmp_path / "b.json"
    assert main(["certify", str(unit), "--eps", "2/255", "4/255", "--points", "2", "--samples", "8", "--steps", "1",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "certify_brackets" and set(doc["per_eps"]) == {"2/255", "4/255"}
    assert all(p["certified_upper"] >= p["empirical_lower"] for r in doc["per_eps"].values() for p in r["points"])
    assert doc["config"]["weights_sha256"].startswith("sha256:")
    assert doc["search"] == {"samples": 8, "restarts": 4, "steps": 1, "smooth": 50.0}
    assert main(["certify", str(unit), "--points", "1", "--samples", "4", "--steps", "1", "--smooth", "0",
                 "--restarts", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["search"] == {"samples": 4, "restarts": 1, "steps": 1, "smooth": None}


def _code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own type errors
        return exc.code


def test_cli_certify_errors(finished_unit, tmp_path, capsys):
    """Bad input: an error on stderr naming the argument, exit 2, before any work."""
    _, unit = finished_unit
    cases = [([str(tmp_path / "nope")], "MODEL_DIR"), ([str(tmp_path)], "MODEL_DIR"),
             ([str(unit), "--eps", "-1"], "--eps"), ([str(unit), "--eps", "nan"], "--eps"),
             ([str(unit), "--points", "0"], "--points"), ([str(unit), "--smooth", "-1"], "--smooth"), ([str(unit), "--points", "500"], "--points"),
             ([str(unit), "--checkpoint", "matched"], "MODEL_DIR")]
    for argv, name in cases:
        assert _code(["certify", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert name in err.strip().splitlines()[-1], (argv, err)  # the last line names the argument
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "result.json").write_text(json.dumps({"kind": "topolip_run", "status": "finished"}))
    assert _code(["certify", str(broken)]) == 2
    assert "MODEL_DIR" in capsys.readouterr().err


def test_report_renders_brackets_and_survives_a_malformed_field(finished_unit, tmp_path):
    import shutil

    from boundlab.reports.html import build

    root, unit = finished_unit
    html, res = build(root, tmp_path / "rep")
    text = html.read_text()
    assert "Brackets at the final epoch" in text and "Verdict-by-setting grid" in text
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    doc = json.loads((bad / "topolip" / unit.name / "result.json").read_text())
    doc["certify"] = {"per_eps": "oops"}
    (bad / "topolip" / unit.name / "result.json").write_text(json.dumps(doc))
    _, res2 = build(bad, tmp_path / "rep2")
    assert any("brackets malformed" in p.message for p in res2.problems)


# --------------------------------------------------------------------------- back-substitution and the telescoped bound
def _tiny_residual(rng, kind: str, relu_out: bool = False):
    """A small residual ReLU net (dense or conv) with kinks near the centre, and a region around the centre
    (``relu_out``: the dense net ends with a ReLU)."""
    from boundlab.theory.convolution import ConvLayer

    if kind == "dense":
        d, h = 4, 6
        c = rng.random(d)
        w1 = rng.standard_normal((h, d))
        layers = [TL.Dense.create(w1, 0.3 * rng.standard_normal(h) - w1 @ c),  # kinks at the centre
                  TL.Relu.create(),
                  TL.Residual.create([TL.Dense.create(rng.standard_normal((h, h)) / 2, 0.2 * rng.standard_normal(h)),
                                      TL.Relu.create(),
                                      TL.Dense.create(rng.standard_normal((h, h)) / 2, 0.2 * rng.standard_normal(h))]),
                  TL.Relu.create(), TL.Dense.create(rng.standard_normal((3, h)), rng.standard_normal(3))]
        if relu_out:
            layers.append(TL.Relu.create())
        return TL.Network.create((d,), layers), c
    n, co = 4, 2
    c = rng.random((1, n, n))
    k1 = rng.standard_normal((co, 1, 3, 3)) / 2
    bn = TL.ChannelAffine.batchnorm(1 + 0.3 * rng.standard_normal(co), 0.2 * rng.standard_normal(co),
                                    0.2 * rng.standard_normal(co), 0.2 + rng.random(co), 1e-5)
    conv = lambda k, pad: TL.Conv.create(ConvLayer.create(k, n, pad, 1))  # noqa: E731
    layers = [TL.Conv.create(ConvLayer.create(k1, n, 1, 1), 0.2 * rng.standard_normal(co)), bn, TL.Relu.create(),
              TL.Residual.create([conv(rng.standard_normal((co, co, 3, 3)) / 3, 1), bn, TL.Relu.create(),
                                  conv(rng.standard_normal((co, co, 3, 3)) / 3, 1)],
                                 [conv(rng.standard_normal((co, co, 1, 1)), 0)]),
              TL.Relu.create(), TL.Mean.create("spatial"), TL.Dense.create(rng.standard_normal((2, co)))]
    return TL.Network.create((1, n, n), layers), c


def _walk(net, h, relu, bias: bool):
    """``h`` (B, *input) through the network's layers with their own maps (independent of the graph code under
    test): ``relu(h)`` at every ReLU (forward order, branch before shortcut), biases added when ``bias``."""
    from boundlab.theory.local.propagate import _Lin

    def run(layers, h, shape):
        for layer in layers:
            if isinstance(layer, TL.Relu):
                h = relu(h)
            elif isinstance(layer, TL.Residual):
                a, sa = run(layer.branch, h, shape)
                b, _ = run(layer.shortcut, h, shape) if layer.shortcut else (h, shape)
                h, shape = a + b, sa
            else:
                lin = _Lin(layer, shape)
                h = lin.fwd(h) + (lin.bias.mid if bias and lin.bias is not None else 0.0)
                shape = lin.out_shape
        return h, shape

    return run(net.layers, h, net.input_shape)[0]


def _preactivations(net, xs):
    """The input of every ReLU (forward order, branch before shortcut) at the points ``xs`` (B, *input)."""
    out = []

    def relu(h):
        out.append(h.reshape(h.shape[0], -1).copy())  # (B, neurons)
        return np.maximum(h, 0.0)

    _walk(net, xs, relu, bias=True)
    return out


def _region_samples(rng, region, n=600):
    lo, hi = region.box()
    vert = lo + (hi - lo) * rng.integers(0, 2, (n, *lo.shape))
    unif = lo + (hi - lo) * rng.random((n, *lo.shape))
    return np.concatenate([vert, unif, region.center[None]])


def test_back_substitution_encloses_sampled_preactivations():
    """Every ReLU's pre-activation bounds (zonotope hull intersected with back-substitution) must contain the
    pre-activations at sampled points of the region (vertices, uniform points, the centre) of random tiny residual
    nets, dense and conv (BatchNorm, projection shortcut); and the back-substitution with the chords' intercepts
    dropped (a plausible slip) must be caught by the same samples on some net, so the check has teeth. Catches a
    relaxation line on the wrong side, a residual summand not pulled back, a bias or BN shift left out."""
    from boundlab.theory.local.graph import relu_bounds
    from boundlab.theory.local.propagate import analyse

    rng = np.random.default_rng(derive_seed(0, "test.back_substitution"))
    caught, refined = 0, 0
    for trial in range(24):
        net, c = _tiny_residual(rng, "dense" if trial % 2 else "conv")
        region = Region.create(c, float(rng.choice([0.05, 0.15, 0.3])), "linf", None, None)
        g, _, _, stats = analyse(LocalProblem.create(net, region))
        assert g.pure and len(g.relus) == 3, trial
        pre = _preactivations(net, _region_samples(rng, region))
        for k, nid in enumerate(g.relus):
            node = g.nodes[nid]
            v = pre[k]
            assert (v >= node.lo.ravel()).all() and (v <= node.hi.ravel()).all(), (trial, k)
            src = node.ins[0]
            allc = np.arange(node.lo.size)
            bl, bu = relu_bounds(g, src, allc)
            assert (v >= bl).all() and (v <= bu).all(), (trial, k)  # the back-substitution alone encloses too
            ml, mu = relu_bounds(g, src, allc, intercepts=False)
            caught += bool((v < ml - 1e-12).any() or (v > mu + 1e-12).any())
        refined += sum(r.get("unstable_hull", 0) > r.get("unstable", 0) for r in stats if "unstable" in r)
    assert caught > 0
    assert refined > 0  # back-substitution settles some neurons the zonotope hull leaves unstable


def _masked_jacobian(net, masks):
    """The Jacobian of the network's linear parts with the ReLU derivatives ``masks`` (forward order), forward mode
    through the layers' own maps (independent of the graph code under test)."""
    it = iter(masks)
    n = int(np.prod(net.input_shape))
    h = _walk(net, np.eye(n).reshape(n, *net.input_shape), lambda h: h * next(it)[None], bias=False)  # (n, *out)
    return h.reshape(n, -1).T


def _vertex_sup(net, g):
    """max ||J(D)||_2 over every vertex D of the Clarke product set (the exact sup: ||J|| is convex in each D_k and J
    is affine in it), by enumeration; None when there are too many unstable neurons."""
    import itertools

    derivs = [g.nodes[nid].deriv for nid in g.relus]
    unst = [np.flatnonzero(d.rad.ravel() > 0) for d in derivs]
    total = sum(u.size for u in unst)
    if total > 10:
        return None, total
    best = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=total):
        masks, i = [], 0
        for d, u in zip(derivs, unst):
            m = d.mid.copy().ravel()
            m[u] = bits[i:i + u.size]
            i += u.size
            masks.append(m.reshape(d.mid.shape))
        best = max(best, float(np.linalg.norm(_masked_jacobian(net, masks), 2)))
    return best, total


def test_telescoped_bound_dominates_every_vertex_mask():
    """The telescoped Jacobian bound (and the generator bound) must dominate ||J(D)||_2 at every vertex of the Clarke
    product set (the exact sup over the set, enumerated) on random tiny residual nets; the same bound without its
    higher-order terms must fall below that sup on some net (the higher orders are real, so the check has teeth).
    Catches a tap taken after the midpoint mask, a missing residual path in the pull-back, a dev term dropped, the
    output ReLU's own derivative left out."""
    from boundlab.theory.local.graph import telescoped_bound
    from boundlab.theory.local.propagate import analyse

    rng = np.random.default_rng(derive_seed(0, "test.telescoped"))
    checked, caught = 0, 0
    for trial in range(60):
        kind = "dense" if trial % 3 else "conv"
        eps = float(rng.choice([0.02, 0.05, 0.1] if kind == "dense" else [0.005, 0.01, 0.02]))
        net, c = _tiny_residual(rng, kind, relu_out=trial % 4 == 1)
        region = Region.create(c, eps, "linf", None, None)
        prob = LocalProblem.create(net, region)
        g, out, _, _ = analyse(prob)
        sup, total = _vertex_sup(net, g)
        if sup is None or total == 0:
            continue
        checked += 1
        tele = telescoped_bound(g, out)
        cert = certify(prob)
        assert sup <= tele["value"] * (1 + 1e-9), (trial, sup, tele)
        assert sup <= (cert.jacobian_mid_norm + cert.generator_norm + cert.remainder_norm) * (1 + 1e-9), trial
        assert sup <= cert.value * (1 + 1e-9)
        caught += telescoped_bound(g, out, higher=False)["value"] < sup * (1 - 1e-9)
    assert checked >= 20 and caught > 0, (checked, caught)


# --------------------------------------------------------------------------- smooth layers: LayerNorm, telescoping
def test_layernorm_zonotope_encloses_sampled_tokens():
    """The LayerNorm transformer (centred input, mean of squares, the 1/sigma chord relaxation, the product, all in
    zonotope arithmetic) must enclose LN(x) for x drawn from the input zonotope *with the same symbols*:
    |LN(c + G e + d) - (c' + G' e)| <= r' for every drawn e (vertices and interior) and |d| <= r, and its boxes of
    1/sigma and y must contain theirs; the box term must be reached to within 3x on some entry (so a box term cut
    to a third is caught). Catches a dropped second-order term of the variance, the chord's end taken on the wrong
    side, a wrong closed-form minimum of the 1/sigma relaxation, the product's cross term dropped."""
    from boundlab.theory.local.propagate import Zonotope, _zlayernorm

    rng = np.random.default_rng(derive_seed(0, "test.layernorm_zonotope"))
    reach = 0.0
    for trial in range(40):
        n, d, m = 3, int(rng.integers(2, 6)), int(rng.integers(1, 6))
        c = rng.standard_normal((n, d)) * rng.choice([0.3, 1.0, 3.0])
        scale = rng.choice([0.01, 0.1, 0.5])
        G = rng.standard_normal((m, n, d)) * scale
        r = rng.random((n, d)) * scale * rng.choice([0.0, 0.5])
        gam, beta = 1 + 0.5 * rng.standard_normal(d), 0.3 * rng.standard_normal(d)
        eps = float(rng.choice([1e-5, 1e-2]))
        out, inv_box, y_box = _zlayernorm(TL.LayerNorm.create(gam, beta, eps), Zonotope(c, G, r))
        for s in range(300):
            e = rng.choice([-1.0, 1.0], m) if s % 2 else rng.uniform(-1, 1, m)
            x = c + np.tensordot(e, G, 1) + r * rng.choice([-1.0, 1.0], r.shape)   # (n, d)
            xc = x - x.mean(-1, keepdims=True)
            inv = 1 / np.sqrt((xc ** 2).mean(-1) + eps)                           # (n,)
            y = xc * inv[:, None]
            dev = np.abs(y * gam + beta - (out.c + np.tensordot(e, out.G, 1)))
            assert (dev <= out.r * (1 + 1e-9) + 1e-13).all(), (trial, s)
            assert (inv_box.lower <= inv).all() and (inv <= inv_box.upper).all(), trial
            assert (y_box.lower <= y).all() and (y <= y_box.upper).all(), trial
            reach = max(reach, float((dev / out.r).max()))
    assert reach > 1 / 3, reach


def _tiny_vit(rng):
    """Tokens (3, 3): embedding, a LayerNorm-attention residual, a LayerNorm-MLP residual (kinks near the centre),
    a final LayerNorm, mean pooling and a head."""
    from boundlab.theory.attention import AttentionWeights

    n, d = 3, 3
    c = rng.standard_normal((n, d))
    ln = lambda: TL.LayerNorm.create(1 + 0.3 * rng.standard_normal(d), 0.2 * rng.standard_normal(d), 1e-5)  # noqa: E731
    w = AttentionWeights.from_arrays(rng.standard_normal((1, d, d)), rng.standard_normal((1, d, d)),
                                     rng.standard_normal((1, d, d)), rng.standard_normal((1, d, d)) / 2)
    layers = [TL.TokenDense.create(rng.standard_normal((d, d)), 0.1 * rng.standard_normal(d)),
              TL.Residual.create([ln(), TL.Attention.create(w)]),
              TL.Residual.create([ln(), TL.TokenDense.create(rng.standard_normal((4, d)), 0.1 * rng.standard_normal(4)),
                                  TL.Relu.create(), TL.TokenDense.create(rng.standard_normal((d, 4)) / 2)]),
              ln(), TL.Mean.create("tokens"), TL.Dense.create(rng.standard_normal((2, d)))]
    return TL.Network.create((n, d), layers), c


def _graph_jacobian(g, out, factor):
    """The Jacobian of node ``out`` w.r.t. the input with the factor ``factor[node id]`` at every ReLU (a mask) and
    smooth node (a matrix in its Jacobian's layout), forward mode over the graph's nodes (not the telescope code),
    and the forward tangents at each uncertain node's input (for the ascent). Returns (J, {id: (n_in, *in)})."""
    n_in = int(np.prod(g.nodes[0].shape))
    val, at_in = {0: np.eye(n_in).reshape(n_in, *g.nodes[0].shape)}, {}
    for i, node in enumerate(g.nodes[1:out + 1], start=1):
        h = val[node.ins[0]]
        if node.kind == "lin":
            val[i] = node.lin.fwd(h)
        elif node.kind == "relu":
            at_in[i], val[i] = h, h * factor[i][None]
        elif node.kind == "smooth":
            at_in[i], val[i] = h, node.jac.mat_apply(factor[i], h)
        else:  # add
            val[i] = val[node.ins[0]] + val[node.ins[1]]
    return val[out].reshape(n_in, -1).T, at_in


def _graph_cotangents(g, out, factor, rows):
    """``rows`` (R, *out) pulled back to every uncertain node's output with the factors ``factor``."""
    cot, at_out = {out: rows}, {}
    for i in range(out, 0, -1):
        gi = cot.pop(i, None)
        if gi is None:
            continue
        node = g.nodes[i]
        if node.kind == "add":
            for j in node.ins:
                cot[j] = gi if j not in cot else cot[j] + gi
            continue
        if node.kind == "lin":
            nxt = node.lin.bwd(gi)
        elif node.kind == "relu":
            at_out[i], nxt = gi, gi * factor[i][None]
        else:
            at_out[i], nxt = gi, node.jac.mat_back(factor[i], gi)
        j = node.ins[0]
        cot[j] = nxt if j not in cot else cot[j] + nxt
    return at_out


def _jacobian_set_ascent(g, out, rng, starts=3, rounds=6):
    """A lower bound of sup ||J|| over the product set of the ReLU masks and the smooth layers' interval Jacobians:
    random vertices, then coordinate ascent on u^T J v (u, v the top singular pair) vertex by vertex."""
    unc = [i for i in g.uncertain if i <= out]
    best = 0.0
    for _ in range(starts):
        fac = {}
        for i in unc:
            node = g.nodes[i]
            box = node.deriv if node.kind == "relu" else node.jac.box
            fac[i] = box.mid + box.rad * rng.choice([-1.0, 1.0], box.mid.shape)
        for _ in range(rounds):
            J, at_in = _graph_jacobian(g, out, fac)
            U_, s, Vt = np.linalg.svd(J)
            best = max(best, float(s[0]))
            shape = g.nodes[out].shape
            lu = _graph_cotangents(g, out, fac, U_[:, 0].reshape(1, *shape))
            for i in unc:
                node = g.nodes[i]
                rv = np.tensordot(Vt[0], at_in[i], 1)            # R_k v at the node's input
                if node.kind == "relu":
                    grad = lu[i][0] * rv
                    box = node.deriv
                elif node.jac.kind == "dense":
                    grad = np.outer(lu[i][0].ravel(), rv.ravel())
                    box = node.jac.box
                else:                                              # per token: (n, d_out, d_in)
                    grad = lu[i][0][:, :, None] * rv[:, None, :]
                    box = node.jac.box
                fac[i] = box.mid + box.rad * np.where(grad >= 0, 1.0, -1.0)
    return best


def test_telescoped_bound_covers_smooth_layers():
    """With LayerNorm and attention as nodes of the telescoped bound (their interval Jacobians as uncertain
    factors), the bound must dominate ||J|| at every member of the product set that an ascent over its vertices
    finds, on random tiny ViTs at radii where ReLUs flip and softmax moves; and the same bound with the smooth
    layers' spread dropped (their Jacobians fixed at the midpoints), and the bound without its higher-order terms,
    must each fall below that on some net (both parts are real, so the check has teeth). Catches a smooth tap taken after the layer, its spread measured in
    the wrong norm, a level (the deviation of a smooth layer's input Jacobian) left out."""
    import copy

    from boundlab.theory.local.graph import telescoped_bound
    from boundlab.theory.local.interval import Box as B
    from boundlab.theory.local.propagate import _Abort, analyse

    rng = np.random.default_rng(derive_seed(0, "test.telescoped_smooth"))
    checked, caught, first_only = 0, 0, 0
    for trial in range(16):
        net, c = _tiny_vit(rng)
        prob = LocalProblem.create(net, Region.create(c, float(rng.choice([0.003, 0.01, 0.03])), "linf", None, None))
        try:
            g, out, _, _ = analyse(prob)
        except _Abort:  # the enclosure grew past use: nothing is certified there
            continue
        if not g.telescopable or not any(g.nodes[i].kind == "smooth" for i in g.uncertain):
            continue
        tele = telescoped_bound(g, out)["value"]
        sup = _jacobian_set_ascent(g, out, rng)
        assert sup <= tele * (1 + 1e-9), (trial, sup, tele)
        checked += 1
        g0 = copy.deepcopy(g)
        for node in g0.nodes:
            if node.kind == "smooth":
                node.jac.box = B(node.jac.box.mid, np.zeros_like(node.jac.box.rad))
        caught += telescoped_bound(g0, out)["value"] < sup * (1 - 1e-9)
        first_only += telescoped_bound(g, out, higher=False)["value"] < sup * (1 - 1e-9)
    assert checked >= 10 and caught > 0 and first_only > 0, (checked, caught, first_only)
