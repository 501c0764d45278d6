# The few verbs people type. Every variable here is a default (?=): a value set in
# the environment always wins.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PUBLIC_PORT ?= 8080
WORKER_PORT ?= 8081
PYTEST_ARGS ?=
export PUBLIC_PORT WORKER_PORT

.PHONY: install postgres-binaries chromium screenshots bench-console run test lint format migrate schema bench-holds bench-ingress \
	bench-send-crash bench-channels bench-understanding bench-quote

install: $(VENV)/.installed

# The dev lock includes the runtime lock (requirements.lock, all the image installs).
$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The suite and `make run` start their own Postgres from Debian's binaries when no
# database URL is given; install them on a fresh machine (seconds).
postgres-binaries:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends postgresql postgresql-contrib >/dev/null)

# Debian's Chromium, which Playwright drives in the console's browser tests (Playwright's own
# browser download is not reachable from these machines).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null)

run: install postgres-binaries
	$(PY) -m app dev up

# pytest exits 5 when it collected nothing: say so, and fail.
test: install postgres-binaries chromium
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# The console's calendar (10 room types x 90 days) and reservations (10,000) against /health:
# p50/p99 at 16 clients; see docs/performance.md.
bench-console: install postgres-binaries
	@command -v wrk >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	$(PY) -m bench.console

# The console's pages at a phone's and a desktop's width, into docs/console/.
screenshots: install postgres-binaries chromium
	HOTELLY_SCREENSHOTS=docs/console $(PY) -m pytest -q tests/e2e/test_console_browser.py

lint: install
	$(PY) -m ruff check app tests bench
	$(PY) -m ruff format --check app tests bench
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix app tests bench
	$(PY) -m ruff format app tests bench

migrate: install
	$(PY) -m app migrate

# Rewrites sql/schema.sql from a throwaway database migrated from scratch.
schema: install postgres-binaries
	$(PY) -m app.dev.schema > sql/schema.sql

# create_hold against the single-UPDATE floor on a throwaway durable Postgres:
# BENCH_SECONDS per phase (default 10), about 2 minutes. See docs/performance.md.
bench-holds: install postgres-binaries
	$(PY) -m bench.holds

# The Stripe webhook against its floor (receipt INSERT + enqueue) and a trivial endpoint,
# served by hypercorn with its own Postgres and Cloud Tasks emulator, loaded by wrk:
# BENCH_SECONDS per phase (default 10), about 2 minutes. See docs/performance.md.
bench-ingress: install postgres-binaries
	@command -v wrk >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wrk >/dev/null) || echo "bench-ingress: could not install wrk" >&2
	$(PY) -m bench.ingress

# Replies sent twice after a crash: 200 replies per provider, the worker SIGKILLed while
# its sends wait for the provider's answer, duplicates counted (about 2 minutes).
bench-send-crash: install postgres-binaries
	$(PY) -m bench.send_crash

# The channel feed export against /health (wrk, 32 clients) and a 500-event feed's apply
# against plain inserts of the same rows (about 2 minutes). See docs/performance.md.
bench-channels: install postgres-binaries
	@command -v wrk >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends wrk >/dev/null) || echo "bench-channels: could not install wrk" >&2
	$(PY) -m bench.channels

# How well the rules read guests: accuracy on tests/conversations/guest_messages/, wrong
# dates accepted without a question, and latency per message (a few seconds).
bench-understanding: install
	$(PY) -m bench.understanding

# Quote latency against a plain SELECT of the same calendar rows (bench/quote.py).
bench-quote: install postgres-binaries
	$(PY) -m bench.quote
