# blast's image, for `blast k8s` Jobs and plain `docker run`.
#   docker build -t blast:0.1 .
#   docker run --rm blast:0.1 https://api.example.com/ -u 64 -t 30s
#
# Build stage: the release binary (fat LTO, as the workspace profile sets).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p blast \
 && strip target/release/blast

# Runtime: Debian slim for glibc and /bin/sh (the Job's pod command uses it), CA certificates
# for https:// targets, and blast alone.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/blast /usr/local/bin/blast
USER 65534:65534
ENTRYPOINT ["blast"]
