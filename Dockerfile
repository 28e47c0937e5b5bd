# codearts-bot: one image, one config file, one SQLite volume.
#   docker build -t codearts-bot .
#   docker run -v codearts-bot-data:/data -v $PWD/config/codearts-bot.toml:/etc/codearts-bot/config.toml:ro \
#              -e CODEARTS_TOKEN=... codearts-bot

# ---- build ----------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependency layer: build the dependency graph against stub sources so that editing src/ does
# not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src migrations \
 && echo 'fn main() {}' > src/main.rs \
 && echo '' > src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/deps/codearts_bot* target/release/codearts-bot*
COPY src ./src
COPY migrations ./migrations
# The status board's templates and stylesheet/script are compiled into the binary.
COPY templates ./templates
COPY assets ./assets
RUN cargo build --release --locked \
 && strip target/release/codearts-bot

# ---- runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin codearts-bot \
 && mkdir -p /data /etc/codearts-bot \
 && chown codearts-bot /data
COPY --from=build /src/target/release/codearts-bot /usr/local/bin/codearts-bot
COPY config/codearts-bot.example.toml /etc/codearts-bot/config.example.toml
USER codearts-bot
WORKDIR /data
VOLUME ["/data"]
ENV CODEARTS_BOT_CONFIG=/etc/codearts-bot/config.toml \
    RUST_LOG=info
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/codearts-bot"]
CMD ["run", "--log-format", "json"]
