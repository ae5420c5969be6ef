# Every target creates or reuses .venv and installs the project into it (fast when done).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-output

.PHONY: test demo bench lint chromium clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Browser tests drive Debian's chromium (no browser download). Installed here when missing
# and we may (root); otherwise the message says what to run.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else \
	    echo "browser tests need Debian's chromium: sudo apt-get install chromium"; \
	  fi; }

test: $(STAMP) chromium
	$(PY) -m pytest -n 2

demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	cd $(DEMO_DIR) && ../$(VENV)/bin/tracker demo

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check tracker surveys analysis tests bench
	$(VENV)/bin/ruff format --check tracker surveys analysis tests bench

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
