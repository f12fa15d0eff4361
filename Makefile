# The two commands: `make run` serves the panel, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test venv migrate demo lint bench regen-migration clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(FLASK) db upgrade

# Demo data only on first start (an empty database); a real install uses `flask --app wsgi create-admin`.
demo: migrate
	PANEL_MANAGER_ENABLED=0 $(FLASK) demo-data --if-empty

# The demo keeps calls coming while it runs (PANEL_DEMO_TRAFFIC=0 turns that off).
run: demo
	@echo "Panel: http://$(HOST):$(PORT)/  (demo logins are listed in README.md)"
	PANEL_DEMO_TRAFFIC=$${PANEL_DEMO_TRAFFIC:-1} $(VENV)/bin/gunicorn --workers $(WORKERS) --threads 4 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

# SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (CI sets it).
test: venv
	PANEL_TEST_DB=sqlite $(PY) -m pytest -q $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$TEST_DATABASE_URL)"; \
		PANEL_TEST_DB="$$TEST_DATABASE_URL" $(PY) -m pytest -q -m "not sqlite_only" $(PYTEST_ARGS); \
	fi

lint: venv
	$(VENV)/bin/ruff check panel tests bench
	$(VENV)/bin/ruff format --check panel tests bench

# Before the first release the schema is one migration, regenerated from the models.
regen-migration: venv
	rm -f migrations/versions/*.py
	rm -f instance/regen.sqlite3
	DATABASE_URL=sqlite:///$(CURDIR)/instance/regen.sqlite3 PANEL_MANAGER_ENABLED=0 $(FLASK) db upgrade
	DATABASE_URL=sqlite:///$(CURDIR)/instance/regen.sqlite3 PANEL_MANAGER_ENABLED=0 $(FLASK) db migrate -m "schema" --rev-id 0001
	rm -f instance/regen.sqlite3

# Every benchmark, one JSON line of figures each (PostgreSQL too when TEST_DATABASE_URL is set); slow.
bench: venv
	for b in import pages rules audit cdrs route; do $(PY) bench/$$b.py || exit 1; done
	$(PY) bench/switch.py

clean:
	rm -rf $(VENV) instance/*.sqlite3*
