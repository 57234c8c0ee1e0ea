# One image for every Shop process; the container's command picks the binary:
#   docker run shop:local inventory | customers | orders | payments | projection-worker |
#                         catalog | orders-view | customers-view | gateway | shop provision
# Build: docker build -t shop:local .   (docker-compose.yml does this for you)

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Every binary of the workspace: the services and `shop`.
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && find target/release -maxdepth 1 -type f -executable -exec cp {} /out/ \;

FROM debian:bookworm-slim
# ca-certificates for TLS to managed PostgreSQL/NATS; curl for the healthchecks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin shop
COPY --from=builder /out/ /usr/local/bin/
USER shop
ENV LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080 8081 8082 8083 8084 8090 8091 8092 8093
CMD ["gateway"]
