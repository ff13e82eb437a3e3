# The project's front door: `make lab` brings the local lab up and runs the main job,
# `make test` runs every test. Both install what a fresh Debian 12 machine lacks.
SWIFT ?= swift
LABCTL := .build/release/labctl
# `make install` puts labctl, its man page and its bash, zsh and fish completions under
# $(DESTDIR)$(PREFIX); `make lab` installs it too, so that the commands labctl suggests work.
PREFIX ?= /usr/local
DESTDIR ?=
SHARE := $(DESTDIR)$(PREFIX)/share

.PHONY: deps build install uninstall test lab down bench bench-engine bench-big bench-rollout bench-plan clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product labctl

# The man page comes from labctl's own help (swift-argument-parser's generate-manual), the
# completions from labctl itself, so neither can drift from the options.
install: build
	rm -rf .build/plugins/GenerateManual
	$(SWIFT) package plugin generate-manual
	install -d $(DESTDIR)$(PREFIX)/bin $(SHARE)/man/man1 $(SHARE)/bash-completion/completions \
		$(SHARE)/zsh/site-functions $(SHARE)/fish/vendor_completions.d
	install -m 0755 $(LABCTL) $(DESTDIR)$(PREFIX)/bin/labctl
	install -m 0644 "$$(find .build/plugins/GenerateManual -name labctl.1 | head -n 1)" $(SHARE)/man/man1/labctl.1
	$(LABCTL) --generate-completion-script bash > $(SHARE)/bash-completion/completions/labctl
	$(LABCTL) --generate-completion-script zsh > $(SHARE)/zsh/site-functions/_labctl
	$(LABCTL) --generate-completion-script fish > $(SHARE)/fish/vendor_completions.d/labctl.fish
	@echo "labctl installed in $(DESTDIR)$(PREFIX)/bin (man labctl; completions for bash, zsh and fish)"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/labctl $(SHARE)/man/man1/labctl.1 $(SHARE)/bash-completion/completions/labctl \
		$(SHARE)/zsh/site-functions/_labctl $(SHARE)/fish/vendor_completions.d/labctl.fish

# Every test: unit, SSH against private sshd instances, the CLI, and the local lab (needs root).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test
	./scripts/check-install.sh

# The main job on one Linux machine: labctl installed, the local lab up, then the whole week-3
# lab on it (provision, deploy, verify).
lab: install
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

# Planning alone: the shipped playbooks checked and compiled for every host of 10, 100 and
# 1,000 hosts (HOSTS="..." for others), no host contacted; time per host and step.
bench-plan: deps
	$(SWIFT) build -c release --product planning-bench
	.build/release/planning-bench

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
