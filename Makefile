# deepercluster — build, test and sanitizer targets.
#
#   make                 release build (-O3 -march=$(MARCH)) in build/release
#   make BUILD=debug     -O0 -g in build/debug
#   make BUILD=asan      ASan + UBSan in build/asan
#   make test            build and run every test of $(BUILD)
#   make check           the full suite: release tests, then sanitizer tests
#   make AVX512=1        target x86-64-v4 (AVX-512) instead of x86-64-v3
#   make NO_OMP=1        build without OpenMP
#   make NO_DNNL=1       GEMM through OpenBLAS instead of oneDNN
#   make NO_MPI=1        without MPI (single-process communication backend)
#   make CUDA=1          with the GPU engine (src/gpu: CUDA >= 12, cuDNN 9,
#                        cuBLAS; nvcc on PATH or CUDA_HOME) in build/<mode>-cuda
#   make CUDA=1 check-gpu  the GPU suite (says so and stops when no GPU)
#   make CUDA=1 bundle   the program, tests, benchmarks and their non-system
#                        libraries in one relocatable archive (build/*.tar.xz)
#   make install         the program, the library (static and shared), its
#                        headers and deepercluster.pc under $(PREFIX)
#                        (/usr/local; DESTDIR for staging); make uninstall
#
# Dependencies come from Debian packages (scripts/setup.sh) via pkg-config.

BUILD ?= release
B := build/$(BUILD)$(if $(filter 1,$(CUDA)),-cuda)
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

ifeq ($(AVX512),1)
MARCH ?= x86-64-v4
else
MARCH ?= x86-64-v3
endif

PKGS := openblas lapacke libcjson libpng libjpeg zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
# -fPIC: the same objects make the static and the shared library.
CFLAGS_COMMON := $(WARN) -Iinclude -Isrc $(PKG_CFLAGS) -fPIC -MMD -MP
LDLIBS := $(PKG_LIBS) -lm -lpthread

ifneq ($(NO_DNNL),1)
CFLAGS_COMMON += -DDC_HAVE_DNNL
LDLIBS += -ldnnl
endif

ifneq ($(NO_MPI),1)
ifeq ($(shell pkg-config --exists ompi-c && echo yes),yes)
CFLAGS_COMMON += -DDC_HAVE_MPI $(shell pkg-config --cflags ompi-c)
LDLIBS += $(shell pkg-config --libs ompi-c)
HAVE_MPI := 1
endif
endif

ifneq ($(NO_OMP),1)
CFLAGS_COMMON += -fopenmp
LDFLAGS += -fopenmp
else
CFLAGS_COMMON += -Wno-unknown-pragmas # the omp pragmas, ignored
endif

ifeq ($(CUDA),1)
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(if $(CUDA_HOME),$(CUDA_HOME)/bin/nvcc),/usr/local/cuda/bin/nvcc)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CFLAGS_COMMON += -DDC_HAVE_CUDA -isystem $(CUDA_HOME)/include
LDLIBS += -L$(CUDA_LIBDIR) -lcudnn -lcublas -lcudart -lstdc++
# sm_80 (A100) and sm_90 (H100/H200) machine code, PTX for later cards
NVCC_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -O3 -std=c++17 $(NVCC_ARCH) -Xcompiler -fPIC -Werror all-warnings -Isrc/gpu -Isrc
endif

ifeq ($(BUILD),release)
CFLAGS_MODE := -O3 -march=$(MARCH) -g
else ifeq ($(BUILD),debug)
CFLAGS_MODE := -O0 -g3 -march=$(MARCH)
else ifeq ($(BUILD),fuzz-lib)
CFLAGS_MODE := -O1 -g
else ifeq ($(BUILD),asan)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS_MODE := -O1 -g -march=$(MARCH) $(SAN)
LDFLAGS += $(SAN)
else
$(error BUILD must be release, debug or asan)
endif

CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(EXTRA_CFLAGS)

