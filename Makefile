# Humanline: the two commands are `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PORT ?= 8000
export DATABASE_URL_TEST ?= postgres://postgres@127.0.0.1:5432/humanline
export REDIS_URL_TEST ?= redis://127.0.0.1:6379/1

.PHONY: install messages run serve test test-postgres test-sqlite lint format bench chaos browser clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

## the translations (locale/*/LC_MESSAGES/*.po) compiled to .mo on every install, with Babel
install: $(STAMP)
	@$(PY) -m config.catalogs compile

## make messages: after changing translatable strings, refresh the .po files (then translate)
messages: install
	@env -u DATABASE_URL -u REDIS_URL $(PY) -m config.catalogs update
	@env -u DATABASE_URL -u REDIS_URL $(PY) -m config.catalogs check || true

## make run: the whole platform, embedded (SQLite, in-memory layer, in-process work, demo data)
run: install
	@mkdir -p var
	@env -u DATABASE_URL -u REDIS_URL $(PY) manage.py migrate --noinput -v0
	@env -u DATABASE_URL -u REDIS_URL $(PY) manage.py load_demo
	@env -u DATABASE_URL -u REDIS_URL $(PY) manage.py load_demo_history
	@echo ""
	@echo "  Humanline is running (embedded default: SQLite, in-memory channels, in-process work)"
	@echo "    Home            http://127.0.0.1:$(PORT)/"
	@echo "    Apply as agent  http://127.0.0.1:$(PORT)/apply/"
	@echo "    Staff review    http://127.0.0.1:$(PORT)/staff/review/"
	@echo "    API docs        http://127.0.0.1:$(PORT)/api/docs/"
	@echo "    Django admin    http://127.0.0.1:$(PORT)/django-admin/"
	@echo "  Demo sign-ins (password: humanline-demo)"
	@echo "    ops@example.com (staff) · agent@example.com (agent) · customer@example.com (customer)"
	@echo ""
	@env -u DATABASE_URL -u REDIS_URL $(PY) -m daphne -b 127.0.0.1 -p $(PORT) config.asgi:application

## make serve: production-like local mode, separate processes on DATABASE_URL / REDIS_URL
serve: install
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "make serve needs DATABASE_URL and REDIS_URL (see README)"; exit 2; }
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0
	@# Every process counts into this directory, emptied at each start; /metrics adds them up.
	@rm -rf var/prometheus && mkdir -p var/prometheus
	@PORT=$(PORT) PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/prometheus $(VENV)/bin/honcho start -f Procfile

## make test: the whole suite twice, on the real PostgreSQL and Redis, then on the
## embedded default (SQLite); both passes run, and it fails if either does
test: install browser
	@status=0; \
	  $(MAKE) --no-print-directory test-postgres || status=1; \
	  $(MAKE) --no-print-directory test-sqlite || status=1; \
	  exit $$status

test-postgres: install browser
	@echo "== make test: PostgreSQL and Redis"
	@DATABASE_URL=$(DATABASE_URL_TEST) REDIS_URL=$(REDIS_URL_TEST) $(PY) -m config.preflight
	@DATABASE_URL=$(DATABASE_URL_TEST) REDIS_URL=$(REDIS_URL_TEST) HUMANLINE_TESTING=1 \
	  CELERY_TASK_ALWAYS_EAGER=1 $(PY) -m pytest $(PYTEST_ARGS)

## the embedded default as `make run` has it: SQLite (a file in the temp directory),
## the in-memory channel layer, Celery eager, the local-memory cache
test-sqlite: install browser
	@echo "== make test: the embedded default (SQLite)"
	@env -u DATABASE_URL -u REDIS_URL HUMANLINE_TESTING=1 $(PY) -m pytest $(PYTEST_ARGS)

## Debian's Chromium for the browser tests, installed when missing
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

bench: install
	@DATABASE_URL=$(DATABASE_URL_TEST) REDIS_URL=$(REDIS_URL_TEST) $(PY) bench/_run_all.py

## make chaos: the production-like stack under load while its processes die (about 4 minutes);
## it restarts the machine's PostgreSQL once: CHAOS_ARGS=--no-postgres-restart to skip that
chaos: install
	@DATABASE_URL=$(DATABASE_URL_TEST) $(PY) -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
	find locale -name '*.mo' -delete
