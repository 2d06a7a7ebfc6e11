# gitcap: the two commands a new user needs are `make demo` and `make test`.
# Both install OpenBLAS (Debian's libopenblas-dev) first when it is missing.

GO ?= go

# OpenBLAS misdetects some virtual AVX-512 CPUs and then runs ~5x slower; it reads
# OPENBLAS_CORETYPE once, when it loads. (The gitcap binary sets it itself.)
ifeq ($(OPENBLAS_CORETYPE),)
  ifneq ($(shell grep -m1 -o -w avx512f /proc/cpuinfo 2>/dev/null),)
    export OPENBLAS_CORETYPE := SkylakeX
  endif
endif

.PHONY: deps deps-mpi demo test build bench vet

# Without OpenBLAS's development files (apt unavailable), build the pure-Go
# BLAS instead: everything works, matrix products are ~20x slower.
GOTAGS = $(shell ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so ' || echo -tags noopenblas)

deps:
	@dpkg -s libopenblas-dev >/dev/null 2>&1 || { \
		echo "installing libopenblas-dev (OpenBLAS, for fast matrix multiplies)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev; } || \
		echo "warning: OpenBLAS could not be installed; using the pure-Go BLAS (much slower)"

# Open MPI (Debian's openmpi-bin) for data-parallel training and for the
# mpirun tests of `make test`, which skip without it (and fail under CI=true).
# gitcap itself never needs it unless started by mpirun.
MPIRUN ?= mpirun
deps-mpi:
	@command -v $(MPIRUN) >/dev/null 2>&1 || { \
		echo "installing openmpi-bin (Open MPI, for data-parallel training under mpirun)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin; }

build: deps
	$(GO) build $(GOTAGS) -o bin/gitcap ./cmd/gitcap

demo: build
	./bin/gitcap demo

test: deps
	$(GO) test $(GOTAGS) -timeout 20m ./...

vet:
	gofmt -l . && $(GO) vet ./...

bench: build
	./bin/gitcap bench