# Library modules, bottom layer first. A module includes only those before it.
# The GPU engine (src/gpu) sits beside the kernels: gpu.c + kernels.cu with
# CUDA=1, else stub.c, which says how to get it.
ifeq ($(CUDA),1)
GPU_SRC := src/gpu/gpu.c src/gpu/step.c src/gpu/kmeans_gpu.c
else
GPU_SRC := src/gpu/stub.c
endif
LIB_SRC := $(wildcard src/core/*.c) $(wildcard src/io/*.c) $(wildcard src/comm/*.c) $(wildcard src/kernels/*.c) \
           $(GPU_SRC) $(wildcard src/data/*.c) $(wildcard src/cluster/*.c) $(wildcard src/nn/*.c) \
           $(wildcard src/train/*.c) $(wildcard src/eval/*.c) $(wildcard src/ffi/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
ifeq ($(CUDA),1)
LIB_OBJ += $(B)/src/gpu/kernels.o $(B)/src/gpu/kmeans.o
endif
CLI_OBJ := $(CLI_SRC:%.c=$(B)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)

VERSION := $(shell sed -n 's/^\#define DC_VERSION_STRING "\(.*\)"/\1/p' include/dc/core.h)
SONAME := libdeepercluster.so.$(firstword $(subst ., ,$(VERSION)))
LIB := $(B)/libdeepercluster.a
SHLIB := $(B)/libdeepercluster.so.$(VERSION)
BIN := $(B)/deepercluster

.PHONY: all test check clean features install uninstall
.SECONDARY:
all: features $(BIN) $(SHLIB) $(TEST_BIN)

features:
	@pkg-config --exists $(PKGS) && echo "✓ dependencies ($(PKGS))" || \
	  { echo "✗ missing pkg-config packages; run scripts/setup.sh"; exit 1; }
	@echo "  build=$(BUILD) march=$(MARCH) openmp=$(if $(filter 1,$(NO_OMP)),off,on) onednn=$(if $(filter 1,$(NO_DNNL)),off,on) mpi=$(if $(HAVE_MPI),on,off) cuda=$(if $(filter 1,$(CUDA)),$(NVCC),off)"

# Objects are rebuilt when the flags change (AVX512=1, NO_DNNL=1, a new
# flag in this file): $(FLAGS) holds the last ones.
FLAGS := $(B)/.cflags
$(shell mkdir -p $(B) && { echo '$(CFLAGS)' | cmp -s - $(FLAGS) || echo '$(CFLAGS)' > $(FLAGS); })

$(B)/%.o: %.c $(FLAGS)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(B)/src/gpu/kernels.o: src/gpu/kernels.cu src/gpu/gpu_kernels.h src/core/philox.h $(FLAGS)
	@mkdir -p $(dir $@)
	@echo "  NVCC $<"
	@$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(B)/src/gpu/kmeans.o: src/gpu/kmeans.cu src/gpu/gpu_kernels.h $(FLAGS)
	@mkdir -p $(dir $@)
	@echo "  NVCC $<"
	@$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(B)/tests/%: $(B)/tests/%.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

test: all
	@bash tests/run.sh $(B)

# ...then, where a CUDA toolkit is installed, compiles the GPU build (its
# programs and benchmarks) and runs the GPU suite, which says that it
# skipped when no GPU is visible.
check:
	$(MAKE) BUILD=release test
	$(MAKE) BUILD=asan test
	@if command -v nvcc >/dev/null 2>&1 || [ -x "$${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then \
	  $(MAKE) CUDA=1 all bench && $(MAKE) CUDA=1 check-gpu; \
	else echo "check: no CUDA toolkit (nvcc): the GPU build was not compiled"; fi

clean:
	rm -rf build

# Installation. deepercluster.pc: `pkg-config --cflags --libs deepercluster`
# for the shared library, `--static` adds what the static one needs.
PREFIX ?= /usr/local
DEST := $(DESTDIR)$(PREFIX)
PC_REQUIRES_PRIVATE := $(filter-out libcjson,$(PKGS))$(if $(HAVE_MPI), ompi-c)
PC_LIBS_PRIVATE := $(if $(filter 1,$(NO_DNNL)),,-ldnnl )$(if $(filter 1,$(NO_OMP)),,-lgomp )-lm -lpthread
install: all
	install -d $(DEST)/bin $(DEST)/lib/pkgconfig $(DEST)/include/dc
	install -m 755 $(BIN) $(DEST)/bin/
	install -m 644 $(LIB) $(DEST)/lib/
	install -m 755 $(SHLIB) $(DEST)/lib/
	ln -sf libdeepercluster.so.$(VERSION) $(DEST)/lib/$(SONAME)
	ln -sf $(SONAME) $(DEST)/lib/libdeepercluster.so
	install -m 644 include/dc/*.h $(DEST)/include/dc/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES_PRIVATE)|' -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|' \
	    deepercluster.pc.in > $(DEST)/lib/pkgconfig/deepercluster.pc

uninstall:
	rm -f $(DEST)/bin/deepercluster $(DEST)/lib/libdeepercluster.a $(DEST)/lib/libdeepercluster.so* \
	      $(DEST)/lib/pkgconfig/deepercluster.pc
	rm -rf $(DEST)/include/dc

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:%=%.d)

# The corpus replayer (built with the tests; run by tests/test_fuzz.sh) and
# the libFuzzer targets (`make fuzz`, clang): see fuzz/README.md.
FUZZ_REPLAY := $(B)/fuzz/fuzz_replay
all: $(FUZZ_REPLAY)
$(B)/fuzz/replay.o: fuzz/fuzz_target.c
	@mkdir -p $(dir $@)
	@echo "  CC $< (replay)"
	@$(CC) $(CFLAGS) -DDC_FUZZ_REPLAY -c $< -o $@
$(FUZZ_REPLAY): $(B)/fuzz/replay.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
FUZZ_KINDS := npy safetensors idx cifar list pack image
.PHONY: fuzz
fuzz:
	@mkdir -p build/fuzz
	$(MAKE) BUILD=fuzz-lib CC=clang NO_OMP=1 NO_MPI=1 EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build/fuzz-lib/libdeepercluster.a
	for k in $(FUZZ_KINDS); do \
	  clang $(WARN) -Iinclude $(PKG_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -DDC_FUZZ_KIND=\"$$k\" \
	    fuzz/fuzz_target.c build/fuzz-lib/libdeepercluster.a $(LDLIBS) -o build/fuzz/fuzz_$$k || exit 1; done

# Benchmarks (run on demand, not by `make test`): build/<mode>/bench/*
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
.PHONY: bench
bench: $(BENCH_BIN)
$(B)/bench/%: $(B)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
-include $(BENCH_BIN:%=%.d) $(B)/fuzz/replay.d

# The GPU suite: tests/gpu/*.c, built with CUDA=1 only; each says plainly
# that it skipped when no GPU is visible.
GPU_TEST_SRC := $(wildcard tests/gpu/test_*.c)
GPU_TEST_BIN := $(GPU_TEST_SRC:tests/gpu/%.c=$(B)/tests/gpu/%)
ifeq ($(CUDA),1)
all: $(GPU_TEST_BIN)
endif
$(B)/tests/gpu/%: $(B)/tests/gpu/%.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
-include $(GPU_TEST_BIN:%=%.d)
.PHONY: check-gpu bundle
check-gpu:
ifneq ($(CUDA),1)
	$(MAKE) CUDA=1 check-gpu
else
check-gpu: all
	@bash tests/gpu/run.sh $(B)
endif

# A relocatable archive for a GPU node without our Debian packages: bin/,
# tests/, bench/, lib/ (every non-system library the binaries link, never
# the CUDA, cuDNN or driver ones) and a launcher, run.sh, that sets the
# library path. See scripts/bundle.sh.
bundle: all bench
	@bash scripts/bundle.sh $(B) build/deepercluster-$(VERSION)$(if $(filter 1,$(CUDA)),-cuda).tar.xz
