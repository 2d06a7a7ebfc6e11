# gitcap in a container: a static Go binary on a slim Debian with OpenBLAS.
#
#   docker build -t gitcap .
#   docker run --rm gitcap                           # runs "gitcap demo"
#   docker run --rm -v "$PWD:/work" gitcap caption --model git-base-coco photo.jpg
#
# The binary does not link against OpenBLAS: it loads libopenblas.so.0 at run
# time (so it builds with CGO_ENABLED=0 and needs no development files); the
# runtime image installs the shared library only.

# Build stage: Go on Debian bookworm.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -o /out/gitcap ./cmd/gitcap

# Runtime stage: the binary and OpenBLAS's shared library, nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/gitcap /usr/local/bin/gitcap
WORKDIR /work
ENTRYPOINT ["gitcap"]
CMD ["demo"]
