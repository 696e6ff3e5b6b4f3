"""The default preset's recipe: student budgets (MACs by hand), exact crops,
the one-cycle schedule in closed form, the cached teacher views, config checks."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from distill import models
from distill.config import PRESETS, resolve
from distill.recipe import (
    OneCycle,
    augment_batch,
    augment_numpy,
    cache_views,
    cached_views,
    class_weights,
    make_optimizer,
    plan_views,
    student_epochs,
    student_schedule,
)
from distill.tfenv import keras, tf
from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing
from tests.conftest import FASHION_SMALL

SEED_STUDENT = (313_354, 10_043_392)


def test_default_student_macs_by_hand_and_within_the_tutorial_budget():
    # stride-2 stem 3->24 at 16x16; block 24@16x16 (two 3x3 convs); block 24->64
    # at 8x8 (3x3 s2, 3x3, 1x1 shortcut); block 64->128 at 4x4 (same); dense.
    expected = (16 * 16 * 27 * 24 + 2 * 16 * 16 * 216 * 24
                + 8 * 8 * 216 * 64 + 8 * 8 * 576 * 64 + 8 * 8 * 24 * 64
                + 4 * 4 * 576 * 128 + 4 * 4 * 1152 * 128 + 4 * 4 * 64 * 128 + 128 * 10)
    student = models.build(PRESETS["default"].student_arch, (32, 32, 3), 10)
    assert models.count_macs(student) == expected == 9_833_728
    assert student.count_params() <= SEED_STUDENT[0] and expected <= SEED_STUDENT[1]


@pytest.mark.parametrize("name", ["edge_res", "edge_res_mid", "edge_res_lite", "edge_res_small",
                                  "edge_sep"])
def test_zoo_students_fit_the_budget_and_have_batch_norm(name):
    m = models.build(name, (32, 32, 3), 10)
    assert m.count_params() <= SEED_STUDENT[0] and models.count_macs(m) <= SEED_STUDENT[1]
    assert any(isinstance(l, keras.layers.BatchNormalization) for l in m.layers)


def test_latency_student_macs_by_hand():
    # edge_res_lite: the default student's layout at widths 16-48-128 (as above)
    expected = (16 * 16 * 27 * 16 + 2 * 16 * 16 * 144 * 16
                + 8 * 8 * 144 * 48 + 8 * 8 * 432 * 48 + 8 * 8 * 16 * 48
                + 4 * 4 * 432 * 128 + 4 * 4 * 1152 * 128 + 4 * 4 * 48 * 128 + 128 * 10)
    m = models.build("edge_res_lite", (32, 32, 3), 10)
    assert models.count_macs(m) == expected == 6_452_480
    # edge_res_mid: widths 16-64-128
    expected = (16 * 16 * 27 * 16 + 2 * 16 * 16 * 144 * 16
                + 8 * 8 * 144 * 64 + 8 * 8 * 576 * 64 + 8 * 8 * 16 * 64
                + 4 * 4 * 576 * 128 + 4 * 4 * 1152 * 128 + 4 * 4 * 64 * 128 + 128 * 10)
    assert models.count_macs(models.build("edge_res_mid", (32, 32, 3), 10)) == expected == 7_976_192


def test_wide_teacher_is_the_student_4x_wider():
    # the earlier default teacher: the student's layout at widths 64-128-256 (by
    # hand, as above), 4x the params and ~5x the MACs, at the same resolutions
    expected = (16 * 16 * 27 * 64 + 2 * 16 * 16 * 576 * 64
                + 8 * 8 * 576 * 128 + 8 * 8 * 1152 * 128 + 8 * 8 * 64 * 128
                + 4 * 4 * 1152 * 256 + 4 * 4 * 2304 * 256 + 4 * 4 * 128 * 256 + 256 * 10)
    t = models.build("edge_res_wide", (32, 32, 3), 10)
    assert models.count_macs(t) == expected == 48_679_424
    assert t.count_params() == 1_230_282
    assert models.count_macs(models.build("edge_teacher", (32, 32, 3), 10)) == 49_120_512


def test_default_teacher_is_the_pooled_one_macs_by_hand():
    # edge_pool: 3->16 stem at 32x32; per stage a 3x3 conv at the input resolution,
    # 2x2 max-pool, then a 3x3 conv at the pooled one: 16->32 (32x32, 16x16),
    # 32->128 (16x16, 8x8), 128->128 (8x8, 4x4); global max-pool, dense
    expected = (32 * 32 * 27 * 16 + 32 * 32 * 144 * 32 + 16 * 16 * 288 * 32
                + 16 * 16 * 288 * 128 + 8 * 8 * 1152 * 128
                + 8 * 8 * 1152 * 128 + 4 * 4 * 1152 * 128 + 128 * 10)
    t = models.build(PRESETS["default"].teacher_arch, (32, 32, 3), 10)
    assert models.count_macs(t) == expected == 38_192_384
    assert t.count_params() == 497_146
    assert not any(isinstance(l, keras.layers.Add) for l in t.layers)
    wide = models.build("edge_pool_wide", (32, 32, 3), 10)
    assert (models.count_macs(wide), wide.count_params()) == (85_600_128, 1_115_506)
    # the pooled students: stem 8, widths 12-48-128 and 8-32-160 (same rule)
    def pooled_macs(stem, w1, w2, w3):
        return (32 * 32 * 27 * stem + 32 * 32 * 9 * stem * w1 + 16 * 16 * 9 * w1 * w1
                + 16 * 16 * 9 * w1 * w2 + 8 * 8 * 9 * w2 * w2
                + 8 * 8 * 9 * w2 * w3 + 4 * 4 * 9 * w3 * w3 + w3 * 10)
    assert pooled_macs(16, 32, 128, 128) == 38_192_384
    for name, widths in (("edge_pool_student", (8, 12, 48, 128)),
                         ("edge_pool_student_160", (8, 8, 32, 160))):
        m = models.build(name, (32, 32, 3), 10)
        assert models.count_macs(m) == pooled_macs(*widths) <= SEED_STUDENT[1]
        assert m.count_params() <= SEED_STUDENT[0]


def _crops_of(image: np.ndarray, pad: int) -> list[np.ndarray]:
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    h, w = image.shape[:2]
    out = []
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            crop = padded[oy:oy + h, ox:ox + w]
            out += [crop, crop[:, ::-1]]
    return out


@pytest.mark.parametrize("shape,pad", [((12, 10), 1), ((32, 32), 4), ((48, 64), 6)])
def test_augment_batch_gives_exact_padded_crops_or_their_mirror(shape, pad):
    """The padding scales with the image: an eighth of the shorter side."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, *shape, 3)).astype(np.float32)
    tf.random.set_seed(1)
    y = augment_batch(tf.constant(x)).numpy()
    assert y.shape == x.shape
    for orig, got in zip(x, y):
        assert any(np.array_equal(got, c) for c in _crops_of(orig, pad)), "not an exact crop"
    assert not all(np.array_equal(a, b) for a, b in zip(x, y))  # something moved


