# fer-kaggle: every target first makes what it needs (the .venv, the data, the folds).
#   make cv                 K-fold CV of the preset's variants (real data if found, else the demo)
#   make test               the test suite
# Variables: DATA= (a zip, directory or CSV), PRESET=, VARIANTS=, JOBS=, TIME_LIMIT=, COMPETITION= (Kaggle slug),
#            FORCE=1 (new folds), METHOD= (blend), MESSAGE= (submit)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FK := $(BIN)/fer-kaggle
# The competition data: DATA=..., else the shared copy beside this checkout when there is one.
DATA ?= $(firstword $(wildcard ../shared/data/fer2013.zip))
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

.PHONY: install data folds cv tune leaderboard blend submit report models test bench clean-venv

install: $(BIN)/.installed

$(BIN)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

data: install
	$(FK) data $(if $(DATA),--source $(DATA))

folds: data
	$(FK) folds $(if $(FORCE),--force)

cv: folds
	$(FK) cv $(if $(PRESET),--preset $(PRESET)) $(if $(VARIANTS),--variants $(VARIANTS)) \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT))

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
	$(FK) bench

test: install
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
