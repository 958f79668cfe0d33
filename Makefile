# Two commands work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test soak bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bijli meter --tcp 127.0.0.1:4059 --console stdio

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# The attack-and-fault campaign (bijli soak, README "Reliability"), then the longer
# Hypothesis, HDLC-loss and STS runs; not part of CI. SOAK_MINUTES bounds the campaign.
SOAK_MINUTES ?= 120
soak: $(STAMP)
	nice $(BIN)/bijli soak --minutes $(SOAK_MINUTES)
	BIJLI_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests

bench: $(STAMP)
	$(BIN)/bijli bench

clean:
	rm -rf $(VENV) build *.egg-info state
