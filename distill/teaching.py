"""The teacher of a run: the supplied file(s), evaluated and not trained, or
one trained here: from scratch (the preset's recipe), or a pretrained
backbone fine-tuned (distill.pretrained), then, with unlabeled photos and
`--pseudo-label-threshold`, fine-tuned further on the ones it is sure of
(distill.pseudo)."""

from __future__ import annotations

from dataclasses import replace

from distill import models, pretrained, pseudo, teachers
from distill.phases import Phase, Session, augmented_batches
from distill.train import accuracy
from edgekd.preprocess import spread_indices
from edgekd.roles import TEACHER


def teacher(session: Session, extra) -> tuple[teachers.Teacher, dict]:
    """(the teacher, its train_report record's extra fields)."""
    cfg, ds, pre = session.cfg, session.ds, session.ds.preprocessing
    if cfg.teachers:
        idx = spread_indices(len(ds.y_train), teachers.SAMPLE)
        supplied = teachers.load(cfg.teachers, pre, ds.labels, cfg.teacher_scale,
                                 cfg.teacher_offset, cfg.trust_model_code, cfg.teacher_output,
                                 sample=(ds.x_train[idx], ds.y_train[idx]))
        return supplied, {"trained": False, "epochs": [], **supplied.record()}
    relabel = cfg.pseudo_label_threshold is not None and extra is not None
    train = _fine_tuned if cfg.teacher_arch in pretrained.BACKBONES else _from_scratch
    last, model, info = train(session, pseudo.STAGE if relabel else TEACHER)
    if relabel:
        model, info = _pseudo_labeled(session, last, model, extra, info)
    return teachers.from_keras(model, pre, info["source"]), info


def _stage(phase: Phase) -> Phase:
    """`phase` as it trains: a first stage saves under its own name."""
    return phase if phase.role == TEACHER else replace(phase, save_as=f"{phase.role}.keras")


def _from_scratch(session: Session, role: str):
    cfg, ds = session.cfg, session.ds
    phase = _stage(Phase(
        role, lambda: models.build(cfg.teacher_arch, ds.preprocessing.input_shape,
                                   len(ds.labels)), False,
        cfg.teacher_epochs, cfg.learning_rate, seed_offset=0))
    model, log = session.train(phase)
    return phase, model, {"trained": True, "epochs": log, "source": "trained"}


def _fine_tuned(session: Session, role: str):
    """A pretrained backbone: its new head first (a third of the teacher epochs,
    backbone frozen), then the head with the backbone's top layers (or all:
    cfg.teacher_fine_tune), both with Adam (pretrained.HEAD_LR, then
    cfg.teacher_fine_tune_lr), not the preset's SGD: SGD at the default
    preset's 0.1 blew the head's logits up, and the thawed backbone then
    collapsed to chance (sign-digits photos, docs/results/sign_digits.md)."""
    cfg, ds, pre = session.cfg, session.ds, session.ds.preprocessing
    head_epochs = pretrained.head_epochs(cfg.teacher_epochs)
    head, head_log = session.train(Phase(
        "teacher_head", lambda: pretrained.build(cfg.teacher_arch, pre.input_shape,
                                                 len(ds.labels), cfg.teacher_weights,
                                                 cfg.teacher_size),
        False, head_epochs, pretrained.HEAD_LR, schedule="constant", optimizer="adam",
        weight_decay=0.0, seed_offset=0, save_as="teacher_head.keras"))

    def thawed():
        pretrained.thaw(head, cfg.teacher_fine_tune)
        return head
    phase = _stage(Phase(
        role, thawed, False, cfg.teacher_epochs - head_epochs, cfg.teacher_fine_tune_lr,
        schedule="onecycle", optimizer="adam", weight_decay=0.0, seed_offset=0))
    model, log = session.train(phase)
    return phase, model, {"trained": True, "epochs": head_log + log,
                          "source": f"{cfg.teacher_arch}, weights {cfg.teacher_weights or 'imagenet'}"}


def _pseudo_labeled(session: Session, last: Phase, model, extra, info: dict):
    """The teacher trained on the labeled photos, fine-tuned on them and the
    unlabeled ones it gives at least the threshold (distill.pseudo), once per
    round, each round's teacher labelling the photos again."""
    n = session.cfg.pseudo_label_rounds
    rounds, log = [], list(info["epochs"])
    for r in range(1, n + 1):
        role = TEACHER if r == n else pseudo.round_stage(r)
        model, labels, more = _pseudo_round(session, last, model, extra, role)
        rounds.append(labels)
        log += more
        if not len(labels.rows):
            print("[distill] no unlabeled photo reaches the threshold: the teacher stays as it is",
                  flush=True)
            break
    return model, {**info, "epochs": log,
                   "pseudo_labels": pseudo.record(rounds, len(session.ds.labels))}


def _pseudo_round(session: Session, last: Phase, model, extra, role: str):
    """(the teacher after one round, the labels it learnt, its epoch log)."""
    cfg, ds, pre = session.cfg, session.ds, session.ds.preprocessing
    before = accuracy(model, ds.x_test, ds.y_test, pre)
    labels = pseudo.confident(teachers.from_keras(model, pre, "labeled"), extra.x,
                              cfg.pseudo_label_threshold, before)
    print(f"[distill] pseudo-labels: {len(labels.rows)} of {labels.of} unlabeled photos at "
          f"p >= {cfg.pseudo_label_threshold} (the teacher labelling them: {before:.2%})",
          flush=True)
    if not len(labels.rows):
        return model, labels, []
    x_tr, y_tr = session.data.labeled
    x, y = pseudo.joined(x_tr, y_tr, extra.x, labels, ds.store_dir, f"{role}_images.u8")
    data = augmented_batches(cfg, x, y, pre, len(ds.labels), cfg.batch_size)
    model, log = session.train(_stage(pseudo.phase(last, model, data, len(x_tr), len(x),
                                                   cfg.batch_size, role)))
    return model, labels, log


# a trained teacher's earlier stages: no role, not in the artifacts
STAGE_FILES = ("teacher_head.keras", f"{pseudo.STAGE}.keras", f"{pseudo.ROUND}*.keras")
