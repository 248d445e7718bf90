# fer-kaggle: every target first makes what it needs (the .venv, the data, the folds).
#   make all                data, folds, cv, blend and report: ends with a submission and its nested-CV score
#   make cv                 K-fold CV of the preset's variants (real data if found, else the demo)
#   make test               the test suite
#   make bench              benchmarks, each against its baseline in one run
#   make pseudo             retrain the latest blend's members with its confident test predictions (FROM=, ROUNDS=,
#                           FRACTIONS=0.1,0.25 for the label-fraction experiment)
#   make distill            distill the latest blend (TEACHER=) into the preset's fastest variant (STUDENT=)
#   make predict            predict INPUT= (a CSV, a folder of images or an image) with MODEL= into OUT=
#   make bench-baseline     the skilled user's plain Keras script on the same data (BUDGET= seconds)
# Variables: DATA= (a zip, directory, CSV or device pack), METRIC= and DATA_OPTIONS= (spec overrides, e.g.
#            DATA_OPTIONS="--no-flip --image-size 64"), PRESET=, VARIANTS=, JOBS=, TIME_LIMIT=, PIECE= (seconds per piece; exit 75:
#            run again to resume), COMPETITION= (Kaggle slug),
#            FOLDS=0 (train these folds only: a holdout variant; FINAL_MODEL=1 then a final model over every row), FORCE=1 (new folds), METHOD= (blend), MESSAGE= (submit)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
# GPU=1: JAX with CUDA too (the gpu preset's backend); a full TensorFlow already installed (a Kaggle
# notebook's GPU build) is kept, never replaced by the CPU build (setup.py).
EXTRAS := test$(if $(GPU),$(comma)gpu)
STAMP := $(BIN)/.installed$(if $(GPU),-gpu)
FK := $(BIN)/fer-kaggle
# The competition data: DATA=..., else the shared copy beside this checkout when there is one.
DATA ?= $(firstword $(wildcard ../shared/data/fer2013.zip))
METRIC ?=
DATA_OPTIONS ?=
PRESET ?=
VARIANTS ?=
JOBS ?=
TIME_LIMIT ?=
COMPETITION ?=
FORCE ?=
METHOD ?= best
SEARCH ?= search
FAMILY ?= xception
MAX_PARAMS ?=
TUNER ?= hyperband
WORKERS ?=
ORACLE_PORT ?= 8000
MESSAGE ?= fer-kaggle $(shell date +%Y-%m-%dT%H:%M)
ifneq ($(COMPETITION),)
export COMPETITION
endif

FROM ?=
ROUNDS ?= 1
FRACTIONS ?=
TEACHER ?=
STUDENT ?=
MODEL ?=
INPUT ?=
OUT ?=
PIECE ?=
FOLDS ?=
FINAL_MODEL ?=
RUN_OPTIONS = $(if $(PRESET),--preset $(PRESET)) $(if $(JOBS),--jobs $(JOBS)) $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT)) \
	$(if $(PIECE),--piece-seconds $(PIECE))

BUDGET ?= 2400
BASELINE ?= ../shared/baselines/skilled_user.py

.PHONY: all lock install data folds cv tune leaderboard blend submit report models test bench bench-baseline clean-venv \
	pseudo distill predict

all: cv
	$(FK) blend --method $(METHOD)
	$(FK) report --only confusion,misclassified,curves
	$(FK) submissions --latest

install: $(STAMP)

# keras-hub (the hub:<preset> backbones) and what its image backbones use, without its
# tensorflow-text, which would bring the full TensorFlow beside tensorflow-cpu.
KERAS_HUB := keras-hub kagglehub kagglesdk regex sentencepiece tokenizers

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet -c constraints.txt --no-deps $(KERAS_HUB)
	touch $@

# New pins: the newest versions setup.py's ranges allow, in a fresh environment; kept only if the tests pass.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[test]'
	$(LOCK_VENV)/bin/pip install --quiet --no-deps $(KERAS_HUB)
	{ sed -n '1,2p' constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -v '^fer-kaggle'; } > constraints.txt.new
	$(LOCK_VENV)/bin/python -m pytest -q tests
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)
	$(MAKE) install  # the new constraints.txt is newer than the stamp: the environment is rebuilt from it

data: install
	$(FK) data $(if $(DATA),--source $(DATA)) $(if $(METRIC),--metric $(METRIC)) $(DATA_OPTIONS)

folds: data
	$(FK) folds $(if $(FORCE),--force)

cv: folds
	$(FK) cv $(RUN_OPTIONS) $(if $(VARIANTS),--variants $(VARIANTS)) $(if $(FOLDS),--folds $(FOLDS)) \
		$(if $(FINAL_MODEL),--final-model)

pseudo: folds
	$(FK) pseudo $(RUN_OPTIONS) $(if $(FROM),--from $(FROM)) $(if $(VARIANTS),--variants $(VARIANTS)) \
	  --rounds $(ROUNDS) $(if $(FRACTIONS),--label-fraction $(FRACTIONS))

distill: folds
	$(FK) distill $(RUN_OPTIONS) $(if $(TEACHER),--teacher $(TEACHER)) $(if $(STUDENT),--student $(STUDENT))

predict: install
	@test -n "$(MODEL)" -a -n "$(INPUT)" || { echo "predict: give MODEL=... (a .keras file, variant or blend) and INPUT=..."; exit 2; }
	$(FK) predict --model $(MODEL) $(INPUT) $(if $(OUT),--out $(OUT))

TUNE := $(FK) tune --search $(SEARCH) --family $(FAMILY) --tuner $(TUNER) $(if $(PRESET),--preset $(PRESET)) \
	$(if $(MAX_PARAMS),--max-params $(MAX_PARAMS)) $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT))

# WORKERS=N: keras-tuner's distributed mode on this machine, a chief (the oracle) and N workers.
tune: folds
ifeq ($(WORKERS),)
	$(TUNE)
else
	export KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=$(ORACLE_PORT); \
	KERASTUNER_TUNER_ID=chief $(TUNE) --threads 1 & chief=$$!; sleep 5; \
	for i in $$(seq 1 $(WORKERS)); do KERASTUNER_TUNER_ID=tuner$$i $(TUNE) --threads 1 > tuning/$(SEARCH)-worker$$i.log 2>&1 & done; \
	wait $$chief; wait
endif

leaderboard: install
	$(FK) leaderboard

blend: folds
	$(FK) blend --method $(METHOD)

submit: data
	$(FK) submit --latest $(if $(COMPETITION),--competition $(COMPETITION)) --message "$(MESSAGE)" --wait

report: data
	$(FK) report $(if $(VARIANT),--variant $(VARIANT))

models: install
	$(FK) models

bench: data
	$(FK) bench $(if $(PRESET),--preset $(PRESET))

# The baseline to beat, on the same machine and data: its holdout accuracy beside the toolkit's OOF.
bench-baseline: install
	@test -n "$(DATA)" || { echo "bench-baseline: give DATA=path/to/fer2013.zip"; exit 2; }
	mkdir -p reports
	$(BIN)/python $(BASELINE) $(DATA) $(BUDGET) reports/skilled_user.csv 2>&1 | grep -v WARNING | tee reports/skilled_user.log

test: install
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
