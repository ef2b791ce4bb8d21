# pg19 build. One Makefile; each component adds its tools, unit tests and
# benchmarks through <component>/module.mk (see "Adding a module" in README.md).
#
#   make            release build of every tool into bin/
#   make test       AddressSanitizer+UBSan build into build-san/, then every test
#   make deps       install the Debian packages listed in */deps.txt
#   make demo       offline end-to-end pipeline on generated fixtures
#   make bench      benchmarks, each against a named baseline
#   make pg19       the real thing: fetch (and later stages) into data/
.DEFAULT_GOAL := all
SHELL := /bin/bash

SAN ?= 0
CC  ?= gcc
CXX ?= g++
NVCC ?= nvcc
PYTHON ?= /usr/bin/python3

WARN     := -Wall -Wextra -Werror -Wno-format-truncation
CSTD     := -std=c11 -D_GNU_SOURCE
OPT      := -O2 -g
ifeq ($(SAN),1)
BUILD    := build-san
OUTBIN   := build-san/bin
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD    := -fsanitize=address,undefined
else
BUILD    := build
OUTBIN   := bin
SANLD    :=
endif

CFLAGS   ?=
CPPFLAGS += -I. -MMD -MP
ALL_CFLAGS   = $(CSTD) $(WARN) $(OPT) $(CFLAGS)
ALL_CXXFLAGS = -std=c++17 $(WARN) $(OPT) $(CXXFLAGS)
LDFLAGS  += $(SANLD)

TOOLS       :=
UNIT_TESTS  :=
BENCHES     :=
COMMON_SRCS :=
COMMON_LIBS :=

include common/module.mk
include $(sort $(wildcard fetch/*.mk tokenize/*.mk shards/*.mk harness/*.mk models/*.mk leaderboard/*.mk))

COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRCS))
objs_of = $(patsubst %.cu,$(BUILD)/obj/%.o,$(patsubst %.cc,$(BUILD)/obj/%.o,$(patsubst %.c,$(BUILD)/obj/%.o,$(1))))

# A tool NAME is built from NAME_SRCS (C and C++), linked with NAME_LIBS.
# Any C++ source makes the link go through $(CXX).
define tool_rule
$(OUTBIN)/$(1): $(call objs_of,$($(1)_SRCS)) $(COMMON_OBJS)
	@mkdir -p $$(@D)
	$$(if $$(filter %.cc,$($(1)_SRCS)),$(CXX),$(CC)) $(LDFLAGS) -o $$@ $$^ $($(1)_LIBS) $(COMMON_LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))

# A unit test NAME (cmocka) is built into $(BUILD)/tests/NAME.
define test_rule
$(BUILD)/tests/$(1): $(call objs_of,$($(1)_SRCS)) $(COMMON_OBJS)
	@mkdir -p $$(@D)
	$$(if $$(filter %.cc,$($(1)_SRCS)),$(CXX),$(CC)) $(LDFLAGS) -o $$@ $$^ $($(1)_LIBS) $(COMMON_LIBS) -lcmocka
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call test_rule,$(t))))

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(ALL_CXXFLAGS) -c -o $@ $<

TOOL_BINS := $(addprefix $(OUTBIN)/,$(TOOLS))
TEST_BINS := $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

.PHONY: all tools unit-tests test check deps demo bench pg19 clean
all: $(TOOL_BINS)
tools: $(TOOL_BINS)
unit-tests: $(TEST_BINS)

# Tests always run against the sanitizer build of every tool.
test check:
	$(MAKE) -j$(shell nproc) SAN=1 tools unit-tests
	PG19_BIN=$(CURDIR)/build-san/bin PG19_TEST_BIN=$(CURDIR)/build-san/tests \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) tests/run.py $(TESTS)

deps:
	@pkgs=$$(cat common/deps.txt $(wildcard */deps.txt) | sed 's/#.*//' | tr -s ' \n' ' ' | xargs -n1 | sort -u | xargs); \
	echo "installing: $$pkgs"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$pkgs

# The pipelines run numbered stage scripts in order: scripts/demo.d/NN-*.sh
# and scripts/pg19.d/NN-*.sh; each component adds its own stage.
demo: all
	$(SHELL) scripts/run-stages.sh scripts/demo.d

# Each benchmark is a script that prints its timings and a ratio against a
# named baseline run side by side.
bench: all
	@for b in $(BENCHES); do echo "== $$b"; $(SHELL) -c "$$b" || exit 1; done

pg19: all
	$(SHELL) scripts/run-stages.sh scripts/pg19.d

clean:
	rm -rf build build-san bin

-include $(shell find build build-san -name '*.d' 2>/dev/null)