def test_augment_numpy_matches_the_same_rule_and_keeps_uint8():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 8, 8, 1), dtype=np.uint8)
    y = augment_numpy(x, np.random.default_rng(5))
    assert y.dtype == np.uint8 and y.shape == x.shape
    for orig, got in zip(x, y):
        assert any(np.array_equal(got, c) for c in _crops_of(orig, 1))  # 8 px: 1 px padding
    flips = sum(any(np.array_equal(got, c) for c in _crops_of(orig, 1)[1::2])
                and not any(np.array_equal(got, c) for c in _crops_of(orig, 1)[0::2])
                for orig, got in zip(x, y))
    assert 4 <= flips <= 28  # about half are mirrored


def test_one_cycle_closed_form():
    s = OneCycle(peak=0.1, total=100, warmup=10)
    lr = [float(s(i)) for i in (0, 5, 10, 55, 100, 120)]
    expected = [0.004, 0.1 * (0.04 + 0.96 * 0.5), 0.1, 0.05 * (1 + math.cos(math.pi * 0.5)),
                0.0, 0.0]
    np.testing.assert_allclose(lr, expected, atol=1e-7)
    assert OneCycle(**s.get_config()).get_config() == s.get_config()


def test_make_optimizer_kinds():
    sgd = make_optimizer("sgd", 0.1, "onecycle", 5e-3, 100, 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.weight_decay == 5e-3
    adam = make_optimizer("adam", 1e-3, "constant", 0.0, 100, 0)
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None


def _tiny_cache_inputs(n: int, seed: int, head: keras.layers.Layer):
    """n random 8x8 grey uint8 images, labels in 0..2, their preprocessing and a
    tiny seeded teacher (conv, then `head`, then 3 logits)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (n, 8, 8, 1), dtype=np.uint8)
    y = rng.integers(0, 3, n)
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), head,
                                keras.layers.Dense(3)])
    return x, y, Preprocessing(height=8, width=8, channels=1), teacher


def test_cached_views_hold_the_teachers_logits_for_the_images_they_yield():
    x, y, pre, teacher = _tiny_cache_inputs(40, 0, keras.layers.GlobalAveragePooling2D())
    ds = cached_views(x, y, teacher, pre, views=3, batch_size=16, seed=0)
    seen = 0
    for images, labels, logits in ds:
        np.testing.assert_allclose(logits.numpy(), teacher(images, training=False).numpy(),
                                   rtol=1e-4, atol=1e-5)
        for img, lab in zip(images.numpy(), labels.numpy()):  # the label follows its image
            k = next(i for i in range(40) if any(
                np.allclose(img, c.astype(np.float32) * pre.scale + pre.offset)
                for c in _crops_of(x[i], 1)))
            assert lab == y[k]
        seen += len(labels)
    assert seen == 40


def test_mirrored_cache_pairs_each_view_with_its_mirror_and_the_pair_averaged_logits():
    """With mirror, each yielded image carries (f(v) + f(flip v)) / 2, computed
    here by calling the teacher directly, and mirrored copies are yielded too;
    without augmentation the images are the originals, unmirrored."""
    x, y, pre, teacher = _tiny_cache_inputs(12, 1, keras.layers.Flatten())
    ds = cached_views(x, y, teacher, pre, views=2, batch_size=12, seed=0, mirror=True)
    seen = set()
    # Each pass shows one of 4 inputs per image (2 views, 2 mirrors); repeat()
    # redraws them per pass, as in training.
    for images, _, logits in ds.repeat(60):
        imgs = images.numpy()
        expected = (teacher(imgs, training=False).numpy()
                    + teacher(imgs[:, :, ::-1], training=False).numpy()) / 2
        np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)
        seen.update(img.tobytes() for img in imgs)
    # The Flatten head is not mirror-symmetric, so the average differs from f(v).
    assert np.abs(expected - teacher(imgs, training=False).numpy()).max() > 1e-3

    def mirror_of(b):
        return np.frombuffer(b, np.float32).reshape(8, 8, 1)[:, ::-1].tobytes()
    assert all(mirror_of(b) in seen for b in seen)  # every input's mirror was yielded too
    no_aug = cached_views(x, y, teacher, pre, views=2, batch_size=12, seed=0,
                          augment=False, mirror=True)
    images, _, logits = next(iter(no_aug))  # no augmentation: the images themselves, unmirrored
    np.testing.assert_allclose(logits.numpy(), teacher(images, training=False).numpy(),
                               rtol=1e-4, atol=1e-5)
    originals = {(c.astype(np.float32) * pre.scale + pre.offset).tobytes() for c in x}
    assert {img.tobytes() for img in images.numpy()} == originals


def test_blended_copies_carry_the_teachers_logits_on_the_blend_and_no_label():
    """mixed=2 on top of 1 unaugmented view: 3 copies per image; the blended
    ones are labelled -1, each is lam x_i + (1 - lam) x_j rounded for its own
    image i, some j and one lam in [0, 1], and the batches pair every image
    with the teacher's logits on that very image."""
    n = 30
    x, y, pre, teacher = _tiny_cache_inputs(n, 2, keras.layers.GlobalAveragePooling2D())
    views = cache_views(x, y, teacher, pre, views=1, seed=0, augment=False, mixed=2)
    assert views.copies == 3 and len(views.labels) == len(views.logits) == 3 * n
    np.testing.assert_array_equal(views.labels[:n], y)
    assert (views.labels[n:] == -1).all()
    a, xf = np.asarray(views.images, np.float32), x.astype(np.float32).reshape(n, -1)
    for k in (1, 2):
        for i in range(n):
            got = a[k * n + i].reshape(-1)
            fits = []
            for j in range(n):  # lam by least squares on got - x_j = lam (x_i - x_j)
                d = xf[i] - xf[j]
                lam = float(d @ (got - xf[j]) / max(d @ d, 1e-9))
                # rounding moves each pixel by <= 0.5, so the least-squares lam fits within 1
                fits.append(np.abs(lam * d + xf[j] - got).max() <= 1.0 and -0.01 <= lam <= 1.01)
            assert any(fits), (k, i)
    assert not np.array_equal(a[n:2 * n], a[2 * n:])  # two blends, not one repeated
    labels_seen = []
    for images, labels, logits in views.dataset(batch_size=16, seed=0).repeat(20):
        np.testing.assert_allclose(logits.numpy(), teacher(images, training=False).numpy(),
                                   rtol=1e-4, atol=1e-5)
        labels_seen += list(labels.numpy())
    # every draw picks one of the 3 copies: about a third labelled, two thirds not
    assert 0.2 < np.mean(np.array(labels_seen) >= 0) < 0.5


def test_class_weights_by_hand():
    y = np.array([0, 0, 0, 1, -1])  # 3 of class 0, 1 of class 1, one unlabeled
    assert class_weights(y, "uniform") is None
    # balanced: 1/3, 1/3, 1/3, 1, scaled to sum to the 4 labeled; the unlabeled one keeps 1
    np.testing.assert_allclose(class_weights(y, "balanced"), [2 / 3, 2 / 3, 2 / 3, 2, 1])
    w = class_weights(y, "sqrt")  # class shares 3 / sqrt(3) : 1 / sqrt(1) = sqrt(3) : 1
    np.testing.assert_allclose(w[:3].sum() / w[3], np.sqrt(3))
    np.testing.assert_allclose([w[:4].sum(), w[4]], [4, 1])


def test_balanced_sampling_draws_each_class_alike():
    """90 images of class 0 and 10 of class 1: uniform draws show class 1 a
    tenth of the time, balanced ones half (2,000 draws at a fixed seed)."""
    x, _, pre, teacher = _tiny_cache_inputs(100, 3, keras.layers.GlobalAveragePooling2D())
    y = np.array([0] * 90 + [1] * 10)
    views = cache_views(x, y, teacher, pre, views=1, seed=0, augment=False)

    def share(weights):
        tf.random.set_seed(5)
        labels = np.concatenate([b[1].numpy() for b in views.dataset(
            50, 0, weights=weights).repeat(20)])
        assert len(labels) == 2000  # an epoch stays 100 draws
        return labels.mean()
    assert share(None) == pytest.approx(0.1)
    assert share(class_weights(y, "balanced")) == pytest.approx(0.5, abs=0.04)
    assert share(class_weights(y, "sqrt")) == pytest.approx(0.25, abs=0.04)  # 10/sqrt(10) : 90/sqrt(90)


@pytest.mark.parametrize("views,mirror,epochs,n,image_bytes,limit,want,why", [
    # CIFAR-10 under the default recipe: 20 copies of 45,000 x 3,072 bytes fit 8 GiB.
    (10, True, 40, 45_000, 32 * 32 * 3, 8 << 30, 10, ""),
    # The same at 128 px: 2 x 45,000 x 49,152 bytes = 4.1 GiB per view, so 1 view.
    (10, True, 40, 45_000, 128 * 128 * 3, 8 << 30, 1, "cache limit of 8.0 GiB"),
    (10, True, 40, 45_000, 96 * 96 * 3, 8 << 30, 3, "cache limit"),  # 8 GiB / 2.32 GiB
    # 5 epochs draw at most 5 copies: 3 mirrored views (6 copies), not 10.
    (10, True, 5, 1000, 3072, 8 << 30, 3, "5 epoch(s) draw at most 5 copies"),
    (10, False, 4, 1000, 3072, 8 << 30, 4, "4 epoch(s)"),
    (2, False, 40, 1000, 3072, 8 << 30, 2, ""),
    (10, False, 40, 1, 1000, 3500, 3, "cache limit"),  # EDGEKD_CACHE_LIMIT=3500
    (10, True, 40, 1, 1000, 100, 1, "cache limit"),  # at least one view
])
def test_cache_plan_caps_views_by_epochs_and_bytes(monkeypatch, views, mirror, epochs, n,
                                                    image_bytes, limit, want, why):
    monkeypatch.setenv("EDGEKD_CACHE_LIMIT", str(limit))
    plan = plan_views(views, mirror, epochs, n, image_bytes)
    assert plan.views == want
    assert why in plan.reason and (plan.reason == "") == (why == "")


@pytest.mark.parametrize("views,mirror,epochs,limit,mixed,want,why", [
    (2, True, 40, 8 << 30, 4, (2, 4), ""),  # 8 copies of 40 draws, well within 8 GiB
    (10, True, 22, 8 << 30, 4, (10, 2), "2 blended copies, not 4"),  # 20 + 2 = 22 draws
    (10, True, 20, 8 << 30, 4, (10, 0), "0 blended copies, not 4"),
    (2, True, 40, 5 * 3072, 4, (2, 1), "1 blended copies, not 4"),  # 5 copies' bytes
    (10, True, 40, 5 * 3072, 4, (2, 1), "cache limit of"),  # the views come first
])
def test_cache_plan_gives_blended_copies_what_the_views_leave(monkeypatch, views, mirror, epochs,
                                                              limit, mixed, want, why):
    monkeypatch.setenv("EDGEKD_CACHE_LIMIT", str(limit))
    plan = plan_views(views, mirror, epochs, 1, 3072, mixed)
    assert (plan.views, plan.mixed) == want
    assert why in plan.reason and (plan.reason == "") == (why == "")


def test_cached_views_repeat_exactly_under_one_seed_and_vary_between_epochs():
    """The view each image shows is drawn in order (not inside the parallel
    map), so the same global seed gives the same batches, epoch after epoch;
    the draws still differ from one epoch to the next."""
    x, y, pre, teacher = _tiny_cache_inputs(64, 2, keras.layers.GlobalAveragePooling2D())

    def epochs():
        tf.random.set_seed(11)
        ds = cached_views(x, y, teacher, pre, views=4, batch_size=8, seed=0, mirror=True)
        return [np.concatenate([b[0].numpy().ravel() for b in ds]) for _ in range(3)]
    first, again = epochs(), epochs()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("overrides, msg", [
    ({"optimizer": "rmsprop"}, "optimizer must be adam or sgd, got 'rmsprop'"),
    ({"schedule": "step"}, "schedule must be constant or onecycle"),
    ({"weight_decay": -1.0}, "must be >= 0"),
    ({"teacher_cache_views": -2}, "must be >= 0"),
    ({"teacher_cache_views": 0, "teacher_cache_mirror": True},
     "teacher cache mirror needs cached views: add --teacher-cache-views N"),
    ({"teacher_cache_mix": -1}, "teacher cache mix must be >= 0 \\(blended copies per image\\), got -1"),
    ({"teacher_cache_views": 0, "teacher_cache_mix": 2},
     "teacher cache mix needs cached views: add --teacher-cache-views N"),
    ({"class_sampling": "even"}, "class sampling must be uniform, sqrt, balanced, got 'even'"),
    ({"teacher_cache_views": 0, "class_sampling": "sqrt"},
     "class sampling draws from the cached views: add --teacher-cache-views N"),
    ({"strategy": "tpu"}, "strategy must be default, mirrored or multiworker, got 'tpu'"),
    ({"min_steps": -1}, "min steps must be >= 0, got -1"),
])
def test_recipe_config_errors(overrides, msg):
    with pytest.raises(EdgekdError, match=msg):
        resolve("default", **overrides)


@pytest.mark.parametrize("epochs,min_steps,n,batch,want", [
    (40, 1600, 500, 128, 400),  # 4 steps an epoch: 400 epochs are 1,600 steps
    (40, 1600, 5_000, 128, 40),  # 40 steps an epoch: 40 epochs already are 1,600
    (40, 1600, 45_000, 128, 40),
    (40, 1600, 1_856, 128, 107),  # 15 steps an epoch; 106 would be 1,590
    (40, 0, 500, 128, 40),
    (5, 10, 100, 50, 5),
])
def test_student_epochs_reach_the_minimum_steps(epochs, min_steps, n, batch, want):
    assert student_epochs(epochs, min_steps, n, batch) == want


@pytest.mark.parametrize("epochs,min_steps,n,batch,small,want", [
    (40, 6400, 2_945, 128, 64, (137, 64)),  # 47 steps an epoch at 64: 136 would be 6,392
    (40, 6400, 186, 128, 64, (2134, 64)),  # 3 steps an epoch: 2,133 would be 6,399
    (40, 6400, 10_240, 128, 64, (40, 128)),  # 160 steps at 64: 40 epochs already are 6,400,
    # so not small: 40 epochs at 128 (min_steps counts the small-data batch's steps)
    (40, 6400, 10_176, 128, 64, (41, 64)),  # 159 at 64: 40 epochs are 6,360
    (40, 6400, 50_000, 128, 64, (40, 128)),  # CIFAR-10: as the preset says
    (40, 6400, 2_945, 128, 0, (267, 128)),  # no small-data batch: min_steps at 128
    (40, 0, 186, 128, 64, (40, 128)),  # no min_steps: nothing is small
])
def test_student_schedule_halves_the_batch_only_where_min_steps_binds(epochs, min_steps, n,
                                                                      batch, small, want):
    assert student_schedule(epochs, min_steps, n, batch, small) == want


def test_a_given_batch_size_is_every_phases():
    assert resolve("default", batch_size=32).small_data_batch_size == 0
    assert resolve("default", batch_size=32, small_data_batch_size=16).small_data_batch_size \
        == 16
    with pytest.raises(EdgekdError, match="small-data and student batch sizes must be >= 0 "
                       r"\(0: the batch size\), got -1, 0"):
        resolve("default", small_data_batch_size=-1)


def test_given_epochs_are_exact_unless_min_steps_is_given_too():
    assert (resolve("default").min_steps, resolve("latency").min_steps) == (12800, 12800)
    assert resolve("default").small_data_batch_size == 32
    assert resolve("seed").min_steps == 0  # the tutorial's 5 epochs, exactly
    assert resolve("default", epochs=4).min_steps == 0
    assert resolve("default", epochs=4, min_steps=100).min_steps == 100


def test_teacher_min_steps_raise_a_trained_teachers_epochs_only(capsys):
    from distill.run import _scaled_epochs
    cfg = resolve("default")  # 186 photos: 2 steps an epoch
    assert _scaled_epochs(cfg, 186).teacher_epochs == 150
    assert "18 teacher epochs of 186 images are only 36 steps: the teacher trains 150 " \
        "epochs (at least 300 steps" in capsys.readouterr().out
    assert _scaled_epochs(cfg, 5000).teacher_epochs == 18  # 40 steps an epoch: 720 already
    supplied = resolve("default", teacher_min_steps=300, teacher_path="t.keras")
    assert _scaled_epochs(supplied, 186).teacher_epochs == 18  # not trained here
    assert resolve("default").teacher_min_steps == 300 and resolve("seed").teacher_min_steps == 0
    assert resolve("default", teacher_epochs=4).teacher_min_steps == 0  # given epochs are exact


def test_seed_preset_keeps_the_tutorial_recipe():
    seed = PRESETS["seed"]
    assert (seed.optimizer, seed.schedule, seed.weight_decay, seed.augment,
            seed.teacher_cache_views, seed.teacher_cache_mirror, seed.strategy,
            seed.jit_compile) == ("adam", "constant", 0.0, False, 0, False, "default", False)
    assert (seed.temperature, seed.alpha, seed.epochs, seed.batch_size) == (10.0, 0.1, 5, 32)


def test_jit_compile_flag_overrides_the_preset():
    from distill.cli import parser
    assert PRESETS["default"].jit_compile is True
    for argv, want in (([], True), (["--no-jit-compile"], False), (["--jit-compile"], True)):
        args = vars(parser().parse_args(["--preset", "default", *argv]))
        assert resolve("default", jit_compile=args["jit_compile"]).jit_compile is want
    assert resolve("seed", jit_compile=True).jit_compile is True


def test_latency_preset_is_the_default_recipe_with_the_mid_student():
    # edge_res_mid's 7.98M MACs are checked by hand above; 55 epochs make up its
    # accuracy (docs/results/latency.md). Nothing else may drift from default.
    lat, dft = asdict(resolve("latency")), asdict(PRESETS["default"])
    assert {k: (dft[k], lat[k]) for k in dft if dft[k] != lat[k]} == {
        "preset": ("default", "latency"), "student_arch": ("edge_res", "edge_res_mid"),
        "epochs": (40, 55)}
    with pytest.raises(EdgekdError, match="valid presets: seed, quick, default, latency$"):
        resolve("fast")


def _three_steps(jit: bool, distill: bool) -> list[np.ndarray]:
    """Weights after 3 SGD steps from a fixed init on fixed data."""
    from distill.loss import DistillationLoss
    from distill.train import Distiller, compile_classifier
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 4, 48)
    t_logits = rng.normal(size=(48, 4)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 3),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    opt = make_optimizer("sgd", 0.05, "constant", 5e-3, 3, 0)
    if distill:
        trainer = Distiller(model, keras.models.clone_model(model), DistillationLoss(0.1, 4.0))
        trainer.compile(optimizer=opt, jit_compile=jit)
        data = tf.data.Dataset.from_tensor_slices((x, y, t_logits)).batch(16)
    else:
        trainer = compile_classifier(model, opt, jit)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    trainer.fit(data, epochs=1, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("distill", [False, True])
def test_xla_training_steps_match_the_plain_ones(distill):
    """jit_compile (the default preset) changes speed, not the math: the same
    three steps, with cached teacher logits or plain labels, give the same weights."""
    plain, xla = _three_steps(False, distill), _three_steps(True, distill)
    assert any(np.abs(w).sum() > 0 for w in plain)
    for a, b in zip(plain, xla):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_default_recipe_end_to_end_on_fashion_mnist(tmp_path):
    """The default preset's recipe (augmentation, one-cycle SGD, cached teacher
    views) with tiny models on 2,500 real images: it learns, and the report
    records the cache."""
    from distill.run import run
    cfg = resolve("default", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=2, epochs=4, train_subset=2500,
                  batch_size=64, learning_rate=0.01, calib_size=100, scratch=False,
                  teacher_cache_views=2)
    report = run(cfg, tmp_path / "out", verbose=0)
    assert report["teacher_cache_seconds"] > 0
    assert report["teacher_cache_copies"] == 4  # 2 views and their mirrors: 4 epochs use 4
    assert report["models"]["teacher"]["accuracy"] > 0.35  # chance: 0.1
    # A 4k-parameter student after 4 short epochs: well above chance (labels
    # misaligned with the cached views would leave it near 0.1).
    assert report["models"]["student"]["accuracy"] > 0.3
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["preset"], saved["optimizer"], saved["schedule"], saved["augment"],
            saved["teacher_cache_mirror"]) == ("default", "sgd", "onecycle", True, True)


