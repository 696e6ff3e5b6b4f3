"""The one place for role names: which models an artifacts folder holds, the
file each is saved in, which are quantization-aware, and which export makes
by default. distill, export, bench and the benchmarks read them from here."""

from __future__ import annotations

from dataclasses import dataclass

from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class Role:
    name: str
    qat: bool = False  # a quantization-aware model: exported to the QAT formats only
    always: bool = False  # every distill run makes it (others only when asked)
    exported_by_default: bool = True
    # a reference never deployed (the teacher): its artifacts are checked and their
    # parity recorded like any, but one that fails its gate does not fail the export
    reference: bool = False

    @property
    def model_file(self) -> str:
        # QAT models do not round-trip through .keras in tf_keras 2.21; .h5 does
        return f"{self.name}.h5" if self.qat else f"{self.name}.keras"


ROLES: dict[str, Role] = {r.name: r for r in (
    # absent when the supplied teacher is no tf_keras model (an ONNX file...)
    Role("teacher", reference=True),
    Role("student", always=True),
    Role("student_scratch", exported_by_default=False),  # the baseline, on request
    Role("student_pruned"),
    Role("student_qat", qat=True),
    Role("student_pruned_qat", qat=True),
)}
TEACHER, STUDENT, SCRATCH = "teacher", "student", "student_scratch"
QAT_ROLES = tuple(n for n, r in ROLES.items() if r.qat)
DEFAULT_EXPORT = tuple(n for n, r in ROLES.items() if r.exported_by_default)


def model_file(role: str) -> str:
    return ROLES[role].model_file


def is_distilled_student(role: str) -> bool:
    """A student taught by the teacher (float, pruned or QAT): a deployment
    candidate. The scratch baseline is a student but no candidate."""
    return role.startswith(STUDENT) and role != SCRATCH


def parse_roles(spec: str | None) -> list[str]:
    """'teacher,student' -> role names; None -> the default export roles."""
    if not spec:
        return list(DEFAULT_EXPORT)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in ROLES]
    if bad or not names:
        raise EdgekdError(f"unknown role(s) {bad}: use {', '.join(ROLES)}")
    return names
