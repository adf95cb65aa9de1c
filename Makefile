# trunx: the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
ORT_VERSION := 1.31.1
ORT_LIB := .ort/libonnxruntime.so.$(ORT_VERSION)
APT_PACKAGES := sox espeak-ng asterisk-core-sounds-en-wav asterisk-moh-opsound-wav sip-tester kamailio \
    baresip-core tshark libnet-smpp-perl prometheus chromium postgresql openssl
PY := .venv/bin/python
AGENT_PY := .venv-agent/bin/python

.PHONY: demo test ort deps agent-venv build model corpus splits bench bench-splits lint clean fuzz soak

## make demo: build and run the main job on embedded defaults.
demo: $(ORT_LIB)
	cargo build --release
	./target/release/trunx demo

## make test: install what the tests need when missing, then run every test.
test: deps $(ORT_LIB) $(AGENT_PY)
	cargo test --release --all-targets --no-fail-fast

## The ONNX Runtime shared library, taken from the onnxruntime wheel on PyPI.
ort: $(ORT_LIB)
$(ORT_LIB):
	mkdir -p .ort/wheel
	python3 -m pip download --quiet --no-deps --only-binary=:all: \
	    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
	    onnxruntime==$(ORT_VERSION) -d .ort/wheel
	python3 -c "import sys, zipfile, glob; \
	    z = zipfile.ZipFile(glob.glob('.ort/wheel/onnxruntime-$(ORT_VERSION)-*.whl')[0]); \
	    open('$(ORT_LIB)', 'wb').write(z.read('onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION)'))"
	rm -rf .ort/wheel
	@echo "installed $(ORT_LIB)"

## Debian packages the corpus generator and the peer tests use.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "wireshark-common wireshark-common/install-setuid boolean false" | $$SUDO debconf-set-selections; \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## The Python test agent's environment (websockets from PyPI) for tests/agent_python.rs.
agent-venv: $(AGENT_PY)
$(AGENT_PY): tests/peers/requirements.txt
	python3 -m venv .venv-agent
	.venv-agent/bin/pip install --quiet -r tests/peers/requirements.txt
	touch $(AGENT_PY)

.venv/bin/python: models/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet -r models/requirements.txt
	touch .venv/bin/python

## The labelled call corpus (320 calls, seed 7) the AMD is measured and trained on.
corpus: deps
	cargo run --release -- corpus generate --out corpus --count 320 --seed 7

## Every train/dev/test split of both generators (2,620 calls under corpus/genG-SPLIT).
splits: deps
	for g in 1 2; do for s in train dev test; do \
	    cargo run --release -- corpus generate --generator $$g --split $$s || exit 1; \
	done; done

## Retrain the beep model from the train splits of both generators, its cross-generator twins
## from one generator's train split each, and the greeting model from the train and dev splits
## of both generators (never the test splits); reproducible, fixed seeds. The feature CSVs are
## made here, not committed.
model: splits $(PY) $(ORT_LIB)
	cargo run --release -- bench beep-features corpus/gen1-train corpus/gen2-train \
	    --out models/beep_features.csv
	$(PY) models/train_beep.py --data models/beep_features.csv --out models/beep.onnx
	for g in 1 2; do \
	    cargo run --release -- bench beep-features corpus/gen$$g-train \
	        --out models/cross/beep-gen$$g.csv || exit 1; \
	    $(PY) models/train_beep.py --data models/cross/beep-gen$$g.csv \
	        --out models/cross/beep-gen$$g.onnx --metrics models/cross/beep-gen$$g-metrics.json \
	        --probe models/cross/beep-gen$$g-probe.json || exit 1; \
	done
	cargo run --release -- bench greeting-features corpus/gen1-train corpus/gen1-dev \
	    corpus/gen2-train corpus/gen2-dev --out models/greeting_features.csv
	$(PY) models/train_greeting.py --data models/greeting_features.csv --out models/greeting.onnx
	$(PY) models/make_smoke.py

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

## criterion benches, then the AMD harness on the corpus with and without the model.
bench: corpus $(ORT_LIB)
	cargo bench
	cargo run --release -- bench amd corpus --json
	cargo run --release -- bench amd corpus --json --no-model

## The test splits of both generators: built-in detector with and without the beep model, and
## the app_amd port (each split is generated first when missing).
bench-splits: deps $(ORT_LIB)
	for g in 1 2; do \
	    cargo run --release -- bench amd --split test --generator $$g --json || exit 1; \
	    cargo run --release -- bench amd --split test --generator $$g --json --no-model || exit 1; \
	    cargo run --release -- bench amd --split test --generator $$g --json --provider asterisk || exit 1; \
	done

clean:
	cargo clean
	rm -rf .ort .venv .venv-agent corpus

## make fuzz: every fuzz target for FUZZ_SECONDS (default 600) each, FUZZ_JOBS (default 2) at
## a time (cargo-fuzz + libFuzzer; RUSTC_BOOTSTRAP=1 on the stable toolchain). Summary lines in
## fuzz/results.txt, crashes in fuzz/artifacts/.
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 2
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh

## make soak: the dialer against the carrier simulator with kill -9 restarts for SOAK_MINUTES.
SOAK_MINUTES ?= 30
soak: $(ORT_LIB)
	cargo build --release
	scripts/soak.sh $(SOAK_MINUTES)
