# Guichet — two commands: `make dev` runs the whole system, `make test` runs every test.
# Only Python 3.11+ is needed: uv and the virtual environment are bootstrapped here.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
# Chart checks' tools pin old common libraries: they get an environment of their own.
CHART_TOOLS := $(TOOLS)/chart
CHART_TOOL_VERSIONS := checkov==3.3.30 kubernetes-validate==1.37.0
# The third-party client generator the contract gate runs (tests/contract): its own environment,
# since it pins its own typer/ruamel/jinja versions.
OPENAPI_CLIENT := $(TOOLS)/openapi-client
OPENAPI_CLIENT_VERSION := openapi-python-client==0.29.1
# The trace UI of make dev (an OTLP receiver with a web UI), in its own environment too.
TRACE_UI := $(TOOLS)/trace-ui
TRACE_UI_VERSION := arize-phoenix==20.26.1
# make test runs pytest in parallel (pytest-xdist): one worker per core, at most 4, since each
# worker starts its own PostgreSQL and Temporal dev server (docs/testing.md).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
# make test-under-load keeps this many cores busy with another program meanwhile.
BUSY_CPUS ?= 2

.PHONY: dev test test-under-load lint proto proto-check browser prometheus screenshots bench audit chaos install catalogs clean help

help:
	@echo "make dev    - start PostgreSQL, Temporal, the services, the worker, the gateway and an SMTP sink"
	@echo "make test   - lint, type-check, check generated code, run the fast test suite"
	@echo "make test-under-load - make test while $(BUSY_CPUS) busy loops take the cores (before a submission)"
	@echo "make chaos  - the reliability suite: faults, races, bad input, auth; writes docs/reliability.md"
	@echo "make screenshots - every page of the web portal, from the browser tests, in .state/screenshots/"
	@echo "make audit  - Lighthouse on each portal's main pages, phone and desktop (AUDIT_ARGS=--web-url …)"
	@echo "make catalogs - compile the gettext catalogs (.po → .mo; make install does it)"
	@echo "make lint | proto | bench | clean"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as on this machine), every process
	# would otherwise compile its libraries again (4 s per service start instead of 1.4 s).
	$(UV) sync --frozen --compile-bytecode
	@touch $@

$(CHART_TOOLS)/.installed: $(UV) Makefile
	$(PYTHON) -m venv $(CHART_TOOLS)
	$(UV) pip install --quiet --compile-bytecode --python $(CHART_TOOLS)/bin/python $(CHART_TOOL_VERSIONS)
	@touch $@

$(OPENAPI_CLIENT)/.installed: $(UV) Makefile
	$(PYTHON) -m venv $(OPENAPI_CLIENT)
	$(UV) pip install --quiet --compile-bytecode --python $(OPENAPI_CLIENT)/bin/python $(OPENAPI_CLIENT_VERSION)
	@touch $@

$(TRACE_UI)/.installed: $(UV) Makefile
	$(PYTHON) -m venv $(TRACE_UI)
	$(UV) pip install --quiet --compile-bytecode --python $(TRACE_UI)/bin/python $(TRACE_UI_VERSION)
	@touch $@

# Node tools of the checks (the OpenAPI linter, axe-core, Lighthouse), from the committed lock.
# Node.js and npm come from Debian when missing and we are root.
node_modules/.installed: package.json package-lock.json
	@if ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's nodejs and npm for the node tools"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm >/dev/null 2>&1 \
				|| { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null \
					&& apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm >/dev/null; }; \
		else echo "npm is missing and apt-get needs root: install Node.js 20+"; exit 1; fi; \
	fi
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The gettext catalogs (web/locale, services/support/locale) compiled to .mo: never committed,
# made here from the committed .po files (docs/web.md, "Messages").
PO_FILES := $(wildcard web/locale/*/LC_MESSAGES/*.po services/*/locale/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)

$(MO_FILES): %.mo: %.po $(VENV)/.synced
	@$(RUN) pybabel compile --use-fuzzy --statistics -i $< -o $@

catalogs: $(MO_FILES)

install: $(VENV)/.synced $(CHART_TOOLS)/.installed $(OPENAPI_CLIENT)/.installed node_modules/.installed $(MO_FILES)

dev: install prometheus $(TRACE_UI)/.installed
	GUICHET_TRACE_UI=$(CURDIR)/$(TRACE_UI)/bin/phoenix $(RUN) python -m services.devstack

# Lint and the generated-code checks need only what they run: under make -j (make test) they
# start while the other tools install.
lint: $(VENV)/.synced
	$(RUN) ruff check --no-cache .
	$(RUN) ruff format --no-cache --check .
	$(RUN) mypy services workflows web tests bench
	$(RUN) lint-imports --no-cache

