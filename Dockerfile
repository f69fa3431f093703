# The broker's container image: a static Go binary on distroless, run as the
# image's nonroot user (65532). Build it from the repository root:
#
#   docker build -t reciprocal-broker:VERSION .
#   docker build --platform linux/arm64 -t reciprocal-broker:VERSION .   # Graviton (CpuArchitecture=ARM64)
#
# No Docker engine runs in this project's test machine, so scripts/test.sh does
# not build this file; infra/cloudformation/README.md says how it is used.

# Build stage: compile on the build machine's platform, for the target's.
# Pin both base images by digest (@sha256:...) in your own pipeline.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags='-s -w' -o /out/broker ./cmd/broker

# Run stage: no shell, no package manager; CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/broker /broker
USER 65532:65532
# HTTP gateway and gRPC; set BROKER_HTTP_ADDR=0.0.0.0:8080 and
# BROKER_GRPC_ADDR=0.0.0.0:9090 (the broker listens on loopback by default).
EXPOSE 8080 9090
ENTRYPOINT ["/broker"]
CMD ["serve"]
