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
MESSAGE ?= fer-kaggle $(shell date +%Y-%m-%dT%H:%M)
ifneq ($(COMPETITION),)
export COMPETITION
endif

.PHONY: install data folds cv leaderboard blend submit report models test bench clean-venv

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