proto: install
	$(RUN) python -m services.kit.protogen
	$(RUN) python -m services.gateway.openapi tests/gateway/openapi.json
	$(RUN) python -m web.client.generate
	$(RUN) python -m services.observability

# The OpenAPI linter (redocly.yaml) reads the committed document, which the line before it
# proved to be the live one.
proto-check: $(VENV)/.synced node_modules/.installed $(MO_FILES)
	$(RUN) python -m services.kit.protogen --check
	$(RUN) buf lint proto
	$(RUN) python -m services.gateway.openapi --check tests/gateway/openapi.json
	$(RUN) python -m web.client.generate --check
	node_modules/.bin/redocly lint --config redocly.yaml --format=summary tests/gateway/openapi.json
	$(RUN) python -m services.observability --check
	$(RUN) python -m services.kit.catalogs check

# Prometheus and promtool from Debian's `prometheus` package: the rule tests of make test
# (tests/observability) and the Prometheus of make dev. Installed with apt-get when we are root
# (without the recommended exporters), else those tests skip and make dev runs without it.
prometheus:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's prometheus (promtool for the rule tests, a Prometheus for make dev)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
			|| { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends prometheus >/dev/null; } \
			|| echo "could not install prometheus: the rule tests will be skipped"; \
	else \
		echo "no promtool, and apt-get needs root: the rule tests will be skipped"; \
	fi

# The browser tests drive Debian's Chromium (Playwright's own download cannot reach the internet
# here): installed with apt-get when we are root, else tests/web skip and say why.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ]; then 		exit 0; 	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then 		echo "installing Debian's chromium for the browser tests (tests/web)"; 		export DEBIAN_FRONTEND=noninteractive; 		apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null 2>&1 			|| { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null; } 			|| echo "could not install chromium: the browser tests will be skipped"; 	else 		echo "no chromium, and apt-get needs root: the browser tests will be skipped"; 	fi

# The installs, lint, generated-code checks and the browser install run side by side (uv's
# bytecode compilation and mypy use the cores while npm and the tools' environments mostly wait
# on the disk), then the suite.
test:
	@$(MAKE) --no-print-directory -j4 --output-sync=target install lint proto-check browser prometheus
	$(RUN) pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadgroup --durations=10 $(PYTEST_ARGS)

# make test while another program keeps $(BUSY_CPUS) cores busy (stress-ng when installed, else
# Python busy loops), started here and stopped however the run ends; prints the wall time.
test-under-load: install
	@pids=""; \
	trap 'kill $$pids 2>/dev/null; wait $$pids 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	if command -v stress-ng >/dev/null; then \
		stress-ng --cpu $(BUSY_CPUS) --quiet & pids=" $$!"; \
	else \
		for _ in $$(seq $(BUSY_CPUS)); do $(PYTHON) -c 'while True: pass' & pids="$$pids $$!"; done; \
	fi; \
	echo "load: $(BUSY_CPUS) busy CPUs (pids$$pids $$(uptime | sed 's/.*load/load/'))"; \
	start=$$(date +%s); status=0; \
	$(MAKE) --no-print-directory test || status=$$?; \
	took=$$(( $$(date +%s) - start )); \
	echo "make test under load: $$(( took / 60 )) min $$(( took % 60 )) s, exit $$status"; \
	exit $$status

# Every page the browser tests visit, saved as PNG under .state/screenshots/ (docs/web.md).
screenshots: install browser
	rm -rf .state/screenshots
	GUICHET_SCREENSHOTS=$(CURDIR)/.state/screenshots $(RUN) pytest -q -n $(TEST_WORKERS) --dist loadgroup tests/web
	@echo "screenshots: $$(ls .state/screenshots | wc -l) pages in .state/screenshots/"

bench: install
	$(RUN) python -m bench

# Lighthouse (npm) with Debian's Chromium on the main pages of every portal, phone and desktop,
# signed in; prints the scores, fails below a11y/best practices 100 and performance 95
# (docs/web.md). Starts its own stack with the demo data, or AUDIT_ARGS="--web-url
# http://localhost:3000" audits a running make dev.
audit: install browser
	CHROME_PATH=$${CHROME_PATH:-$$(command -v chromium || command -v chromium-browser)} \
		$(RUN) python -m services.devstack.audit $(AUDIT_ARGS)

# The reliability suite (docs/reliability.md): every slow fault test, plus the fast security,
# race and fuzzing tests (marked `reliability` by tests/reliability_report.py), then the table of
# what was tried and lost, printed and written into docs/reliability.md.
chaos: $(VENV)/.synced prometheus
	GUICHET_RELIABILITY_REPORT=docs/reliability.md \
		$(RUN) pytest -q -m "slow or reliability" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .state .pytest_cache .mypy_cache .ruff_cache
