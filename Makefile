# gitcap: the two commands a new user needs are `make demo` and `make test`.
# Both install OpenBLAS (Debian's libopenblas0) first when it is missing.
# Nothing links against it: gitcap loads libopenblas.so.0 at run time and
# falls back to a pure-Go BLAS (about 20x slower, with a warning) without it,
# so `go build ./...` and `go install` work anywhere.

GO ?= go

.PHONY: deps demo test test-purego build bench vet

# Install OpenBLAS with apt, as root directly or else through sudo. `env`
# carries DEBIAN_FRONTEND through sudo, and works when SUDO is empty (a
# leading VAR=value would then not be an assignment). Any failure only warns.
deps:
	@if dpkg -s libopenblas0 >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "warning: no apt-get: install OpenBLAS (libopenblas.so.0) yourself; gitcap uses the pure-Go BLAS (much slower) without it"; \
	else \
		echo "installing libopenblas0 (OpenBLAS, for fast matrix multiplies)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		{ $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0; } || \
		echo "warning: OpenBLAS could not be installed; gitcap uses the pure-Go BLAS (much slower)"; \
	fi

build: deps
	$(GO) build -o bin/gitcap ./cmd/gitcap

demo: build
	./bin/gitcap demo

test: deps
	$(GO) test -timeout 20m ./...

# The kernel and model tests again on the pure-Go BLAS (-short: without the
# git-base-shaped models, which take many minutes at pure-Go speed).
test-purego:
	GITCAP_OPENBLAS=off $(GO) test -short -timeout 20m ./graph ./gitmodel

vet:
	gofmt -l . && $(GO) vet ./...

bench: build
	./bin/gitcap bench
