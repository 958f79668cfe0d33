# Two commands work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test soak bench clean bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(MAKE) bytecode
	touch $(STAMP)

# An editable install writes no bytecode, and where PYTHONDONTWRITEBYTECODE is set (CI
# images, shared machines) nothing ever does: every `bijli` call then compiles each of our
# modules it imports, a third of a `bijli token decode` (issue 16). A wheel install compiles
# at install time; this does the same for the source tree. A module edited since is still
# compiled on import, so run it again after editing to measure start-up.
bytecode:
	$(BIN)/python -m compileall -q bijli dlms firmware hal tools

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
	find bijli dlms firmware hal tools -name __pycache__ -type d -prune -exec rm -rf {} +
