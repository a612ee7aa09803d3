"""Models: probed layer outputs and certified network bounds that no measured local constant may exceed."""

import math

import pytest
import torch

from boundlab.empirical.lipschitz import local_lipschitz
from boundlab.empirical.models import MODELS, ModelConfig, build_model, certified_bounds
from boundlab.theory.validate import InputError

CFG = ModelConfig(width=8, depth=2, heads=2, patch=4, mlp_ratio=2)
MEAN, STD = (0.3,), (0.3,)


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: torch's intra-op threads oversubscribe them (10x slower under load); restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def _model(name, seed=0, size=8):
    return build_model(name, channels=1, image_size=size, num_classes=10, mean=MEAN, std=STD, config=CFG, seed=seed)


@pytest.mark.parametrize("name", MODELS)
def test_layer_outputs_and_forward(name):
    m = _model(name).eval()
    x = torch.rand(3, 1, 8, 8)
    outs = m.layer_outputs(x)
    assert len(outs) == len(m.layer_names()) == len(m.block_bounds()) + 1
    assert outs[0] is x and outs[-1].shape == (3, 10)
    assert torch.allclose(m(x), outs[-1])
    # per-sample independence in eval mode (a batch-mixing layer would break the point-cloud semantics)
    assert torch.allclose(m.layer_outputs(x[1:2])[-2], outs[-2][1:2], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_seeded_initialisation(name):
    a, b, c = _model(name, 1), _model(name, 1), _model(name, 2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", MODELS)
def test_certified_bound_dominates_local_constants(name):
    """Lower bounds (power iteration on J^T J at points of the pixel box, in float64) must stay below the
    certified bounds, for the network and for every block. A wrong conv padding/stride bound, a missing shortcut
    branch, a wrong attention weight layout or a missing normalisation factor breaks this."""
    torch.manual_seed(0)
    m = _model(name).double().eval()
    if name == "resnet":  # non-trivial BatchNorm statistics, so the eval-mode bound is exercised
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_var.uniform_(0.2, 2.0)
                mod.weight.data.uniform_(0.5, 1.5)
    # scale attention logits up so the softmax is not near-uniform (a too-small attention bound would show)
    for mod in m.modules():
        if hasattr(mod, "q") and isinstance(mod.q, torch.nn.Linear):
            mod.q.weight.data *= 4
    cb = certified_bounds(m)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    lower = local_lipschitz(lambda z: m(z), x, max_iter=40).sigma.max()
    assert 0 < lower <= cb["network"]
    assert cb["network"] <= math.prod(cb["blocks"]) * (1 + 1e-9)
    outs = m.layer_outputs(x)
    for l in range(1, len(outs)):
        def block(z, l=l):
            # the map from output l-1 to output l, via a hook-free re-run: feed z where output l-1 was
            return _block_forward(m, l, z)
        z = outs[l - 1].detach()
        lb = local_lipschitz(block, z, max_iter=30).sigma.max()
        assert lb <= cb["blocks"][l - 1] * (1 + 1e-9), (name, l, lb, cb["blocks"][l - 1])


def _block_forward(m, l, z):
    """Apply probed block l of model m to a batch z of outputs l-1 (mirrors each model's layer_outputs)."""
    name = m.name
    last = len(m.layer_names()) - 1
    if l == 1:
        if name in ("attn", "vit"):
            return m.embed(m.norm_in(z))
        if name == "conv":
            return torch.relu(m.convs[0](m.norm_in(z)))
        return torch.relu(m.bn(m.stem(m.norm_in(z))))
    if l == last:
        if name == "attn":
            return m.head(z.mean(dim=1))
        if name == "vit":
            return m.head(m.ln(z).mean(dim=1))
        return m.head(z.mean(dim=(2, 3)))
    if name == "attn":
        return m.layers[l - 2](z)
    if name == "vit":
        return m.blocks[l - 2](z)
    if name == "conv":
        return torch.relu(m.convs[l - 1](z))
    return m.blocks[l - 2](z)


def test_bad_model_input():
    with pytest.raises(InputError, match="model"):
        build_model("mlp", channels=1, image_size=8, num_classes=10, mean=MEAN, std=STD)
    with pytest.raises(InputError, match="patch"):
        build_model("attn", channels=1, image_size=10, num_classes=10, mean=MEAN, std=STD, config=CFG)
    with pytest.raises(InputError, match="heads"):
        build_model("vit", channels=1, image_size=8, num_classes=10, mean=MEAN, std=STD,
                    config=ModelConfig(width=9, heads=2, patch=4))
    with pytest.raises(InputError, match="width"):
        build_model("conv", channels=1, image_size=8, num_classes=10, mean=MEAN, std=STD,
                    config=ModelConfig(width=0))
