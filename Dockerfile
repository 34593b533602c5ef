# syntax=docker/dockerfile:1
# A tether replica: built in the official Rust image, run from a distroless
# image as a non-root user. The binary is its own health check
# (`--healthcheck`), since the runtime image has no shell or curl.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tether-server \
    && cp target/release/tether-server /tether-server

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /tether-server /usr/local/bin/tether-server
# The distroless "nonroot" user, by number so that any runtime can resolve it.
USER 65532:65532
ENV TETHER_LISTEN=0.0.0.0:8080 \
    TETHER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/tether-server", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/tether-server"]
