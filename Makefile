# reelfarm build (GNU make). Everything lands under build/; nothing else is written.
#
#   make              build every binary into build/bin/
#   make test         build and run every test; last line "N passed, N failed"
#   make demo         render examples/demo-film.yaml with the bundled reel-tiny model on 2 workers
#   make bench        build and run the benchmarks (ratios against peers measured in the same run)
#   make deps         install the Debian packages (deploy/install-deps.sh)
#   make check-style  clang-format (check mode) + cppcheck;  make format  applies clang-format
#
# Variables: NO_DEPS=1 (never run deploy/install-deps.sh), CUDA=auto|on|off, V=1 (echo commands),
#   CUDA_HOME, CUDA_LIBDIR, NCCL_INC (where the toolkit, its libraries and nccl.h are),
#   NVCCFLAGS, CUDA_ARCH (the -gencode list), PKG_CFLAGS/PKG_LIBS (replace pkg-config).
#
#   make gpu-deps     fetch the Debian packages a GPU machine lacks into vendor-debs/
#   make gpu-check    on a GPU machine: build with them, check every CUDA op and the DiT
#                     against the CPU, benchmark the 1.3B DiT beside PyTorch (tools/gpu/)
#
# Source layout rules (new files need no Makefile edit):
#   common/ kernels/ kernels/cpu/ engine/ worker/ coordinator/ cli/  -> one static library each
#   <dir>/main.c                           -> that directory's binary (not in its library)
#   engine/tool/*.c                        -> build/bin/reelfarm-engine
#   proto/*.proto                          -> protoc-c at build time into build/gen/ (part of common)
#   tests/test_*.c                         -> build/tests/test_* (with tests/rf_test.c + tests/support/*.c)
#   tests/bench/bench_*.c                  -> build/bench/bench_* (run by tests/bench/run.sh,
#                                             with the other tests/bench/*.c linked in)

SHELL := /bin/bash
.DEFAULT_GOAL := all
B := build

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
Q := $(if $(V),,@)

# ---- dependencies ---------------------------------------------------------------
PKGS := libzmq libprotobuf-c yaml-0.1 jansson libxxhash libsodium libcurl sqlite3 \
        libavcodec libavformat libavutil libswscale libmicrohttpd openblas

