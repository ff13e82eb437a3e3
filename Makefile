# The project's front door: `make lab` brings the local lab up and runs the main job,
# `make test` runs every test. Both install what a fresh Debian 12 machine lacks.
SWIFT ?= swift
LABCTL := .build/release/labctl

.PHONY: deps build test lab down bench clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product labctl

# Every test: unit, SSH against private sshd instances, the CLI, and the local lab (needs root).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The main job on one Linux machine: the local lab up, then the whole week-3 lab on it
# (provision, deploy), then how to open it.
lab: build
	$(LABCTL) lab up
	$(LABCTL) up

down: build
	$(LABCTL) lab down

bench: deps
	$(SWIFT) build -c release --product ssh-bench
	.build/release/ssh-bench

clean:
	rm -rf .build
