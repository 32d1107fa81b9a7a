# baton: `make` builds everything, `make test` runs every test, `make deps` installs what the
# build and the tests need on Debian 12, `make demo` shows a rollout on a local test cluster.

CC          := gcc
PKG_CONFIG  ?= pkg-config
BUILD       := build

# The libraries both binaries link; each one comes through pkg-config.
BATON_PKGS  := libzmq libprotobuf-c libsystemd libpq libsodium yaml-0.1 jansson libcurl libarchive
TEST_PKGS   := cmocka
GAMESRV_PKGS := libpq libmicrohttpd libsystemd

WARN        := -Wall -Wextra -Werror
CFLAGS      ?= -O2 -g
FIXTURE_CFLAGS := $(CFLAGS)

# SANITIZE=1: everything of baton (not the test fixture) with AddressSanitizer and
# UndefinedBehaviorSanitizer, in its own build folder; `make test SANITIZE=1` runs the whole
# suite, cluster tests included, with the sanitized agent on every node.
ifeq ($(SANITIZE),1)
BUILD       := build-san
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
override CFLAGS := -O1 -g $(SAN_FLAGS)
override LDFLAGS += $(SAN_FLAGS)
endif
ALL_CFLAGS  := -std=gnu11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP -I common \
	-I $(BUILD)/proto

# Where `make install` puts things (GNU style; DESTDIR for staging, as packagers do).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/baton
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
UNITDIR     ?= $(shell $(PKG_CONFIG) systemd --variable=systemdsystemunitdir 2>/dev/null || \
	echo /lib/systemd/system)
comma       := ,
space       := $(subst x, ,x)
pkg_cflags   = $(shell $(PKG_CONFIG) --cflags $(1))
pkg_libs     = $(shell $(PKG_CONFIG) --libs $(1))

# Debian 12 packages, by what needs them. `make deps` installs the missing ones of all; `make
# demo` only those of the build and the cluster (the README's table says which is for what).
# Without their recommendations (a node needs no mail server): each list names all it needs.
DEPS_BUILD   := gcc libc6-dev make pkg-config protobuf-c-compiler libprotobuf-c-dev libzmq3-dev \
	libsystemd-dev libpq-dev libsodium-dev libyaml-dev libjansson-dev libcurl4-openssl-dev \
	libarchive-dev libcmocka-dev libmicrohttpd-dev
DEPS_CLUSTER := postgresql sql-migrate systemd iproute2 util-linux procps curl
DEPS_TEST    := ansible-core openssh-server debhelper dpkg-dev build-essential fakeroot lintian \
	man-db valgrind clang libclang-rt-14-dev jq debootstrap git golang-1.19-go xz-utils zsh fish tmux \
	prometheus-node-exporter haproxy prometheus nginx-light openssl
DEPS_BENCH   := bc time gnuplot-nox strace
DEPS_APT     := $(DEPS_BUILD) $(DEPS_CLUSTER) $(DEPS_TEST) $(DEPS_BENCH)

.PHONY: all test unit-test cluster-test deps demo bench clean format fixtures install uninstall deb fuzz \
	nakama
all: $(BUILD)/baton-agent $(BUILD)/baton unit-tests fixtures

# --- protocol: compiled at build time, never committed ---------------------------------------
$(BUILD)/proto/baton.pb-c.c $(BUILD)/proto/baton.pb-c.h &: proto/baton.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto $<

# --- common: the one home of code both binaries share ----------------------------------------
COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/proto/baton.pb-c.o

$(BUILD)/%.o: %.c | $(BUILD)/proto/baton.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,$(BATON_PKGS)) -c $< -o $@

$(BUILD)/proto/baton.pb-c.o: $(BUILD)/proto/baton.pb-c.c
	$(CC) $(ALL_CFLAGS) $(call pkg_cflags,libprotobuf-c) -c $< -o $@

$(BUILD)/libbaton-common.a: $(COMMON_OBJ)
	$(AR) rcs $@ $^

# --- the two binaries --------------------------------------------------------------------------
# Each binary's folders (agent/README.md, coordinator/README.md say what lives where); a file
# includes another by its name alone, so every folder of a binary is on its include path.
AGENT_DIRS := agent agent/steps agent/artifact agent/probes agent/sys
COORD_DIRS := coordinator/cli coordinator/engine coordinator/rollout coordinator/events \
	coordinator/gates coordinator/journal
