# edgekd: distill -> export -> bench. Every target creates .venv when missing.
# Variables: DATA (cifar10 | fashion_mnist | image folder | .npz), PRESET
# (default | latency | seed | quick), OUT (artifacts folder), TEACHER (bring your own),
# FORMATS (subset of the format table), THREADS, TARGET (remote board), IMAGE_SIZE
# (training size; default: the data's median shorter side, at most 128), UNLABELED
# (folders of unlabeled photos, space-separated: the student also learns the
# teacher's outputs on them, and a teacher trained here their pseudo-labels).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edgekd-installed

DATA    ?= cifar10
PRESET  ?= default
OUT     ?= artifacts
TEACHER ?=
FORMATS ?=
THREADS ?= 1,all
BENCH_ARGS ?=
TARGET ?=
DISTILL_ARGS ?=
IMAGE_SIZE ?=
UNLABELED ?=

distill_flags = --data "$(DATA)" --preset $(PRESET) --out "$(OUT)" $(foreach t,$(TEACHER),--teacher "$(t)") $(foreach u,$(UNLABELED),--unlabeled "$(u)") $(if $(IMAGE_SIZE),--image-size $(IMAGE_SIZE)) $(DISTILL_ARGS)
# A smoke run times each file for 1 s instead of 10 (benchmarks/quick_photos.py runs the same)
QUICK_BENCH_ARGS := --seconds 1 --runs 20
preset_bench_flags = $(if $(filter quick,$(PRESET)),$(QUICK_BENCH_ARGS))
format_flags  = $(if $(FORMATS),--formats $(FORMATS))

.PHONY: lint help venv edge-model distill distill-multiworker export bench report test test-extra test-all test-arm bench-seed bench-default bench-teachers bench-subsets bench-photos bench-latency bench-zoo bench-ablation bench-multiworker bench-overhead clean

help:
	@echo "make edge-model DATA=... [PRESET=default|latency|seed|quick] OUT=artifacts   distill + export + bench"
	@echo "make distill-multiworker WORKERS=2                          distill under MultiWorkerMirroredStrategy, local workers"
	@echo "make distill | export | bench                               one stage, same OUT"
	@echo "make test                                                   the default test suite"
	@echo "make bench-seed DATA=<cifar10-jpeg folder>                  the tutorial reproduction"

# Idempotent: reinstalls only when pyproject.toml changed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

edge-model: $(STAMP)
	$(PY) -m distill $(distill_flags)
	$(PY) -m export "$(OUT)" $(format_flags)
	$(PY) -m bench "$(OUT)" --threads $(THREADS) $(format_flags) $(preset_bench_flags) $(BENCH_ARGS)
	@echo "Report: $(OUT)/report.md, $(OUT)/report.png; every file: $(OUT)/manifest.json"

distill: $(STAMP)
	$(PY) -m distill $(distill_flags)

# N local workers with TF_CONFIG on free 127.0.0.1 ports (see README: clusters).
WORKERS ?= 2
MAX_RESTARTS ?= 1
distill-multiworker: $(STAMP)
	$(PY) -m distill.launch --workers $(WORKERS) --max-restarts $(MAX_RESTARTS) -- $(distill_flags)

export: $(STAMP)
	$(PY) -m export "$(OUT)" $(format_flags)

bench: $(STAMP)
	$(PY) -m bench "$(OUT)" --threads $(THREADS) $(format_flags) $(foreach t,$(TARGET),--target $(t)) $(BENCH_ARGS)

# The one generator of published numbers: docs/results/ and README's presets
# table, from benchmarks/results/ (SEED=, SEED_XEON=, DEFAULT=, LATENCY= save a run first).
SEED ?=
SEED_XEON ?=
DEFAULT ?=
LATENCY ?=
report: $(STAMP)
	$(PY) -m benchmarks.report $(if $(SEED),--seed "$(SEED)") $(if $(SEED_XEON),--seed-xeon "$(SEED_XEON)") $(if $(DEFAULT),--default "$(DEFAULT)") $(if $(LATENCY),--latency "$(LATENCY)")

# Lint (ruff) and type check (mypy on the TF-free edgekd/ and bench/), then the suite.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q -rs --durations=15