NODEPS_GOALS := deps format check-style clean help gpu-check gpu-deps
ifneq ($(NO_DEPS),1)
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
DEPS_OK := $(shell pkg-config --exists $(PKGS) 2>/dev/null && command -v protoc-c >/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
$(info make: some libraries or tools are missing; running deploy/install-deps.sh (NO_DEPS=1 skips this))
DEPS_RC := $(shell bash deploy/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error deploy/install-deps.sh failed (see above); install the packages it names, or build with NO_DEPS=1 and your own libraries)
endif
endif
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# ---- CUDA switch ----------------------------------------------------------------
CUDA ?= auto
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(CUDA),auto)
CUDA_ON := $(if $(NVCC),1,)
else ifeq ($(CUDA),on)
CUDA_ON := 1
ifeq ($(NVCC),)
$(error CUDA=on but nvcc was not found; install the CUDA toolkit or use CUDA=off)
endif
else ifeq ($(CUDA),off)
CUDA_ON :=
else
$(error CUDA must be auto, on or off (got '$(CUDA)'))
endif
CUDA_SRCS := $(wildcard kernels/cuda/*.cu)

# ---- flags ----------------------------------------------------------------------
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-format-truncation -pthread -MMD -MP
CPPFLAGS += -I. -Icommon -Ikernels -Iengine -I$(B)/gen $(PKG_CFLAGS)
CPPFLAGS += -DRF_FIXTURES_DIR='"$(CURDIR)/tests/fixtures"' -DRF_SOURCE_DIR='"$(CURDIR)"'
LDLIBS += $(PKG_LIBS) -lm -pthread
ifneq ($(CUDA_ON),)
ifneq ($(CUDA_SRCS),)
CPPFLAGS += -DRF_HAVE_CUDA=1
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# CUDA_LIBDIR: where libcudart/libcublasLt live (the toolkit's lib64, or e.g. a pip wheel's lib).
CUDA_LIBDIR ?= $(CUDA_HOME)/lib64
NVCCFLAGS ?= -O2 -g -std=c++17
# Targets: Hopper (H100/H200) machine code, its PTX for newer GPUs, and Ampere (A100).
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -gencode arch=compute_80,code=sm_80
NVCC_ALL := $(NVCCFLAGS) $(CUDA_ARCH) -Werror all-warnings -Xcompiler -Wall,-Wextra
# NCCL (tensor parallelism over GPUs): only its header is needed at build time; the library
# is opened at run time (dlopen), so binaries start on machines without it.
NCCL_INC ?= $(firstword $(foreach d,$(CUDA_HOME)/include /usr/include /usr/local/include,$(if $(wildcard $(d)/nccl.h),$(d))))
ifneq ($(NCCL_INC),)
NVCC_ALL += -DRF_HAVE_NCCL=1 -I$(NCCL_INC)
CPPFLAGS += -DRF_HAVE_NCCL=1
endif
CUDA_LIBS := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas -lcudart -lstdc++ -ldl
endif
endif

# ---- sources --------------------------------------------------------------------
PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)

lib_srcs = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
COMMON_SRCS := $(call lib_srcs,common)
KERNELS_SRCS := $(call lib_srcs,kernels) $(wildcard kernels/cpu/*.c) $(wildcard kernels/collective/*.c)
ENGINE_SRCS := $(call lib_srcs,engine) $(foreach d,$(filter-out engine/tool/,$(wildcard engine/*/)),$(wildcard $(d)*.c))
WORKER_SRCS := $(call lib_srcs,worker)
COORD_SRCS := $(call lib_srcs,coordinator)
CLI_SRCS := $(call lib_srcs,cli)
ENGINE_TOOL_SRCS := $(wildcard engine/tool/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
COMMON_OBJS := $(call obj,$(COMMON_SRCS)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PROTO_C))
KERNELS_OBJS := $(call obj,$(KERNELS_SRCS))
ENGINE_OBJS := $(call obj,$(ENGINE_SRCS))
WORKER_OBJS := $(call obj,$(WORKER_SRCS))
COORD_OBJS := $(call obj,$(COORD_SRCS))
CLI_OBJS := $(call obj,$(CLI_SRCS))
ifneq ($(CUDA_ON),)
KERNELS_OBJS += $(patsubst %.cu,$(B)/obj/%.cu.o,$(CUDA_SRCS))
endif

LIB_COMMON := $(B)/lib/libcommon.a
LIB_KERNELS := $(if $(strip $(KERNELS_OBJS)),$(B)/lib/libkernels.a)
LIB_ENGINE := $(if $(strip $(ENGINE_OBJS)),$(B)/lib/libengine.a)
LIB_WORKER := $(if $(strip $(WORKER_OBJS)),$(B)/lib/libworker.a)
LIB_COORD := $(if $(strip $(COORD_OBJS)),$(B)/lib/libcoordinator.a)
LIB_CLI := $(if $(strip $(CLI_OBJS)),$(B)/lib/libcli.a)
ENGINE_LIBS := $(LIB_ENGINE) $(LIB_KERNELS) $(LIB_COMMON)
ALL_LIBS := $(LIB_COORD) $(LIB_CLI) $(LIB_WORKER) $(ENGINE_LIBS)