AGENT_INC  := $(addprefix -I ,$(AGENT_DIRS))
COORD_INC  := $(addprefix -I ,$(COORD_DIRS))
AGENT_SRC := $(wildcard $(addsuffix /*.c,$(AGENT_DIRS)))
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/%.o)
COORD_SRC := $(wildcard $(addsuffix /*.c,$(COORD_DIRS)))
COORD_OBJ := $(COORD_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/coordinator/%.o: coordinator/%.c | $(BUILD)/proto/baton.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(COORD_INC) $(call pkg_cflags,$(BATON_PKGS)) -c $< -o $@

$(BUILD)/agent/%.o: agent/%.c | $(BUILD)/proto/baton.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AGENT_INC) $(call pkg_cflags,$(BATON_PKGS)) -c $< -o $@

# Everything but main() goes into a library, so unit tests link the very same code.
$(BUILD)/libbaton-agent.a: $(filter-out %/main.o,$(AGENT_OBJ))
	$(AR) rcs $@ $^

$(BUILD)/libbaton-coordinator.a: $(filter-out %/main.o,$(COORD_OBJ))
	$(AR) rcs $@ $^

# The agent says where the annotated example config is when it finds none.
$(BUILD)/agent/main.o: ALL_CFLAGS += -DBATON_DOCDIR='"$(DOCDIR)"'

$(BUILD)/baton-agent: $(BUILD)/agent/main.o $(BUILD)/libbaton-agent.a $(BUILD)/libbaton-common.a
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(BATON_PKGS))

$(BUILD)/baton: $(BUILD)/coordinator/cli/main.o $(BUILD)/libbaton-coordinator.a \
		$(BUILD)/libbaton-common.a
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(BATON_PKGS))

# --- shell completion: written by the built coordinator from its own table of commands, so
# that a command or option added to coordinator/cli/cli.c is completed without a second list.
COMPLETIONS := $(BUILD)/completion/baton.bash $(BUILD)/completion/_baton \
	$(BUILD)/completion/baton.fish
.PHONY: completions
completions: $(COMPLETIONS)
$(BUILD)/completion/baton.bash: $(BUILD)/baton
	@mkdir -p $(dir $@)
	$< completion bash >$@.tmp && mv $@.tmp $@
$(BUILD)/completion/_baton: $(BUILD)/baton
	@mkdir -p $(dir $@)
	$< completion zsh >$@.tmp && mv $@.tmp $@
$(BUILD)/completion/baton.fish: $(BUILD)/baton
	@mkdir -p $(dir $@)
	$< completion fish >$@.tmp && mv $@.tmp $@

# --- install: the two binaries, the unit, man pages, the example config, shell completion -----
# INSTALLED lists exactly what install writes, so that uninstall removes exactly that.
INSTALLED := $(BINDIR)/baton $(SBINDIR)/baton-agent $(UNITDIR)/baton-agent.service \
	$(MANDIR)/man1/baton.1 $(MANDIR)/man8/baton-agent.8 $(DOCDIR)/agent.yml.example \
	$(BASHCOMPDIR)/baton $(ZSHCOMPDIR)/_baton $(FISHCOMPDIR)/baton.fish

install: $(BUILD)/baton $(BUILD)/baton-agent $(COMPLETIONS)
	install -D -m 0755 $(BUILD)/baton $(DESTDIR)$(BINDIR)/baton
	install -D -m 0755 $(BUILD)/baton-agent $(DESTDIR)$(SBINDIR)/baton-agent
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/baton-agent|$(SBINDIR)/baton-agent|' agent/baton-agent.service \
		>$(DESTDIR)$(UNITDIR)/baton-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/baton-agent.service
	install -D -m 0644 doc/baton.1 $(DESTDIR)$(MANDIR)/man1/baton.1
	install -D -m 0644 doc/baton-agent.8 $(DESTDIR)$(MANDIR)/man8/baton-agent.8
	install -D -m 0644 doc/agent.yml.example $(DESTDIR)$(DOCDIR)/agent.yml.example
	install -D -m 0644 $(BUILD)/completion/baton.bash $(DESTDIR)$(BASHCOMPDIR)/baton
	install -D -m 0644 $(BUILD)/completion/_baton $(DESTDIR)$(ZSHCOMPDIR)/_baton
	install -D -m 0644 $(BUILD)/completion/baton.fish $(DESTDIR)$(FISHCOMPDIR)/baton.fish

# The Ansible role's unit is agent/baton-agent.service with the role's paths: made from it, so
# the two cannot drift (tests/cluster/install.sh checks the committed copy is what this makes).
ROLE_UNIT := ansible/roles/agent/templates/baton-agent.service.j2
.PHONY: role-unit
role-unit: $(ROLE_UNIT)
$(ROLE_UNIT): agent/baton-agent.service
	{ echo '# {{ ansible_managed }}'; \
	  echo '# Made by `make role-unit` from baton'"'"'s agent/baton-agent.service: edit that one.'; \
	  sed -e 's|^ExecStart=/usr/local/sbin/baton-agent --config /etc/baton/agent.yml$$|ExecStart={{ baton_agent_binary_path }} --config {{ baton_agent_config_path }}|' \
	      -e 's|^ConditionPathExists=/etc/baton/agent.yml$$|ConditionPathExists={{ baton_agent_config_path }}|' \
	      -e 's|^WatchdogSec=.*|WatchdogSec={{ baton_agent_watchdog_sec }}|' agent/baton-agent.service; \
	} >$@.tmp && mv $@.tmp $@

# Removes the files install wrote, then the folders that are left empty (never a full one).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	for d in $(sort $(patsubst %/,%,$(dir $(addprefix $(DESTDIR),$(INSTALLED))))); do \
		while [ "$$d" != "$(patsubst %/,%,$(DESTDIR))" ] && [ "$$d" != / ] && \
			rmdir "$$d" 2>/dev/null; do d=$$(dirname "$$d"); done; done

# --- fuzzing (libFuzzer, clang): each target for FUZZ_SECONDS; the corpus is kept, minimised,
# in tests/fuzz/corpus/TARGET; inputs that once crashed are replayed first from
# tests/fuzz/regressions/TARGET.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := envelope config journal state catalog semver release
# Inputs are written to files here: a tmpfs, since the state target's save fsyncs.
FUZZ_TMPDIR   = $(shell [ -w /dev/shm ] && echo /dev/shm || echo /tmp)

fuzz: deps
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		$(FUZZ_BUILD)/libbaton-common.a $(FUZZ_BUILD)/libbaton-agent.a \
		$(FUZZ_BUILD)/libbaton-coordinator.a
	$(CC) $(ALL_CFLAGS) -I$(FUZZ_BUILD)/proto tests/fuzz/seeds.c $(FUZZ_BUILD)/libbaton-common.a \
		-o $(FUZZ_BUILD)/seeds $(FUZZ_SAN) $(call pkg_libs,$(BATON_PKGS))
	set -e; for t in $(FUZZ_TARGETS); do \
		$(FUZZ_CC) $(subst $(BUILD),$(FUZZ_BUILD),$(ALL_CFLAGS)) $(AGENT_INC) $(COORD_INC) \
			$(call pkg_cflags,$(BATON_PKGS)) -fsanitize=fuzzer $(FUZZ_SAN) \
			tests/fuzz/fuzz_$$t.c $(FUZZ_BUILD)/libbaton-agent.a \
			$(FUZZ_BUILD)/libbaton-coordinator.a $(FUZZ_BUILD)/libbaton-common.a \
			$(call pkg_libs,$(BATON_PKGS)) -o $(FUZZ_BUILD)/fuzz_$$t; \
		mkdir -p tests/fuzz/corpus/$$t $(FUZZ_BUILD)/work-$$t; \
		if [ -d tests/fuzz/regressions/$$t ]; then \
			$(FUZZ_BUILD)/fuzz_$$t tests/fuzz/regressions/$$t/*; fi; \
		done
	$(if $(filter envelope,$(FUZZ_TARGETS)),$(FUZZ_BUILD)/seeds $(FUZZ_BUILD)/work-envelope)
	$(if $(filter config,$(FUZZ_TARGETS)),cp doc/agent.yml.example tests/fuzz/rollout.yml.seed \
		$(FUZZ_BUILD)/work-config/)
	set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
		TMPDIR=$(FUZZ_TMPDIR) $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			$(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS)) -max_len=65536 -timeout=10 \
			-rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/$$t- \
			$(FUZZ_BUILD)/work-$$t tests/fuzz/corpus/$$t >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1 || \
			{ tail -40 $(FUZZ_BUILD)/fuzz_$$t.log; echo "fuzz_$$t FOUND A CRASH: \
			$(FUZZ_BUILD)/$$t-*; add it to tests/fuzz/regressions/$$t/"; exit 1; }; \
		rm -rf $(FUZZ_TMPDIR)/baton-fuzz-$$t-*; \
		grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $(FUZZ_BUILD)/fuzz_$$t.log; \
		$(FUZZ_BUILD)/fuzz_$$t -merge=1 tests/fuzz/corpus/$$t $(FUZZ_BUILD)/work-$$t \
			>/dev/null 2>&1; \
	done

# Debian packages baton and baton-agent, built with Debian's tools (debian/), into $(BUILD)/deb.
# dpkg-buildpackage works in the tree itself (debian/, build-deb, the packages in ..), so two
# runs in one tree (CI's plain and sanitized halves both run install.sh) take turns: flock.
deb:
	flock debian/rules sh -c 'dpkg-buildpackage -us -uc -b && mkdir -p $(BUILD)/deb && \
		mv ../baton_*.deb ../baton-agent_*.deb ../baton*-dbgsym_*.deb ../baton_*.buildinfo \
		../baton_*.changes $(BUILD)/deb/ && debian/rules clean'

# --- unit tests (cmocka) ---------------------------------------------------------------------
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
.PHONY: unit-tests
unit-tests: $(UNIT_TESTS) $(BUILD)/tests/tools/zpoke

$(BUILD)/tests/tools/zpoke: tests/tools/zpoke.c $(BUILD)/libbaton-common.a | $(BUILD)/proto/baton.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(call pkg_cflags,$(BATON_PKGS)) -o $@ $^ \
		$(call pkg_libs,$(BATON_PKGS))

$(BUILD)/tests/unit/%.o: tests/unit/%.c | $(BUILD)/proto/baton.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AGENT_INC) $(COORD_INC) $(call pkg_cflags,$(BATON_PKGS) $(TEST_PKGS)) -c $< -o $@

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libbaton-agent.a \
		$(BUILD)/libbaton-coordinator.a $(BUILD)/libbaton-common.a
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(BATON_PKGS) $(TEST_PKGS))

# --- the gamesrv fixture, one binary per version (and per built-in fault) --------------------
# VERSION:LAST-MIGRATION. A version ships every migration up to and including LAST.
GAMESRV_VERSIONS := 1.0.0:0001 1.1.0:0002 1.1.1:0002 1.2.0:0003 2.0.0:0004
# Versions with a fault built in, for tests of failed rollouts: VERSION+FAULT:LAST-MIGRATION.
GAMESRV_FAULTS   := migrate-up migrate-down migrate-hang health crash die-later health-decays \
	health-flaps errors
GAMESRV_FAULTY   := $(foreach f,$(GAMESRV_FAULTS),1.1.0+$(f):0002 1.2.0+$(f):0003) \
	1.1.0+migrate-down+health:0002 1.2.0+migrate-down+health:0003 \
	1.1.0+buildmeta:0002 1.2.0+buildmeta:0003 1.2.0+check:0003
GAMESRV_DIR      := tests/fixtures/gamesrv
GAMESRV_MIGRATIONS := $(sort $(wildcard $(GAMESRV_DIR)/migrations/*.sql))
GAMESRV_BINS :=

# $(1) = VERSION[+FAULT], $(2) = LAST-MIGRATION
define gamesrv_build
GAMESRV_BINS += $(BUILD)/fixtures/gamesrv/$(1)/gamesrv
$(BUILD)/fixtures/gamesrv/$(1)/migrations.c: $(GAMESRV_DIR)/embed-migrations.sh $(GAMESRV_MIGRATIONS)
	@mkdir -p $$(dir $$@)
	$(GAMESRV_DIR)/embed-migrations.sh $$@ $(2) $(GAMESRV_MIGRATIONS)
$(BUILD)/fixtures/gamesrv/$(1)/gamesrv: $(GAMESRV_DIR)/gamesrv.c $(GAMESRV_DIR)/migrations.h $(BUILD)/fixtures/gamesrv/$(1)/migrations.c
	$(CC) -std=gnu11 $(WARN) $(FIXTURE_CFLAGS) -I $(GAMESRV_DIR) \
		-DGAMESRV_VERSION='"$(firstword $(subst +, ,$(1)))"' \
		-DGAMESRV_BUILTIN_FAULT='"$(subst $(space),$(comma),$(wordlist 2,9,$(subst +, ,$(1))))"' \
		$$(call pkg_cflags,$(GAMESRV_PKGS)) -o $$@ \
		$(GAMESRV_DIR)/gamesrv.c $(BUILD)/fixtures/gamesrv/$(1)/migrations.c \
		$$(call pkg_libs,$(GAMESRV_PKGS))
endef
$(foreach v,$(GAMESRV_VERSIONS) $(GAMESRV_FAULTY),\
	$(eval $(call gamesrv_build,$(word 1,$(subst :, ,$(v))),$(word 2,$(subst :, ,$(v))))))

fixtures: $(GAMESRV_BINS)

# --- tests ------------------------------------------------------------------------------------
# doc/events.schema.json, made from the event registry (coordinator/events/event_registry.c); the unit
# test test_event_registry fails while the file differs from it.
.PHONY: events-schema
events-schema: $(BUILD)/tests/unit/test_event_registry
	$< --write doc/events.schema.json

# Runs the unit tests, then the real-cluster tests (root on Linux), and ends with the line
# "N passed, N failed".
# First the unit tests built with ASan and UBSan (unless the whole run is: SANITIZE=1), then
# every test.
# --- real Nakama, the service our users run: built from its own sources (../shared/nakama,
# with its build.sh) once, kept in build/nakama (plain and sanitized runs share it) for
# tests/cluster/nakama.sh, which is skipped where the sources are not.
NAKAMA_SRC      ?= $(firstword $(wildcard ../shared/nakama /work/shared/nakama))
NAKAMA_VERSIONS := 3.13.0 3.14.0 3.15.0
NAKAMA_OUT      := build/nakama

nakama:
	@if [ -z "$(NAKAMA_SRC)" ]; then echo "nakama: no sources (../shared/nakama): not built"; \
		exit 0; fi; \
	mkdir -p $(NAKAMA_OUT); \
	for v in $(NAKAMA_VERSIONS); do \
		[ -x $(NAKAMA_OUT)/$$v/nakama ] && [ -f $(NAKAMA_OUT)/$$v/modules/sample.so ] && continue; \
		echo "== building Nakama $$v from $(NAKAMA_SRC) (once; kept in $(NAKAMA_OUT))"; \
		GOCACHE=$(CURDIR)/$(NAKAMA_OUT)/.gocache bash $(NAKAMA_SRC)/build.sh $$v \
			$(NAKAMA_OUT)/$$v >$(NAKAMA_OUT)/build-$$v.log 2>&1 || \
			{ tail -20 $(NAKAMA_OUT)/build-$$v.log; exit 1; }; \
	done

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory nakama
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory SANITIZE=1 unit-tests >$(BUILD)/sanitize-build.log 2>&1 || \
		{ tail -20 $(BUILD)/sanitize-build.log; exit 1; }
	@echo "== unit tests with AddressSanitizer and UndefinedBehaviorSanitizer (build-san)"
	@BUILD=build-san tests/run-tests unit/
endif
	@BUILD=$(BUILD) tests/run-tests

demo: deps-demo
	@$(MAKE) --no-print-directory all
	@tests/demo

# Measurements on the real test cluster, printed as the Markdown tables of BENCHMARKS.md.
bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench/run.sh

# --- housekeeping -----------------------------------------------------------------------------
# demo, test, bench and fuzz run it first, so that each works as the first command on a fresh
# Debian 12 machine; it says in one line what it installs, and nothing when nothing is missing.
# $(1): the packages; $(2): what they are for.
define apt_install
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	[ -z "$$missing" ] && exit 0; \
	missing=$$(echo $$missing); \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make: missing Debian packages ($$missing); run make as root, or apt-get install them"; \
		exit 1; \
	fi; \
	echo "make: installing $$(echo $$missing | wc -w) Debian packages that $(2) need (once): $$missing"; \
	log=$$(mktemp); \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $$missing; } \
		>$$log 2>&1 || { tail -20 $$log; echo "make: apt-get failed (whole output: $$log)"; exit 1; }; \
	rm -f $$log
endef

.PHONY: deps-demo
deps:
	$(call apt_install,$(DEPS_APT),the build$(comma) the demo$(comma) the tests and make bench)
deps-demo:
	$(call apt_install,$(DEPS_BUILD) $(DEPS_CLUSTER),the build and the demo)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

.SECONDARY:

-include $(shell find $(BUILD) -path '$(BUILD)/nakama' -prune -o -name '*.d' -type f -print 2>/dev/null)
