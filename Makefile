# The README's two commands: `make repro` (install + data + the default pipeline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch/torchvision pinned to the wheels cached on these machines; see README for other machines.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
export DVC_NO_ANALYTICS := 1

.PHONY: repro test test-fast install data compare autoharden serve deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PINS)
	$(BIN)/pip install --quiet -e '.[dev]' $(TORCH_PINS)
	touch $@

# The offline plots page (README, "Plots"): Vega, Vega-Lite and vega-embed from npm at the versions
# package-lock.json pins, inlined into the page template .dvc/config names (plots.html_template).
PLOTS_PAGE := .dvc/plots/page.html

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the offline plots page needs Node.js and npm (Debian: apt-get install npm)" >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

$(PLOTS_PAGE): node_modules/.installed pipeline/plots_page.py $(VENV)/.installed
	$(BIN)/python -m pipeline.plots_page

install: $(VENV)/.installed $(PLOTS_PAGE)

# Fashion-MNIST from Debian's dataset-fashion-mnist when running as root and it is missing;
# otherwise the prepare stage finds data.root, the Debian files or torchvision's downloader itself.
data:
	@if [ ! -f $(FASHION_MNIST_DIR)/train-images-idx3-ubyte.gz ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q dataset-fashion-mnist; \
	fi

repro: install data
	@if [ ! -d .dvc ]; then $(BIN)/dvc init --no-scm -q 2>/dev/null || $(BIN)/dvc init -q; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.driver

# Serves the gate-approved champion from the project's MLflow store (after a `make repro` that approved).
SERVE_MODEL ?= models:/$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['register']['model_name'])")@champion
serve: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline.serve --model "$(SERVE_MODEL)" --params params.yaml

# The defense comparison and the CALoR (r, b) sweep: separate DVC pipelines, not part of `make repro`.
compare: install data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro compare/dvc.yaml

autoharden: install data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro autoharden/dvc.yaml

# pytest's exit code 5 (no tests collected) is a failure here, not a pass.
test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q; code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$code

# For development: everything but the end-to-end pipelines and the load test (marked slow).
test-fast: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -m "not slow"

# Rewrites every stage's code deps in the dvc.yaml files from what the stage imports (tools/stage_deps.py).
deps: install
	$(BIN)/python -m tools.stage_deps --write
