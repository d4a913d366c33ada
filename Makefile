# The two commands a new user needs (see README.md):
#   make play   set everything up, then play the shipped world
#   make test   set everything up, then run every check CI runs
# Set-up (Debian packages, libtorch from PyPI into .venv) is scripts/setup.sh: idempotent.

CARGO ?= cargo

.PHONY: setup build play test fmt clippy

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release

play: build
	$(CARGO) run --release --quiet -- play

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	bash scripts/core_without_window.sh
	$(CARGO) test --workspace --locked
