# Two commands matter:  `make demo`  (install, index the bundled corpus, answer)  and  `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION ?= Qui préside le pôle SCS ?
# torch is pinned to the CPU build that installs quickly here; any other torch pulls GBs of CUDA.
TORCH ?= torch==2.13.0

# llama.cpp is compiled for a generic x86-64 with AVX2: a -march=native build can use
# instructions (AMX, AVX-512) a virtual machine advertises but faults on.
LLAMA_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install install-llm demo serve test test-fast browser-deps ocr-deps lint eval-full bench clean-index

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH)
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH) -e '.[test]'
	touch $@

install: $(BIN)/.installed

# The optional extras the tests exercise: the generative ones and the real model server
# (the first build of llama-cpp-python takes about 10 minutes; pip caches the wheel), and
# Ray for the distributed-embedding tests (a local cluster; about 30 s to install).
$(BIN)/.installed-llm: $(BIN)/.installed pyproject.toml
	@start=$$(date +%s); \
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install --disable-pip-version-check -q $(TORCH) \
	  -e '.[test,llm,llm-server,ray]' && \
	echo "optional extras installed in $$(( $$(date +%s) - start )) s"
	touch $@

install-llm: $(BIN)/.installed-llm

demo: install
	$(BIN)/sourcier ask "$(QUESTION)"

serve: install
	$(BIN)/sourcier serve

# Headless Chromium for the browser tests (Debian package; Playwright's own download is not used).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: /usr/bin/chromium missing; browser tests will be skipped"; fi; \
	fi

# Tesseract and its French data for the OCR tests (Debian packages; sourcier[ocr] is in .[test]).
ocr-deps:
	@if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx fra; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng >/dev/null) \
	      || echo "warning: could not install tesseract; OCR tests will be skipped"; \
	  else echo "warning: tesseract (fra) missing; OCR tests will be skipped"; fi; \
	fi

test: install install-llm browser-deps ocr-deps
	$(BIN)/ruff check src tests app benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: install
	$(BIN)/ruff check src tests app benchmarks
	$(BIN)/mypy

# The full PIAF test-split evaluation and the LangChain benchmark (minutes; not run by CI).
eval-full: install
	$(BIN)/sourcier eval piaf --split test

bench: install
	$(BIN)/python benchmarks/compare_langchain.py --dataset piaf --split test

clean-index:
	rm -rf index/default
