# syntax=docker/dockerfile:1
#
# drbot's container image. Multi-arch (the Go build cross-compiles; only the
# runtime stage runs per platform):
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#     -t ghcr.io/drbot-dev/drbot:$(git describe --tags --always) --push .
#
# The base images are pinned by digest: a build whose GO_IMAGE or BASE_IMAGE
# carries no @sha256: digest fails, unless --build-arg ALLOW_UNPINNED=true (a
# local experiment). `make image` builds from deploy/image/base-images.lock,
# which scripts/pin-base-images writes by looking the digests up:
#   docker buildx imagetools inspect golang:1.26-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect debian:bookworm-slim --format '{{json .Manifest.Digest}}'
# The digest of a multi-arch index pins every platform at once. The defaults
# below name the images by tag only because no registry was reachable where
# this file was written, so no digest could be looked up or checked here.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (deploy/helm/drbot).
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# Build: a static drbot binary for the target platform, built on the build
# platform (no emulation).
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG GO_IMAGE
ARG BASE_IMAGE
ARG ALLOW_UNPINNED=false
RUN for img in "$GO_IMAGE" "$BASE_IMAGE"; do \
      case "$img" in *@sha256:*) ;; *) \
        if [ "$ALLOW_UNPINNED" != true ]; then echo "base image $img is not pinned by digest: run scripts/pin-base-images and make image (or pass --build-arg ALLOW_UNPINNED=true for a local experiment)" >&2; exit 1; fi ;; \
      esac; \
    done
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/drbot-dev/drbot/internal/buildinfo.Version=${VERSION} -X github.com/drbot-dev/drbot/internal/buildinfo.Commit=${COMMIT}" \
      -o /out/drbot ./cmd/drbot

# Runtime: pg_restore/psql/pg_dump of the same major version as the databases
# drbot restores (15), CA certificates for Slack/PagerDuty/AWS, and a non-root
# user. psql must be 15.14 or later: its \restrict (the CVE-2025-8714 fix) is
# what makes restoring a plain-SQL dump safe, and restore-db refuses plain SQL
# with an older client. Debian bookworm and bookworm-security carry 15.14+
# (15.17 and 15.18 at the time of writing); the build fails otherwise.
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client-15 tzdata \
 && v=$(dpkg-query -W -f='${Version}' postgresql-client-15) \
 && if ! dpkg --compare-versions "$v" ge 15.14; then echo "postgresql-client-15 $v is older than 15.14 (no \\restrict)" >&2; exit 1; fi \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/drbot --create-home drbot
COPY --from=build /out/drbot /usr/local/bin/drbot
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=""
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="drbot" \
      org.opencontainers.image.description="Disaster-recovery ChatOps bot: Slack and PagerDuty, two-person approvals, verified recovery actions, tamper-evident audit log" \
      org.opencontainers.image.source="https://github.com/drbot-dev/drbot" \
      org.opencontainers.image.url="https://github.com/drbot-dev/drbot" \
      org.opencontainers.image.documentation="https://github.com/drbot-dev/drbot/blob/main/docs/operations.md" \
      org.opencontainers.image.vendor="drbot-dev" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
USER 10001:10001
WORKDIR /var/lib/drbot
ENV DRBOT_LISTEN=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/drbot"]
CMD ["serve"]