def test_small_data_trains_the_students_to_the_minimum_steps(tmp_path, capsys):
    """100 images in batches of 50 are 2 steps an epoch: min_steps 10 makes the
    1 epoch asked for 5, for the distilled student and the scratch baseline,
    says so, and records the epochs run in config.json."""
    from distill.run import run
    cfg = resolve("default", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=1, epochs=1, min_steps=10,
                  train_subset=100, batch_size=50, calib_size=20, scratch=True,
                  teacher_cache_views=1)
    report = run(cfg, tmp_path / "out", verbose=0)
    assert len(report["models"]["teacher"]["epochs"]) == 1
    assert [len(report["models"][r]["epochs"]) for r in ("student", "student_scratch")] == [5, 5]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["epochs"] == 5
    assert ("1 epochs of 100 images are only 2 steps: the students train 5 epochs (at least 10 "
            "steps; --epochs N sets them exactly)") in capsys.readouterr().out


def test_small_data_batch_size_is_the_students_batch_not_the_teachers(tmp_path, capsys):
    """100 images: 2 steps an epoch in batches of 50 (the teacher's), 4 in the
    students' 25, so min_steps 12 makes their 1 epoch 3, distilled and
    scratch alike; Keras' per-epoch lines show each phase's steps."""
    from distill.run import run
    cfg = resolve("default", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=1, epochs=1, min_steps=12,
                  train_subset=100, batch_size=50, small_data_batch_size=25, calib_size=20,
                  scratch=True, teacher_cache_views=1)
    report = run(cfg, tmp_path / "out", verbose=2)
    out = capsys.readouterr().out
    assert ("1 epochs of 100 images are only 2 steps: the students train 3 epochs in batches "
            "of 25 (at least 12 steps") in out
    assert [len(report["models"][r]["epochs"]) for r in ("student", "student_scratch")] == [3, 3]
    steps = [line.split(" - ")[0] for line in out.splitlines() if line.startswith(("2/2 -", "4/4 -"))]
    assert steps == ["2/2"] + ["4/4"] * 6  # the teacher's epoch, then 3 + 3 of the students'
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["batch_size"], saved["student_batch_size"], saved["epochs"]) == (50, 25, 3)
