# syntax=docker/dockerfile:1
# Build: a static drbot binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/drbot-dev/drbot/internal/buildinfo.Version=${VERSION} -X github.com/drbot-dev/drbot/internal/buildinfo.Commit=${COMMIT}" \
      -o /out/drbot ./cmd/drbot

# Runtime: pg_restore/psql/pg_dump of the same major version as the databases
# drbot restores (15), CA certificates for Slack/PagerDuty/AWS, and a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client-15 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/drbot --create-home drbot
COPY --from=build /out/drbot /usr/local/bin/drbot
USER 10001:10001
WORKDIR /var/lib/drbot
ENV DRBOT_LISTEN=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/drbot"]
CMD ["serve"]
