# The project's front door: `make lab` brings the local lab up and runs the main job,
# `make test` runs every test. Both install what a fresh Debian 12 machine lacks.
SWIFT ?= swift
LABCTL := .build/release/labctl

.PHONY: deps build test lab down bench bench-engine bench-big bench-rollout clean

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

# A 10,000-step playbook (STEPS=N for another size) parsed, checked, run and run again on one
# host over SSH (a private sshd on loopback): the time of each phase and the round trips.
bench-big: deps
	$(SWIFT) build -c release --product big-playbook-bench
	.build/release/big-playbook-bench

# The engine against ansible-playbook and pyinfra: a no-op run of the same 10 steps on 3 and
# 10 local-lab hosts (root; installs ansible-core and pyinfra into /var/cache/labctl-bench/venv).
bench-engine: build
	LABCTL=$(LABCTL) bench/engine-bench.sh

# deploy.yml's rolling update with 2 and 3 app servers on a local lab (root): the rollout
# against the sum of the servers' turns, and what each turn spends.
bench-rollout: build
	LABCTL=$(LABCTL) bench/rollout.sh

clean:
	rm -rf .build
