# edgekd: distill -> export -> bench. Every target creates .venv when missing.
# Variables: DATA (cifar10 | fashion_mnist | image folder | .npz), PRESET
# (seed | quick | default), OUT (artifacts folder), TEACHER (bring your own),
# FORMATS (subset of the format table), THREADS, TARGET (remote board).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edgekd-installed

DATA    ?= cifar10
PRESET  ?= seed
OUT     ?= artifacts
TEACHER ?=
FORMATS ?=
THREADS ?= 1,all
BENCH_ARGS ?=
TARGET ?=
DISTILL_ARGS ?=

distill_flags = --data "$(DATA)" --preset $(PRESET) --out "$(OUT)" $(if $(TEACHER),--teacher "$(TEACHER)") $(DISTILL_ARGS)
format_flags  = $(if $(FORMATS),--formats $(FORMATS))

.PHONY: help venv edge-model distill distill-multiworker export bench report test test-all test-arm bench-seed bench-default bench-latency bench-zoo bench-ablation bench-multiworker bench-overhead clean

help:
	@echo "make edge-model DATA=... PRESET=seed|quick|default|latency OUT=artifacts   distill + export + bench"
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
	$(PY) -m bench "$(OUT)" --threads $(THREADS) $(format_flags) $(BENCH_ARGS)
	@echo; echo "Deployable files in $(OUT)/:"; ls -1 "$(OUT)"/*.tflite "$(OUT)"/*.onnx
	@echo "Report: $(OUT)/report.md, $(OUT)/report.png; manifest: $(OUT)/manifest.json"

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

# Regenerate the README's result tables from bench.json / train_report.json.
SEED ?=
DEFAULT ?=
report: $(STAMP)
	$(PY) benchmarks/readme_tables.py $(if $(SEED),--seed "$(SEED)") $(if $(SEED_XEON),--seed-xeon "$(SEED_XEON)") $(if $(DEFAULT),--default "$(DEFAULT)")

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The tutorial reproduction (about an hour on 2 cores); writes benchmarks/seed_table.md.
bench-seed: $(STAMP)
	$(PY) benchmarks/seed_table.py --data "$(DATA)" --out "$(OUT)-seed"
	$(PY) benchmarks/readme_tables.py --seed "$(OUT)-seed"

# The default preset end to end (timed as users run it), then the scratch
# baseline added after it, both students re-exported and benched, and the table
# beside the seed run's (benchmarks/default_table.md and the README; needs a
# bench-seed run saved).
bench-default: $(STAMP)
	$(MAKE) edge-model PRESET=default OUT="$(OUT)-default" DATA="$(DATA)"
	$(PY) benchmarks/add_scratch.py "$(OUT)-default"
	$(PY) -m export "$(OUT)-default" --roles teacher,student,student_scratch
	$(PY) -m bench "$(OUT)-default" --threads $(THREADS)
	$(PY) benchmarks/readme_tables.py --default "$(OUT)-default"

# What each recipe element contributes, and the T x alpha sweep (a subset,
# with the default run's teacher): benchmarks/default_ablation.md.
bench-ablation: $(STAMP)
	$(PY) benchmarks/default_ablation.py --data "$(DATA)" --teacher "$(OUT)-default/teacher.keras"

# The latency preset's student (edge_res_mid, 55 epochs) distilled from the default
# run's teacher, then its int8 against the tutorial teacher's fp32:
# benchmarks/latency_vs_seed.md (committed runs, from before the latency preset, with
# edge_res_lite: latency_vs_seed_epyc.md, AVX2 only; latency_vs_seed_xeon.md, VNNI/AMX).
bench-latency: $(STAMP)
	$(MAKE) edge-model PRESET=latency OUT="$(OUT)-latency" DATA="$(DATA)" TEACHER="$(OUT)-default/teacher.keras" THREADS=1
	$(PY) benchmarks/latency_vs_seed.py --tflite "edge_res_mid int8, trained=$(OUT)-latency/student_int8.tflite"

# Training and inference img/s of the zoo, with and without XLA: benchmarks/zoo_throughput.md.
bench-zoo: $(STAMP)
	$(PY) benchmarks/zoo_throughput.py

# 1 process vs WORKERS local workers: benchmarks/multiworker.md.
bench-multiworker: $(STAMP)
	$(PY) benchmarks/multiworker.py --data "$(DATA)" --workers $(WORKERS)

# Harness overhead: bench's p50 against a bare invoke() loop.
bench-overhead: $(STAMP)
	$(PY) benchmarks/harness_overhead.py "$(OUT)"

clean:
	rm -rf .pytest_cache build *.egg-info

# Emulated aarch64 tests (QEMU user mode; builds the sysroot on first use).
test-arm: $(STAMP)
	$(PY) -m pytest -q -m arm -s
