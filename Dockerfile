# mcp-updater: one image for every role (scheduler, worker, dashboard, CLI).
# The build stage type-checks the TypeScript sources and compiles them into dist/ (npm run build);
# the runtime stage has production dependencies only and runs dist/ (the sources beside it let the
# bin see that dist/ matches them; without TypeScript it would refuse a stale dist/, never rebuild).
#
#   docker build -t mcp-updater .
#   docker run --rm mcp-updater --help

ARG NODE_VERSION=20

# --- build: install everything, type-check and compile (npm run build -> dist/) --------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json mcp-servers.yaml ./
COPY bin ./bin
COPY cli ./cli
COPY producers ./producers
COPY workers ./workers
COPY dashboard ./dashboard
COPY shared ./shared
COPY test ./test
COPY bench ./bench
RUN npm run build

# --- runtime: production dependencies, the compiled dist/, a non-root user --------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    MCP_SERVERS_CONFIG=/app/mcp-servers.yaml \
    MCP_SERVERS_PATH=/data/servers \
    BACKUP_DIR=/data/backups \
    CACHE_DIR=/data/cache \
    LOG_DIR=/data/logs
WORKDIR /app
# bubblewrap: the sandbox every smoke test runs in (see README, "Security model").
# python3 with pip and venv: Python MCP servers (pypi: in the inventory) are staged with pip.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/tsconfig.json /app/tsconfig.build.json /app/mcp-servers.yaml ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/cli ./cli
COPY --from=build /app/producers ./producers
COPY --from=build /app/workers ./workers
COPY --from=build /app/dashboard ./dashboard
COPY --from=build /app/shared ./shared
# Named volumes mounted here start with this ownership, so the non-root user can write them.
RUN mkdir -p /data/servers /data/backups /data/logs /data/cache && chown -R node:node /data
USER node
EXPOSE 10250
ENTRYPOINT ["node", "bin/mcp-updater.js"]
CMD ["start"]
