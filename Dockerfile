# syntax=docker/dockerfile:1
#
# One image for every role: `clawops operator` (default), `clawops gateway --config
# /etc/clawops/gateway.json` and `clawops cron run <name>`. Built by `make image`.
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# Bookworm here because the runtime is distroless cc-debian12: the binary links glibc
# dynamically, and a builder on a newer Debian (trixie, glibc 2.41) can emit symbol
# versions that debian12's glibc 2.36 lacks. Bump the two images together.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub crate roots, so this layer (nearly all of the build
# time) is reused until Cargo.toml or Cargo.lock change. benches/ is copied because the
# manifest declares [[bench]] targets and cargo refuses to load it when their files are
# missing; they are not compiled by `cargo build`.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs
# The registry is a cache mount so a Cargo.lock bump downloads only what changed; the
# compiled dependencies stay in target/ inside the layer, which (unlike a cache mount)
# can be exported to a CI layer cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    cargo build --profile dist --locked --bin clawops

COPY src ./src
# COPY keeps the build context's mtimes, which can be older than the stub build above;
# cargo would then judge the crate fresh and keep the stub. Touching the crate roots
# forces the rebuild, and the --version check fails the build if the stub (which
# prints nothing) got through anyway. The binary goes to /out so the runtime stage
# never depends on where target/ lives.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    touch src/main.rs src/lib.rs \
 && cargo build --profile dist --locked --bin clawops \
 && install -D -m 0755 target/dist/clawops /out/clawops \
 && strip /out/clawops \
 && /out/clawops --version | grep -q '^clawops '

# distroless cc: glibc, libgcc_s (Rust's unwinder), the system CA store (kube-client's
# rustls platform verifier reads it; reqwest bundles webpki roots), tzdata and /tmp,
# with no shell or package manager to exploit.
FROM gcr.io/distroless/cc-debian12:nonroot

# Root-owned and not writable by the runtime user, so a compromised process cannot
# replace its own binary even where the root filesystem is not read-only.
COPY --from=builder /out/clawops /usr/local/bin/clawops

# Numeric rather than the base image's "nonroot" name: the kubelet can only enforce
# runAsNonRoot on a numeric image user when a pod does not set runAsUser itself.
# 65532 is consts::RUN_AS_USER, which the operator sets in every pod it creates.
USER 65532:65532

# Documentation only: operator /metrics, /healthz, /readyz (--listen default) and the
# gateway (consts::GATEWAY_PORT). One image serves both, so both are listed.
EXPOSE 8080 18789

ENTRYPOINT ["/usr/local/bin/clawops"]
CMD ["operator"]

# Last, so a new VERSION only rewrites image metadata and never invalidates a layer.
ARG VERSION=dev
LABEL org.opencontainers.image.title="clawops" \
      org.opencontainers.image.description="Run a personal AI assistant on Kubernetes: operator, Telegram gateway and node host in one binary" \
      org.opencontainers.image.source="https://github.com/clawops/clawops" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
