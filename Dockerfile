# The operator image: a static binary on a minimal non-root base.
#   docker build -t govcloud-operator .
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin govcloud-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/govcloud-operator /usr/local/bin/govcloud-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/govcloud-operator"]
CMD ["run"]
