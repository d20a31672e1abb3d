# syntax=docker/dockerfile:1
# Tollgate: one image for the API (`tollgate serve`, the default) and the usage-event worker
# (`tollgate worker`), `tollgate migrate` and the other commands. See docs/operations.md.

ARG NODE_IMAGE=node:20-slim

# 1. Compile TypeScript and build the dashboard (vite, into dist/app) with every dependency.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY app ./app
RUN npm run build

# 2. Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# 3. The runtime: compiled code, production dependencies, migrations; runs as the non-root `node` user.
FROM ${NODE_IMAGE} AS runtime
# jemalloc instead of glibc's malloc: glibc keeps what V8's compiler threads free (while they optimize
# the embedded database's WebAssembly) in per-thread arenas; jemalloc gives it back, from a thread of
# its own (background_thread) rather than in the server's allocations, a second after it was freed
# (dirty_decay_ms; jemalloc's default is ten seconds) (docs/operations.md, "Memory").
# LD_PRELOAD= (empty) runs a container on glibc's malloc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000
# A JavaScript heap of at most 384 MB: V8 otherwise sizes it from the machine's memory and lets
# garbage pile up to a few hundred MB before a full collection (docs/operations.md, "Memory").
ENV NODE_OPTIONS="--max-old-space-size=384" \
    NODE_ENV=production \
    TOLLGATE_HOST=0.0.0.0 \
    TOLLGATE_PORT=8787 \
    TOLLGATE_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY schema.graphql ./schema.graphql
RUN chmod 0755 dist/cli.js \
 && ln -s /app/dist/cli.js /usr/local/bin/tollgate \
 && mkdir -p /data && chown node:node /data
# Only the embedded database (no DATABASE_URL) writes here; production uses PostgreSQL.
VOLUME ["/data"]
USER node
EXPOSE 8787
# /healthz of `serve`, or of `worker` when it listens (TOLLGATE_WORKER_PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const p=process.env.TOLLGATE_WORKER_PORT||process.env.TOLLGATE_PORT||8787;fetch('http://127.0.0.1:'+p+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["tollgate"]
CMD ["serve"]
