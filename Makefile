# Sigil: one top-level Makefile, one source list per folder.
#   make            release build into build/
#   make SAN=1      ASan+UBSan build into build-san/
#   make test       sanitizer build, then every unit and integration test
#   make run        dev server on 127.0.0.1:8200

CC      ?= cc
WERROR  ?= 1
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
else
BUILD   ?= build
endif

# gnutls: libmicrohttpd's own TLS backend; the server asks it for the client
# certificates of a connection (TLS-certificate login, auth/cert).
PKGS    := openssl libmicrohttpd jansson lmdb libcurl gnutls
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(WARN) -fstack-protector-strong -fPIE \
           -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -I. $(PKG_CFLAGS) -MMD -MP
ifeq ($(SAN),1)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
OPT     := -O2 -g -D_FORTIFY_SOURCE=2
endif
ALL_CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)
ALL_LDFLAGS := -pie $(OPT) $(LDFLAGS)
LIBS    := $(PKG_LIBS) -lldns -lpthread -lm

# Module order matters for static linking: higher floors first.
MODULES := agent cli server crl auth acme lease ca roles store common
common_SRCS := $(wildcard common/*.c)
cli_SRCS    := $(filter-out cli/main.c,$(wildcard cli/*.c))
agent_SRCS  := $(wildcard agent/*.c)
store_SRCS  := $(wildcard store/*.c)
roles_SRCS  := $(wildcard roles/*.c)
ca_SRCS     := $(wildcard ca/*.c)
lease_SRCS  := $(wildcard lease/*.c)
acme_SRCS   := $(wildcard acme/*.c)
auth_SRCS   := $(wildcard auth/*.c)
crl_SRCS    := $(wildcard crl/*.c)
server_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
MAIN_SRCS   := cli/main.c

lib = $(BUILD)/lib$(1).a
objs = $(patsubst %.c,$(BUILD)/%.o,$($(1)_SRCS))

# Unit tests: one binary per module (tests/unit/test_<module>[_<part>].c),
# linked only against the floors it needs, chosen by the name's prefix.
UNIT_TESTS := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
unit_deps = $(strip \
  $(if $(filter agent%,$(1)),agent cli common, \
  $(if $(filter cli%,$(1)),cli common, \
  $(if $(filter common%,$(1)),common, \
  $(if $(filter store%,$(1)),store common, \
  $(if $(filter roles%,$(1)),roles common, \
  $(if $(filter lease%,$(1)),lease store common, \
  $(if $(filter ca%,$(1)),ca roles store common, \
  $(if $(filter auth%,$(1)),auth lease ca roles store common, \
  $(if $(filter crl% ocsp%,$(1)),crl ca roles store common, \
  $(if $(filter acme%,$(1)),acme ca roles store common, \
  server crl auth acme lease ca roles store common)))))))))))

SIGIL := $(BUILD)/sigil
LOADGEN := $(BUILD)/sigil-bench
CRLBENCH := $(BUILD)/sigil-crlbench

.PHONY: all run test unit integration bench fuzz check-style deps clean
all: $(SIGIL) $(LOADGEN) $(CRLBENCH)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

define MODULE_LIB
$(call lib,$(1)): $(call objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call MODULE_LIB,$(m))))

$(SIGIL): $(patsubst %.c,$(BUILD)/%.o,$(MAIN_SRCS)) $(foreach m,$(MODULES),$(call lib,$(m)))
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(LOADGEN): $(BUILD)/bench/loadgen.o $(BUILD)/bench/acmeload.o $(BUILD)/bench/benchutil.o $(call lib,common)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# In-process CRL build and tidy measurements at 100k-1M entries (no HTTP).
$(CRLBENCH): $(BUILD)/bench/crlbench.o $(foreach m,crl ca roles store common,$(call lib,$(m)))
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

define UNIT_BIN
$(BUILD)/tests/unit/test_$(1): $(BUILD)/tests/unit/test_$(1).o $(foreach m,$(call unit_deps,$(1)),$(call lib,$(m)))
	$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call UNIT_BIN,$(t))))
UNIT_BINS := $(foreach t,$(UNIT_TESTS),$(BUILD)/tests/unit/test_$(t))

unit: $(UNIT_BINS)

# `make test` builds the sanitizer variant and runs the whole suite against it.
test:
	$(MAKE) all WERROR=$(WERROR)
	$(MAKE) SAN=1 all unit WERROR=$(WERROR)
	SIGIL_BUILD=build-san tests/run.sh

run: all
	$(SIGIL) server -dev

# The issuance and ACME benchmarks against this build (BUILD=...); see README "Performance".
bench: all
	SIGIL_BUILD=$(BUILD) bench/run.sh
	SIGIL_BUILD=$(BUILD) bench/acme.sh

# libFuzzer targets, one per parser; each runs FUZZ_SECONDS on a scratch copy
# of its committed corpus (new inputs are not written back).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. $(PKG_CFLAGS) \
  -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
FUZZ_LIB_SRCS := $(common_SRCS) $(store_SRCS) $(roles_SRCS) $(ca_SRCS) $(lease_SRCS) $(auth_SRCS) $(crl_SRCS) \
  $(acme_SRCS) $(server_SRCS) $(cli_SRCS) $(agent_SRCS)
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRCS)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $< $(FUZZ_LIB_SRCS) -o $@ $(LIBS)
fuzz: $(foreach t,$(FUZZ_TARGETS),build-fuzz/fuzz_$(t))
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf build-fuzz/corpus-$$t && mkdir -p build-fuzz/corpus-$$t && \
	  cp -r tests/fuzz/corpus/$$t/. build-fuzz/corpus-$$t/ 2>/dev/null; \
	  echo "fuzz $$t ($(FUZZ_SECONDS)s)"; \
	  build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus-$$t \
	    >build-fuzz/$$t.log 2>&1 || { tail -40 build-fuzz/$$t.log; exit 1; }; \
	done

# Debian packages for building, running and testing. Idempotent: apt runs only
# when something is missing.
DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev libssl-dev openssl \
  libmicrohttpd-dev libgnutls28-dev libjansson-dev liblmdb-dev lmdb-utils libcurl4-openssl-dev curl \
  python3 python3-hvac python3-cryptography python3-requests python3-acme python3-jsonschema python3-yaml \
  certbot ca-certificates nginx-light lego uacme dehydrated golang-go golang-golang-x-crypto-dev \
  libldns-dev bind9 bind9-dnsutils
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all installed"; fi

check-style:
	@! grep -nE '\b(sprintf|strcpy|strcat|gets|atoi)\s*\(' $(foreach m,$(MODULES),$($(m)_SRCS)) $(MAIN_SRCS) \
	  || (echo "banned function used" && false)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
