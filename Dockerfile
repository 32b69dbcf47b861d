# syntax=docker/dockerfile:1
# The operator image: a static (musl) binary on distroless/static, non-root,
# nothing else in it (no shell, no package manager).
#   docker build -t govcloud-operator:0.1.0 .
# The chart runs it with a read-only root filesystem as UID 65532.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts, so a rebuild after a
# source change compiles only this crate.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin govcloud-operator \
 && install -D target/x86_64-unknown-linux-musl/release/govcloud-operator /out/govcloud-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="govcloud-operator" \
      org.opencontainers.image.description="Runs a district government cloud by its measures on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/govcloud-operator /usr/local/bin/govcloud-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/govcloud-operator"]
CMD ["run"]
