# The broker's container image: a static Go binary on distroless, run as the
# image's nonroot user (65532). Build it from the repository root:
#
#   docker build -t reciprocal-broker:VERSION \
#     --build-arg VERSION=VERSION --build-arg REVISION=$(git rev-parse HEAD) .
#   docker build --platform linux/arm64 ... .   # Graviton (CpuArchitecture=ARM64)
#
# VERSION and REVISION (defaults: devel, unknown) go into the binary (broker
# --version, the broker_build_info metric, the start-up log line) and into the
# image's OCI labels: the build context has no .git for Go to read them from.
#
# No Docker engine runs in this project's test machine, so scripts/test.sh does
# not build this file; infra/cloudformation/README.md says how it is used.

# Build stage: compile on the build machine's platform, for the target's.
# Pin both base images by digest (@sha256:...) in your own pipeline.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=devel
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
      -o /out/broker ./cmd/broker

# Run stage: no shell, no package manager; CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
ARG REVISION=unknown
ARG SOURCE=https://github.com/reciprocal-broker/broker
LABEL org.opencontainers.image.title="reciprocal-broker" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/broker /broker
USER 65532:65532
# HTTP gateway and gRPC. The binary listens on loopback by default; in a
# container that no one outside could reach, so the image listens on every
# interface. A container's environment may still set other addresses.
ENV BROKER_HTTP_ADDR=0.0.0.0:8080 \
    BROKER_GRPC_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["/broker"]
CMD ["serve"]
