# The suite's build. Two commands matter to users:
#   make run   - install missing Debian packages, build, start the suite on loopback
#   make test  - install missing Debian packages, build with sanitizers, run every test
# Everything else (install, fuzz, bench, format, clean) is listed by `make help`.
#
# Build outputs go to build/ (release) and build/asan/ (AddressSanitizer + UBSan, used by the
# tests). Sources are found by wildcard: a new .c file in a module's src/ needs no edit here.

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
DESTDIR     ?=

VERSION     := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
VARIANT     ?= release
CC          ?= cc
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60

ifeq ($(VARIANT),asan)
  OUT       := build/asan
  OPTFLAGS  := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
  LDOPT     := -fsanitize=address,undefined
else
  OUT       := build
  OPTFLAGS  := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
  LDOPT     := -pie -Wl,-z,relro,-z,now
endif

PKGS        := libuv libssl libcrypto yaml-0.1 libsystemd jansson libnghttp2 libcurl expat \
               libre sqlite3 libidn
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay -lm -lpthread

WARN        := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wconversion -Wno-sign-conversion \
               -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wundef -Wpointer-arith \
               -Wimplicit-fallthrough
CPPFLAGS    += -I. -D_GNU_SOURCE -DSUITE_VERSION='"$(VERSION)"' -Icommon/include
CFLAGS      ?=
ALL_CFLAGS   = -std=c11 $(WARN) $(OPTFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP

DAEMONS     := xmpp-core platypus icicle
MODULES     := common $(DAEMONS)

# Per module: every src/*.c except main.c goes into lib<module>.a; main.c makes the binary.
mod_srcs     = $(filter-out $(1)/src/main.c,$(wildcard $(1)/src/*.c))
mod_objs     = $(patsubst %.c,$(OUT)/obj/%.o,$(call mod_srcs,$(1)))
mod_lib      = $(OUT)/lib/lib$(subst -,_,$(1)).a
DAEMON_LIBS := $(foreach d,$(DAEMONS),$(call mod_lib,$(d)))
COMMON_LIB  := $(call mod_lib,common)
ALL_LIBS    := $(DAEMON_LIBS) $(COMMON_LIB)
BINS        := $(foreach d,$(DAEMONS),$(OUT)/bin/$(d))
EXTRA_BINS  := $(patsubst %.c,$(OUT)/bin/%,$(notdir $(wildcard tools/*.c)))

TEST_SRCS   := $(wildcard tests/*/test_*.c)
TEST_BINS   := $(patsubst tests/%.c,$(OUT)/tests/%,$(TEST_SRCS))
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/replay/%,$(FUZZ_SRCS))
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
TEST_WRAP   := -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=strdup \
               -Wl,--wrap=strndup

.PHONY: all build asan run test unit integration fuzz bench deps deps-test deps-bench install clean \
        format check-format help

all: build

help:
	@echo "make run      install missing packages, build, start the suite on loopback"
	@echo "make test     install missing packages, build with sanitizers, run every test"
	@echo "make build    release build into build/bin"
	@echo "make install  PREFIX=$(PREFIX) DESTDIR=... : binaries, configs, units, man pages"
	@echo "make fuzz     build libFuzzer targets (clang) and run each FUZZ_SECONDS=$(FUZZ_SECONDS)"
	@echo "make bench    run the benchmarks and update docs/benchmarks.md"
	@echo "make format   clang-format every C file"

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

build: $(BINS) $(EXTRA_BINS)

asan:
	@$(MAKE) --no-print-directory VARIANT=asan build-asan-inner

.PHONY: build-asan-inner
build-asan-inner: $(BINS) $(EXTRA_BINS) $(TEST_BINS) $(REPLAY_BINS)

run: deps
	@$(MAKE) --no-print-directory build
	@scripts/run-suite.sh

test: deps deps-test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	@tests/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

bench: deps deps-test deps-bench
	@$(MAKE) --no-print-directory build
	@bench/run.sh

# --- compilation -----------------------------------------------------------------------------

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -I$(firstword $(subst /, ,$<))/src $(ALL_CFLAGS) -c $< -o $@

# Sources generated from files under docs/ (one source for what a daemon serves), by module.
GEN_SRCS_platypus := build/gen/platypus_openapi.c
GEN_SRCS_xmpp-core := build/gen/xmpp_core_api.c
GEN_SRCS    := $(GEN_SRCS_platypus) $(GEN_SRCS_xmpp-core)

build/gen/platypus_openapi.c: docs/platypus-openapi.json scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh pp_rest_openapi $< >$@.tmp && mv $@.tmp $@

build/gen/xmpp_core_api.c: docs/xmpp-core-api.json scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh xc_admin_api_openapi $< >$@.tmp && mv $@.tmp $@

$(OUT)/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

define module_rules
$(call mod_lib,$(1)): $(call mod_objs,$(1)) $(patsubst build/gen/%.c,$(OUT)/obj/gen/%.o,$(GEN_SRCS_$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

# An empty module still needs an archive the linker accepts.
$(OUT)/bin/%: $(OUT)/obj/%/src/main.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDOPT) $(OPTFLAGS) $< -Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(PKG_LIBS) -o $@

$(OUT)/bin/%: $(OUT)/obj/tools/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDOPT) $(OPTFLAGS) $< -Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(PKG_LIBS) -o $@

$(OUT)/tests/%: $(OUT)/obj/tests/%.o $(OUT)/obj/tests/support/alloc.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDOPT) $(OPTFLAGS) $< $(OUT)/obj/tests/support/alloc.o $(TEST_WRAP) -Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(PKG_LIBS) $$(pkg-config --libs cmocka) -o $@

