"""Training: seeded, atomic checkpoints, exact resumption after a kill, clear errors; robustness attacks."""

import pytest
import torch

from boundlab.empirical import robustness as R
from boundlab.empirical.models import ModelConfig, build_model
from boundlab.empirical.training import CheckpointError, TrainConfig, evaluate_accuracy, fit, load_checkpoint


@pytest.fixture(autouse=True)
def _one_thread():
    """2 shared cores: torch's intra-op threads oversubscribe them (10x slower under load); restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = (0.5 + 0.3 * (y.float() - 1).view(-1, 1, 1, 1) + 0.05 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
    return x, y


def _model(name="conv", seed=0):
    return build_model(name, channels=1, image_size=8, num_classes=3, mean=(0.5,), std=(0.3,),
                       config=ModelConfig(width=4, depth=2, heads=2, patch=4), seed=seed)


CFG = TrainConfig("sgd", 0.05, "cosine", 3, 16, 5e-4, 0.9, seed=0)


class Killed(Exception):
    pass


@pytest.mark.parametrize("name", ["conv", "resnet"])  # resnet: BatchNorm running statistics must be restored too
def test_resume_after_kill_equals_uninterrupted(tmp_path, name):
    x, y = _data()
    ref = _model(name)
    out_ref = fit(ref, x, y, CFG, checkpoint=tmp_path / "ref.pt", run_hash="h", on_epoch=lambda m, e: {"epoch": e})

    def killer(m, e):
        if e == 2:
            raise Killed  # the process dies after epoch 2's training, before its checkpoint
        return {"epoch": e}

    m = _model(name)
    with pytest.raises(Killed):
        fit(m, x, y, CFG, checkpoint=tmp_path / "run.pt", run_hash="h", on_epoch=killer)
    assert load_checkpoint(tmp_path / "run.pt", "h")["epoch"] == 1
    m2 = _model(name, seed=5)  # different init: everything must come from the checkpoint
    out = fit(m2, x, y, CFG, checkpoint=tmp_path / "run.pt", resume=True, run_hash="h",
              on_epoch=lambda m, e: {"epoch": e})
    # a resume that restarts, skips an epoch, reshuffles differently or loses optimiser state breaks these
    assert [e["epoch"] for e in out["log"]] == [0, 1, 2, 3]
    assert out["train_loss"] == out_ref["train_loss"]
    sd, sr = m2.state_dict(), ref.state_dict()
    assert all(torch.equal(sd[k], sr[k]) for k in sr)


def test_training_learns_and_is_seeded(tmp_path):
    x, y = _data()
    a, b = _model(), _model()
    fa = fit(a, x, y, CFG)
    fit(b, x, y, CFG)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert fa["train_loss"][-1] < fa["train_loss"][1]  # a no-op optimiser step breaks this
    assert evaluate_accuracy(a, x, y) > 0.6


def test_corrupted_and_foreign_checkpoints(tmp_path):
    x, y = _data(32)
    ck = tmp_path / "c.pt"
    ck.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="c.pt"):
        fit(_model(), x, y, CFG, checkpoint=ck, resume=True, run_hash="h")
    fit(_model(), x, y, TrainConfig(epochs=1, batch_size=16), checkpoint=ck, run_hash="h")
    with pytest.raises(CheckpointError, match="another configuration"):
        load_checkpoint(ck, "other")
    with pytest.raises(CheckpointError, match="does not fit"):
        fit(_model("attn"), x, y, TrainConfig(epochs=1), checkpoint=ck, resume=True, run_hash="h")


def test_bad_train_config():
    with pytest.raises(R.InputError, match="optimizer"):
        TrainConfig(optimizer="lbfgs").validate()
    with pytest.raises(R.InputError, match="lr"):
        TrainConfig(lr=-1).validate()


def test_attacks_respect_budget_and_hurt():
    x, y = _data(64)
    m = _model()
    fit(m, x, y, TrainConfig("sgd", 0.05, "cosine", 10, 16, 5e-4, 0.9, seed=0))
    m.eval()
    # precondition: a model that learned (an untrained one predicts one class, and no attack can hurt it)
    assert evaluate_accuracy(m, x, y) >= 0.9
    eps = 0.1
    for adv in (R.fgsm(m, x, y, eps), R.pgd(m, x, y, eps, steps=5, seed=1)):
        assert float((adv - x).abs().max()) <= eps + 1e-6  # a missing projection breaks this
        assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    rep = R.robustness_report(m, x, y, R.RobustnessConfig(eps=(0.02, 0.3), noise_sigmas=(0.05,), pgd_steps=5))
    assert set(rep) == {"clean", "fgsm", "pgd", "noise"}
    # PGD (random start + FGSM-like steps) is at least roughly as strong as FGSM, and big budgets hurt
    assert rep["pgd"][R.eps_key(0.3)] <= rep["clean"]
    assert rep["pgd"][R.eps_key(0.3)] < rep["pgd"][R.eps_key(0.02)] or rep["pgd"][R.eps_key(0.02)] == 0
    assert all(p.requires_grad for p in m.parameters())  # the report restores gradients
    with pytest.raises(R.InputError, match="eps"):
        R.fgsm(m, x, y, 0.0)