BINS :=
ifneq ($(ENGINE_TOOL_SRCS),)
BINS += $(B)/bin/reelfarm-engine
endif
ifneq ($(wildcard worker/main.c),)
BINS += $(B)/bin/reelfarm-worker
endif
ifneq ($(wildcard coordinator/main.c),)
BINS += $(B)/bin/reelfarm-coordinator
endif
ifneq ($(wildcard cli/main.c),)
BINS += $(B)/bin/reelctl
endif

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRCS))
TEST_SUPPORT_OBJS := $(call obj,tests/rf_test.c $(wildcard tests/support/*.c))
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRCS))
BENCH_SUPPORT_OBJS := $(call obj,$(filter-out $(BENCH_SRCS),$(wildcard tests/bench/*.c)))

# ---- rules ----------------------------------------------------------------------
.SECONDARY:
.PHONY: all test bench demo deps check-style format clean help cuda-info train-tiny gpu-check gpu-deps
all: cuda-info $(BINS)

cuda-info:
ifneq ($(CUDA_ON),)
ifneq ($(CUDA_SRCS),)
	@echo "make: CUDA backend on ($(NVCC)); NCCL $(if $(NCCL_INC),header $(NCCL_INC)/nccl.h (library opened at run time),not found: --tp > 1 on cuda unavailable)"
else
	@echo "make: nvcc found ($(NVCC)); no CUDA backend sources yet, building the CPU backend only"
endif
else
	@echo "make: CUDA backend off (CUDA=$(CUDA)$(if $(NVCC),, and no nvcc found)); CPU backend only"
endif

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(@D)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --proto_path=proto --c_out=$(B)/gen $<

# Every object waits for the generated headers (order-only), so -j is safe.
$(B)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(B)/obj/gen/%.o: $(B)/gen/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(filter-out -Werror -Wextra,$(CFLAGS)) -c $< -o $@

$(B)/obj/%.cu.o: %.cu
	@mkdir -p $(@D)
	@echo "  NVCC    $<"
	$(Q)$(NVCC) $(NVCC_ALL) -I. -Icommon -Ikernels -DRF_HAVE_CUDA=1 -MMD -MP -c $< -o $@

$(B)/lib/lib%.a:
	@mkdir -p $(@D)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIB_COMMON): $(COMMON_OBJS)
$(B)/lib/libkernels.a: $(KERNELS_OBJS)
$(B)/lib/libengine.a: $(ENGINE_OBJS)
$(B)/lib/libworker.a: $(WORKER_OBJS)
$(B)/lib/libcoordinator.a: $(COORD_OBJS)
$(B)/lib/libcli.a: $(CLI_OBJS)

define link
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS) $(CUDA_LIBS)
endef

$(B)/bin/reelfarm-engine: $(call obj,$(ENGINE_TOOL_SRCS)) $(ENGINE_LIBS)
	$(link)
$(B)/bin/reelfarm-worker: $(call obj,worker/main.c) $(LIB_WORKER) $(ENGINE_LIBS)
	$(link)
$(B)/bin/reelfarm-coordinator: $(call obj,coordinator/main.c) $(LIB_COORD) $(LIB_COMMON)
	$(link)
$(B)/bin/reelctl: $(call obj,cli/main.c) $(LIB_CLI) $(LIB_COMMON)
	$(link)

$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_SUPPORT_OBJS) $(ALL_LIBS)
	$(link)

# Benchmarks have their own main(): they link the libraries, not the test harness.
$(B)/bench/%: $(B)/obj/tests/bench/%.o $(BENCH_SUPPORT_OBJS) $(ALL_LIBS)
	$(link)

# Tests run serially after everything is built: process-level tests start real binaries.
test: all $(TEST_BINS)
	@RF_BUILD=$(CURDIR)/$(B) tests/run.sh $(TEST_BINS)

ifneq ($(BENCH_SRCS),)
bench: all $(BENCH_BINS)
	@RF_BUILD=$(CURDIR)/$(B) bash tests/bench/run.sh $(BENCH_BINS)
else
bench:
	@echo "make bench: no benchmarks yet"
endif

# The README's first command: the main job on the bundled demo model, on a private farm.
demo: all
	@mkdir -p out
	$(B)/bin/reelctl render examples/demo-film.yaml -o out/demo-film.mp4 --workers 2

deps:
	bash deploy/install-deps.sh

# Retrains the bundled demo model models/reel-tiny from scratch (CPU, about 4 h on
# 2 cores; Debian's python3 with torch, numpy, sentencepiece). See its README.md.
train-tiny:
	bash tools/train/train_tiny.sh

gpu-deps:
	bash tools/gpu/fetch-deps.sh

gpu-check:
	bash tools/gpu/gpu-check.sh

STYLE_SRCS = $(shell git ls-files '*.c' '*.h' '*.cu' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' '*.cu' 2>/dev/null)
check-style:
	@command -v clang-format >/dev/null || { echo "check-style: clang-format missing (make deps)"; exit 1; }
	@command -v cppcheck >/dev/null || { echo "check-style: cppcheck missing (make deps)"; exit 1; }
	@echo "  CLANG-FORMAT --dry-run"
	$(Q)clang-format --dry-run --Werror $(STYLE_SRCS)
	@echo "  CPPCHECK"
	$(Q)cppcheck -q --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	  --std=c11 -D__GNUC__ -I common -I kernels -I engine --suppress=missingIncludeSystem \
	  $(filter %.c %.h,$(STYLE_SRCS))
	@echo "check-style: ok"

format:
	clang-format -i $(STYLE_SRCS)

clean:
	rm -rf $(B)

help:
	@sed -n '1,25p' Makefile

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
