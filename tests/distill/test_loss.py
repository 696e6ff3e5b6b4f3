"""The distillation loss against values computed by hand and by numpy."""

import numpy as np
import pytest

from distill.loss import DistillationLoss
from edgekd.errors import EdgekdError


def _np_loss(y, t, s, alpha, temp):
    """Independent numpy reference of Hinton et al.'s loss."""
    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    ce = -np.log(softmax(s)[np.arange(len(y)), y])
    pt, ps = softmax(t / temp), softmax(s / temp)
    kl = np.sum(pt * np.log(pt / ps), axis=-1)
    return alpha * ce + (1 - alpha) * kl * temp ** 2


def test_hand_computed_values():
    # s = [0, ln 3] -> p_s = [1/4, 3/4]; t = [ln 3, 0] -> p_t = [3/4, 1/4]; label 0
    y = np.array([0])
    s = np.array([[0.0, np.log(3.0)]], np.float32)
    t = np.array([[np.log(3.0), 0.0]], np.float32)
    # T=1: CE = ln 4 = 1.386294, KL = 0.5 ln 3 = 0.549306
    ce, kl = DistillationLoss(alpha=0.5, temperature=1.0).parts(y, t, s)
    assert float(ce[0]) == pytest.approx(1.386294, abs=1e-5)
    assert float(kl[0]) == pytest.approx(0.549306, abs=1e-5)
    assert float(DistillationLoss(0.5, 1.0)(y, t, s)[0]) == pytest.approx(0.967800, abs=1e-5)
    # T=2: p = [0.366025, 0.633975] and reversed; KL = 0.267949 * ln(1.732051) = 0.147184; x T^2
    _, kl2 = DistillationLoss(alpha=0.1, temperature=2.0).parts(y, t, s)
    assert float(kl2[0]) == pytest.approx(4 * 0.147184, abs=1e-5)


@pytest.mark.parametrize("alpha,temp", [(0.1, 10.0), (0.5, 4.0), (1.0, 1.0), (0.0, 3.0)])
def test_matches_numpy_reference(alpha, temp):
    rng = np.random.default_rng(1234)
    y = rng.integers(0, 10, 64)
    t = rng.normal(0, 3, (64, 10)).astype(np.float32)
    s = rng.normal(0, 3, (64, 10)).astype(np.float32)
    got = np.asarray(DistillationLoss(alpha, temp)(y, t, s))
    np.testing.assert_allclose(got, _np_loss(y, t.astype(np.float64), s.astype(np.float64),
                                             alpha, temp), rtol=2e-5, atol=2e-5)


def test_identical_logits_leave_only_the_hard_loss():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    ce, kl = DistillationLoss(0.3, 7.0).parts(y, z, z)
    np.testing.assert_allclose(np.asarray(kl), 0.0, atol=1e-5)


@pytest.mark.parametrize("kwargs,msg", [({"alpha": 1.5}, "alpha must be in [0, 1], got 1.5"),
                                        ({"alpha": -0.1}, "alpha must be in [0, 1]"),
                                        ({"temperature": 0.0}, "temperature must be > 0, got 0.0"),
                                        ({"temperature": -2}, "temperature must be > 0")])
