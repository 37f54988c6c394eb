"""Learning-rate schedules, lookahead averaging and test-time augmentation."""
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.engine.lookahead import Lookahead
from cnnlab.engine.optim import build_schedule
from cnnlab.errors import CnnlabError
from cnnlab.tasks.classify import tta_logits


def _multipliers(name, total, warmup=0, **kw):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_schedule(opt, name, total, warmup, **kw)
    values = []
    for _ in range(total + 1):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def test_onecycle_is_a_triangle_with_the_given_ends():
    plain = _multipliers("onecycle", 100)
    assert (plain[0], plain[25], plain[100]) == (0.0, 1.0, 0.0)
    air = _multipliers("onecycle", 100, cycle=(0.2, 0.23, 0.07))
    assert air[0] == pytest.approx(0.2) and air[23] == pytest.approx(1.0) and air[100] == pytest.approx(0.07)
    assert max(air) == pytest.approx(1.0) and air.index(max(air)) == 23


def test_warmup_never_takes_more_than_half_the_run():
    """A one-epoch run with the default one-epoch warm-up used to climb all the way and end at the
    peak learning rate; the warm-up is now capped at half the steps, so both schedules come down."""
    one = _multipliers("onecycle", 20, warmup=20)
    assert one.index(max(one)) == 10 and one[20] == 0.0
    assert _multipliers("onecycle", 100, warmup=40)[40] == 1.0  # a warm-up within half the run: kept
    cos = _multipliers("cosine", 20, warmup=20)
    assert cos.index(max(cos)) == 10 and cos[20] == pytest.approx(0.0)


@pytest.mark.parametrize("cycle", [(0.2, 0.3), (2.0, 0.3, 0.0), ("a", 0.3, 0.0)])
def test_bad_cycle_names_the_key(cycle):
    with pytest.raises(CnnlabError, match="lr_cycle"):
        _multipliers("onecycle", 10, cycle=cycle)


def test_lookahead_pulls_weights_to_their_average_late_in_training():
    model = nn.Linear(2, 1, bias=False)
    la = Lookahead(model, total_steps=100, start=0.5, every=5, decay=0.9, power=0.0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    la.step(45)
    assert la.average is None  # before the start: nothing happens
    la.step(50)  # the first step after the start takes a snapshot
    with torch.no_grad():
        model.weight.fill_(3.0)
    la.step(53)  # not a multiple of every
    assert model.weight.eq(3.0).all()
    la.step(55)  # rho = 0.9**5: the weights move to 1 + (1 - rho) * 2
    rho = 0.9 ** 5
    torch.testing.assert_close(model.weight, torch.full((1, 2), 1 + (1 - rho) * 2))
    with torch.no_grad():
        model.weight.fill_(7.0)
    la.end_epoch()  # the weights become the average again
    torch.testing.assert_close(model.weight, torch.full((1, 2), 1 + (1 - rho) * 2))


def test_lookahead_leaves_a_frozen_encoder_alone():
    encoder = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).requires_grad_(False)
    model = nn.Sequential(encoder, nn.Flatten(), nn.Linear(4, 2), nn.BatchNorm1d(2))
    la = Lookahead(model, total_steps=10, start=0.0, every=1)
    assert set(la._tensors()) == {"2.weight", "2.bias", "3.weight", "3.bias", "3.running_mean", "3.running_var"}
    versions = [t._version for t in (*encoder.parameters(), *encoder.buffers())]
    for step in range(1, 4):
        la.step(step)
    la.end_epoch()
    assert [t._version for t in (*encoder.parameters(), *encoder.buffers())] == versions  # never written


def test_tta_mirror_averages_mirror_images_and_shift_adds_shifted_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).eval()
    x = torch.randn(5, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(tta_logits(model, x, True, False), 0.5 * (model(x) + model(x.flip(-1))))
        both = tta_logits(model, x, True, True)
        assert not torch.allclose(both, tta_logits(model, x, True, False))
        assert not torch.allclose(tta_logits(model, x, False, True), model(x))
        flat = torch.ones(2, 3, 6, 6)  # a flat image looks the same mirrored and shifted
        torch.testing.assert_close(tta_logits(model, flat, True, True), model(flat))


def test_evaluate_with_tta_uses_only_the_views_the_model_trained_with(tmp_path):
    run = cnnlab.train(data="digits", epochs=1, batch_size=64, plots=False, workers=0, out=str(tmp_path / "r"))
    plain = cnnlab.evaluate(run.out / "best.pt")
    m = cnnlab.evaluate(run.out / "best.pt", tta=2)  # trained without flip or translate: no views to add
    assert m["tta"] == 2 and m["tta_views"] == ["image"] and m["count"] == 360
    assert m["top1"] == plain["top1"]
    with pytest.raises(CnnlabError, match="--tta: expected 0"):
        cnnlab.evaluate(run.out / "best.pt", tta=3)