# Corpus replay: the fuzz target with a plain main() that feeds it every file it is given.
$(OUT)/replay/%: $(OUT)/obj/tests/fuzz/%.o $(OUT)/obj/tests/fuzz/replay_main.o $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDOPT) $(OPTFLAGS) $^ -Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(PKG_LIBS) -o $@

# libFuzzer builds are separate: clang, its own objects, never mixed with the gcc objects.
build/fuzz/%: tests/fuzz/%.c $(foreach m,$(MODULES),$(call mod_srcs,$(m))) $(GEN_SRCS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -DSUITE_VERSION='"$(VERSION)"' -I. -Icommon/include \
	  $(foreach m,$(DAEMONS),-I$(m)/src) -Icommon/src $(PKG_CFLAGS) -g -O1 \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ $(PKG_LIBS) \
	  -o $@

# systemd units are templates (systemd/*.service.in); install fills in the paths.
UNIT_SRCS_IN := $(wildcard systemd/*.service.in)

# --- install ---------------------------------------------------------------------------------

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BINS) $(OUT)/bin/xmppctl $(DESTDIR)$(BINDIR)/
	install -m 0644 docs/man/xmppctl.8 $(DESTDIR)$(MANDIR)/man8/xmppctl.8
	for d in $(DAEMONS); do \
	  install -d $(DESTDIR)$(SYSCONFDIR)/$$d; \
	  if [ -e $(DESTDIR)$(SYSCONFDIR)/$$d/$$d.yaml ]; then \
	    echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/$$d/$$d.yaml"; \
	  else install -m 0644 config/$$d.yaml $(DESTDIR)$(SYSCONFDIR)/$$d/$$d.yaml; fi; \
	  install -m 0644 docs/man/$$d.8 $(DESTDIR)$(MANDIR)/man8/$$d.8; \
	done
	# xmpp-core's secrets: made once, random, readable by root only (the unit hands them over)
	for f in api.token push-component.secret; do \
	  if [ ! -e $(DESTDIR)$(SYSCONFDIR)/xmpp-core/$$f ]; then \
	    (umask 077; head -c 32 /dev/urandom | base64 > $(DESTDIR)$(SYSCONFDIR)/xmpp-core/$$f); \
	  fi; \
	done
	for u in $(UNIT_SRCS_IN); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $$u \
	    > $(DESTDIR)$(UNITDIR)/$$(basename $$u .in); \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u .in); \
	done

# --- housekeeping ----------------------------------------------------------------------------

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
