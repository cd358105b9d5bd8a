# platform-skel's own Makefile: set up the test tools and run the template's tests.
# `make` lists the targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Twice as many workers as the build machines' 2 cores: the system tier mostly waits (boots,
# watchdogs, rotations), and a waiting worker leaves its core to another.
WORKERS ?= 4
PYTEST = PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)
# Debian packages the tests run for real; `make deps` installs them (as root).
DEBIAN_PACKAGES := make dash openssh-client gnupg bats bats-assert bats-support logrotate lintian \
	rpm rpmlint debhelper dh-python python3-all python3-venv devscripts fakeroot \
	daemontools runit debootstrap systemd-container piuparts reprepro \
	systemd pkgconf strace
BENCH_PACKAGES := dh-virtualenv
# On a freshly booted host another apt often holds the lock for a while: wait for it.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
# Rendering needs only cookiecutter (requirements-render.txt); the tests need the rest too.
RENDER_STAMP := $(VENV)/.render-installed
DEPS_STAMP := $(VENV)/.deps-installed

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules
.PHONY: help deps test test-fast test-package test-system test-next lint demo bench clean

help: ## show this help
	@echo 'Usage: make TARGET'
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RENDER_STAMP): requirements-render.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-render.txt
	touch $@

$(DEPS_STAMP): requirements.txt requirements-render.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

deps: $(DEPS_STAMP) ## create the venv, and install the Debian packages when root
	@if [ "$$(id -u)" -eq 0 ]; then \
		echo 'apt-get install $(DEBIAN_PACKAGES)'; \
		$(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	elif ! dpkg-query -W $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
		echo 'Some system tools are missing; as root, run:'; \
		echo '  apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES)'; \
	fi

test: deps lint ## run every tier: fast, package and system (root)
	$(PYTEST) tests

test-fast: $(DEPS_STAMP) ## render, lint and run the generated project (no root, seconds)
	$(PYTEST) tests/fast

test-package: $(DEPS_STAMP) ## build and lint the .deb and .rpm
	$(PYTEST) tests/package

test-system: $(DEPS_STAMP) ## install and run the service in Debian roots (root)
	$(PYTEST) tests/system

# Not part of `test`: testing changes every day. An early warning of the next release.
test-next: deps ## the system tier's trixie tests on Debian testing (forky), as root
	PLATFORM_SKEL_NEXT=1 $(PYTEST) tests/system

lint: $(DEPS_STAMP) ## ruff over the template's own Python
	$(BIN)/ruff check hooks local_extensions.py tests bench
	$(BIN)/ruff format --check hooks local_extensions.py tests bench

demo: $(RENDER_STAMP) ## generate build/demo/my-service with the defaults and build its .deb
	rm -rf build/demo
	$(BIN)/cookiecutter --no-input . --output-dir build/demo
	$(MAKE) -C build/demo/my-service deb

bench: deps ## measure make deb against its peers (see bench/)
	@if [ "$$(id -u)" -eq 0 ]; then $(APT_GET) install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null; fi
	$(BIN)/python bench/bench.py

clean: ## remove the venv and build/
	rm -rf $(VENV) build
