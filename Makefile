# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5006

.PHONY: install install-test browser serve test bench assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The installed marker is rebuilt whenever pyproject.toml changes.
$(VENV)/.installed-app: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[app]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-app

install: $(VENV)/.installed-app
install-test: $(VENV)/.installed-test

# Debian's chromium drives the browser tests (playwright does not download a browser here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# Local use: bound to this machine only. See docs/SERVING.md for a shared server.
# --websocket-max-message-size: uploads travel as one base64 message (4/3 of the file); 256 MiB covers the
# 64 MB default upload cap. Bokeh's own default (20 MiB) would drop the connection above ~15 MB files.
SERVE_FLAGS ?= --address 127.0.0.1 --port $(PORT) \
	--allow-websocket-origin localhost:$(PORT) --allow-websocket-origin 127.0.0.1:$(PORT) \
	--websocket-max-message-size 268435456 \
	--check-unused-sessions 10000 --unused-session-lifetime 60000 \
	--num-threads 4

serve: install
	$(BIN)/panel serve app $(SERVE_FLAGS) --show

test: install-test browser
	$(BIN)/python -m pytest

bench: install-test
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_app.py
	$(BIN)/python benchmarks/bench_scan.py

assets: install
	$(BIN)/lmmcore simulate --out-dir assets --force

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
