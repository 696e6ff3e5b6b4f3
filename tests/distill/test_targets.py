"""Soft hard-label targets (recipe.soft_targets): label smoothing and mixup,
checked element by element against numpy, through the loss and a training step."""

import json

import numpy as np
import pytest

from distill.config import resolve
from distill.loss import DistillationLoss
from distill.recipe import soft_targets
from distill.tfenv import keras, tf
from edgekd.errors import EdgekdError
from tests.conftest import FASHION_SMALL


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _batch(n=6, k=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4, 4, 2)).astype(np.float32)
    y = np.arange(n) % k
    t = (3 * rng.normal(size=(n, k))).astype(np.float32)
    return x, y, t


def test_label_smoothing_alone_smooths_one_hot_and_leaves_the_rest():
    x, y, t = _batch()
    ds = tf.data.Dataset.from_tensors((x, y, t))
    xs, ys, ts = next(iter(soft_targets(ds, 6, label_smoothing=0.3, temperature=4.0)))
    want = np.full((6, 6), 0.05, np.float32)
    want[np.arange(6), y] = 0.75  # 1 - 0.3 + 0.3 / 6
    np.testing.assert_allclose(ys.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(xs.numpy(), x)
    np.testing.assert_array_equal(ts.numpy(), t)
    plain = tf.data.Dataset.from_tensors((x, y))
    assert soft_targets(plain, 6) is plain  # both off: sparse labels, nothing mapped


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_mixup_blends_images_labels_and_teacher_probabilities_with_one_pair_each(eps):
    """Distinct classes per image, so each mixed label names its partner and lambda;
    then the images and the teacher's probabilities at T must be the same blend."""
    x, y, t = _batch()
    tf.random.set_seed(3)
    ds = soft_targets(tf.data.Dataset.from_tensors((x, y, t)).repeat(20), 6,
                      label_smoothing=eps, mixup=1.0, temperature=4.0)
    onehot = np.eye(6) * (1 - eps) + eps / 6
    p = _softmax(t / 4.0)
    mixed = 0
    for xs, ys, ts in ds:
        ys = ys.numpy()
        np.testing.assert_allclose(ys.sum(axis=1), 1.0, rtol=1e-5)
        lam, partner = None, np.arange(6)
        for i in range(6):
            others = [j for j in range(6) if j != i and ys[i, j] > eps / 6 + 1e-6]
            if others:  # paired with another image
                partner[i] = others[0]
                lam = (ys[i, i] - eps / 6) / (1 - eps)
        if lam is None:
            continue  # the permutation kept every image in place
        mixed += 1
        blend = lambda a: lam * a + (1 - lam) * a[partner]  # noqa: E731
        np.testing.assert_allclose(ys, blend(onehot), atol=1e-5)
        np.testing.assert_allclose(xs.numpy(), blend(x), atol=1e-5)
        np.testing.assert_allclose(_softmax(ts.numpy() / 4.0), blend(p), atol=1e-5)
    assert mixed >= 15


def test_mixup_lambda_follows_its_beta_distribution():
    """lambda ~ Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)), per batch."""
    x, y = np.zeros((2, 1, 1, 1), np.float32), np.array([0, 1])
    x[1] = 1.0  # image 0's mixed pixel is 1 - lambda when paired with image 1
    tf.random.set_seed(0)
    ds = soft_targets(tf.data.Dataset.from_tensors((x, y)).repeat(4000), 2, mixup=0.4)
    lams = np.array([ys.numpy()[0, 0] for _, ys in ds])
    lams = lams[np.abs(lams - 1) > 1e-7]  # drop batches the permutation left unpaired
    assert 1700 < len(lams) < 2300  # a random permutation of 2 swaps them half the time
    assert abs(lams.mean() - 0.5) < 0.03  # standard error ~0.008
    assert abs(lams.var() - 1 / (4 * 1.8)) < 0.012  # Beta(0.4, 0.4): 0.139; s.e. ~0.003


def test_loss_on_soft_targets_matches_numpy_and_sparse_on_one_hot():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    y = np.array([0, 3, 1, 2, 3])
    loss = DistillationLoss(alpha=0.3, temperature=2.0)
    sparse = loss(tf.constant(y), t, s).numpy()
    np.testing.assert_allclose(loss(tf.constant(np.eye(4, dtype=np.float32)[y]), t, s).numpy(),
                               sparse, rtol=1e-5)
    q = np.eye(4)[y] * 0.8 + 0.05  # smoothed, eps 0.2
    pt, ps = _softmax(t / 2), _softmax(s / 2)
    want = 0.3 * -(q * np.log(_softmax(s))).sum(1) + 0.7 * 4 * (pt * np.log(pt / ps)).sum(1)
    np.testing.assert_allclose(loss(tf.constant(q, tf.float32), t, s).numpy(), want, rtol=1e-4)


def _two_steps(soft: bool) -> list[np.ndarray]:
    from distill.recipe import make_optimizer
    from distill.train import compile_classifier
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(32, 4, 4, 2)).astype(np.float32), rng.integers(0, 3, 32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    compile_classifier(model, make_optimizer("sgd", 0.1, "constant", 0.0, 2, 0), False, soft)
    labels = np.eye(3, dtype=np.float32)[y] if soft else y
    hist = model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(16), verbose=0)
    assert hist.history["accuracy"][0] > 0  # the metric reads one-hot targets too
    return model.get_weights()


def test_classifier_on_one_hot_targets_trains_like_on_sparse_labels():
    for a, b in zip(_two_steps(False), _two_steps(True)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overrides, msg", [
    ({"label_smoothing": 1.0}, r"label smoothing must be in \[0, 1\), got 1.0"),
    ({"label_smoothing": -0.1}, r"label smoothing must be in \[0, 1\), got -0.1"),
    ({"mixup": -0.2}, r"mixup must be >= 0 \(the Beta concentration; 0: off\), got -0.2"),
])
def test_soft_target_config_errors(overrides, msg):
    with pytest.raises(EdgekdError, match=msg):
        resolve("default", **overrides)


def test_cli_flags_reach_the_config():
    from distill.cli import parser
    args = vars(parser().parse_args(["--label-smoothing", "0.1", "--mixup", "0.2"]))
    cfg = resolve("default", label_smoothing=args["label_smoothing"], mixup=args["mixup"])
    assert (cfg.label_smoothing, cfg.mixup) == (0.1, 0.2)
    assert (resolve("default").label_smoothing, resolve("default").mixup) == (0.0, 0.0)


def test_mixup_and_smoothing_end_to_end_on_fashion_mnist(tmp_path):
    """Teacher, cached distillation and scratch baseline all train on soft targets
    (the three paths that read them) and still learn: 63 to 68 % each in three seeds."""
    from distill.run import run
    cfg = resolve("default", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=3, epochs=4, train_subset=2500,
                  batch_size=64, learning_rate=0.05, calib_size=50, scratch=True,
                  teacher_cache_views=2, label_smoothing=0.1, mixup=0.2, jit_compile=False)
    report = run(cfg, tmp_path / "out", verbose=0)
    for role in ("teacher", "student", "student_scratch"):
        assert report["models"][role]["accuracy"] > 0.45, role  # chance: 0.1
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["label_smoothing"], saved["mixup"]) == (0.1, 0.2)