def test_invalid_hyperparameters(kwargs, msg):
    with pytest.raises(EdgekdError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        DistillationLoss(**kwargs)


def _np_mse(t, s):
    """Independent numpy reference: half the mean squared difference of centred logits."""
    c = lambda z: z - z.mean(-1, keepdims=True)  # noqa: E731
    return 0.5 * np.mean((c(s) - c(t)) ** 2, axis=-1)


def test_mse_hand_computed_and_numpy():
    # s = [1, 3] -> centred [-1, 1]; t = [0, 0] -> [0, 0]: 0.5 * mean(1, 1) = 0.5
    y = np.array([0])
    ce, soft = DistillationLoss(0.5, 4.0, "mse").parts(
        y, np.array([[0.0, 0.0]], np.float32), np.array([[1.0, 3.0]], np.float32))
    assert float(soft[0]) == pytest.approx(0.5, abs=1e-6)
    assert float(ce[0]) == pytest.approx(np.log(1 + np.exp(2.0)), abs=1e-5)
    rng = np.random.default_rng(7)
    t = rng.normal(0, 3, (32, 10)).astype(np.float32)
    s = rng.normal(0, 3, (32, 10)).astype(np.float32)
    _, got = DistillationLoss(0.1, 10.0, "mse").parts(rng.integers(0, 10, 32), t, s)
    np.testing.assert_allclose(np.asarray(got), _np_mse(t.astype(np.float64), s.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)
    # the logit offsets do not matter (softmax ignores them)
    _, shifted = DistillationLoss(0.1, 10.0, "mse").parts(y, t[:1] + 5.0, s[:1] - 2.0)
    assert float(shifted[0]) == pytest.approx(float(got[0]), rel=1e-5)


def test_mse_is_the_high_temperature_limit_of_the_kl():
    """Hinton et al.: T^2 KL tends to the logit-matching loss as T grows."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 16)
    t = rng.normal(0, 1, (16, 5))
    s = rng.normal(0, 1, (16, 5))
    kl = _np_loss(y, t, s, 0.0, 1000.0)  # alpha 0: the soft term alone, numpy, float64
    np.testing.assert_allclose(kl, _np_mse(t, s), rtol=2e-3)


def test_unknown_loss_is_named():
    with pytest.raises(EdgekdError, match="unknown distillation loss 'l1': use kl, mse, kl-std, dkd"):
        DistillationLoss(0.1, 4.0, "l1")


def test_dkd_by_hand():
    """Label 0, T = 1. Teacher [ln 3, 0, 0] -> [3/5, 1/5, 1/5], student uniform:
    TCKD = 0.6 ln(0.6 / (1/3)) + 0.4 ln(0.4 / (2/3)) = 0.148342, NCKD = 0 (the
    other classes split alike). Teacher [0, ln 3, 0] against student [0, 0, ln 3]:
    the same target share (1/5), so TCKD = 0; among the others [3/4, 1/4] against
    [1/4, 3/4]: NCKD = 0.5 ln 3 = 0.549306, weighted 8."""
    ln3 = np.log(3.0)
    y = np.array([0, 0])
    t = np.array([[ln3, 0, 0], [0, ln3, 0]], np.float32)
    s = np.array([[0, 0, 0], [0, 0, ln3]], np.float32)
    _, soft = DistillationLoss(0.5, 1.0, "dkd").parts(y, t, s)
    np.testing.assert_allclose(np.asarray(soft), [0.148342, 8 * 0.549306], atol=1e-5)
    # soft targets count by their largest class; T^2 scales both parts
    _, soft_y = DistillationLoss(0.5, 1.0, "dkd").parts(np.eye(3)[y] * 0.9 + 0.1 / 3, t, s)
    np.testing.assert_allclose(np.asarray(soft_y), np.asarray(soft), atol=1e-6)
    _, at2 = DistillationLoss(0.5, 2.0, "dkd").parts(y, 2 * t, 2 * s)
    np.testing.assert_allclose(np.asarray(at2), 4 * np.asarray(soft), atol=1e-4)


def test_kl_std_by_hand():
    """Standardized logits: a student at twice the teacher's scale matches it
    (plain kl does not); teacher [3, 1] -> [1, -1], student [0, 0] -> [0, 0]:
    KL(softmax([1, -1]) || [1/2, 1/2]) = 0.327817 at T = 1."""
    y = np.array([0])
    t = np.array([[1.0, -1.0]], np.float32)
    _, same = DistillationLoss(0.5, 1.0, "kl-std").parts(y, t, 2 * t)
    _, plain = DistillationLoss(0.5, 1.0, "kl").parts(y, t, 2 * t)
    assert float(same[0]) == pytest.approx(0.0, abs=1e-5) and float(plain[0]) > 0.05
    _, kl = DistillationLoss(0.5, 1.0, "kl-std").parts(y, np.array([[3.0, 1.0]], np.float32),
                                                       np.zeros((1, 2), np.float32))
    assert float(kl[0]) == pytest.approx(0.327817, abs=1e-5)


@pytest.mark.parametrize("kind", ["dkd", "kl-std"])
def test_each_loss_trains_a_student(tmp_path, kind):
    """Plumbing: --loss reaches the training step, which stays finite."""
    import json

    from distill.config import resolve
    from distill.run import run
    from tests.conftest import small_npz
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60)
    cfg = resolve("quick", data=str(data), teacher_arch="tiny_teacher", student_arch="tiny_student",
                  teacher_epochs=1, epochs=1, train_subset=None, calib_size=8, batch_size=32,
                  loss=kind, scratch=False)
    run(cfg, tmp_path / "art", verbose=0)
    report = json.loads((tmp_path / "art" / "train_report.json").read_text())
    assert report["config"]["loss"] == kind
    assert np.isfinite(report["models"]["student"]["accuracy"])