# Tests that need what a fresh machine lacks (apt's Fashion-MNIST, ../shared's
# CIFAR-10 copy, an sshd: .ci/run installs them), and the slow end-to-end runs.
test-extra: $(STAMP)
	$(PY) -m pytest -q -rs --durations=15 -m "data or ssh or slow"

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The tutorial reproduction (about an hour on 2 cores); saved as benchmarks/results/seed/, published in docs/results/seed.md.
bench-seed: $(STAMP)
	$(PY) -m benchmarks.seed_table --data "$(DATA)" --out "$(OUT)-seed"
	$(PY) -m benchmarks.report --seed "$(OUT)-seed"

# The default preset end to end (timed as users run it), then the scratch
# baseline added after it, both students re-exported and benched, and the table
# beside the seed run's (docs/results/default.md and the README; needs a
# bench-seed run saved).
bench-default: $(STAMP)
	$(MAKE) edge-model PRESET=default OUT="$(OUT)-default" DATA="$(DATA)"
	$(PY) -m benchmarks.add_scratch "$(OUT)-default"
	$(PY) -m export "$(OUT)-default" --roles teacher,student,student_scratch
	$(PY) -m bench "$(OUT)-default" --threads $(THREADS)
	$(PY) -m benchmarks.report --default "$(OUT)-default"

# What each recipe element contributes, and the T x alpha sweep (a subset,
# with the default run's teacher): benchmarks/results/ablation/, docs/results/ablation.md.
bench-ablation: $(STAMP)
	$(PY) -m benchmarks.default_ablation --data "$(DATA)" --teacher "$(OUT)-default/teacher.keras"

# The latency preset's student (edge_res_mid, 55 epochs) distilled from the default
# run's teacher, then its int8 against the tutorial teacher's fp32:
# benchmarks/results/latency_vs_seed/table.md (committed runs, from before the latency preset, with
# edge_res_lite: latency_vs_seed_epyc.md, AVX2 only; latency_vs_seed_xeon.md, VNNI/AMX).
bench-latency: $(STAMP)
	$(MAKE) edge-model PRESET=latency OUT="$(OUT)-latency" DATA="$(DATA)" TEACHER="$(OUT)-default/teacher.keras" THREADS=1
	$(PY) -m benchmarks.latency_vs_seed --tflite "edge_res_mid int8, trained=$(OUT)-latency/student_int8.tflite"

# A teacher from scratch against a fine-tuned ImageNet MobileNet on ../shared's
# Sign Language Digits photos, and the fine-tuning rate of the pretrained one:
# benchmarks/results/sign_digits|fine_tune/table.md.
bench-teachers: $(STAMP)
	$(PY) -m benchmarks.sign_digits
	$(PY) -m benchmarks.fine_tune

# Student on 10 % and 1 % of CIFAR-10, distilled from a full-data teacher vs from scratch
# (DATA= the unpacked cifar10-jpeg folder): benchmarks/results/subsets/table.md.
bench-subsets: $(STAMP)
	$(PY) -m benchmarks.subsets --data "$(DATA)"

# Photos at edge resolutions: sign-digits at 64 and 96 px (recommended photo command), peak
# memory on 50,000 generated photos at 128 px, the student stems' training cost per MAC, and
# --student-ms's picks against their measured latency:
# benchmarks/results/photos|photo_memory|stems|latency_budget/.
bench-photos: $(STAMP)
	$(PY) -m benchmarks.photos
	$(PY) -m benchmarks.photo_memory
	$(PY) -m benchmarks.stems
	$(PY) -m benchmarks.latency_budget

# Training and inference img/s of the zoo, with and without XLA: benchmarks/results/zoo_throughput/table.md.
bench-zoo: $(STAMP)
	$(PY) -m benchmarks.zoo_throughput

# 1 process vs WORKERS local workers: benchmarks/results/multiworker/table.md.
bench-multiworker: $(STAMP)
	$(PY) -m benchmarks.multiworker --data "$(DATA)" --workers $(WORKERS)

# Harness overhead: bench's p50 against a bare invoke() loop.
bench-overhead: $(STAMP)
	$(PY) -m benchmarks.harness_overhead "$(OUT)"

clean:
	rm -rf .pytest_cache build *.egg-info

# Emulated aarch64 tests (QEMU user mode; builds the sysroot on first use).
test-arm: $(STAMP)
	$(PY) -m pytest -q -m arm -s
