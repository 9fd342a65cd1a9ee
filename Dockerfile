# syntax=docker/dockerfile:1
# Parley: build with the full toolchain, run on the slim image. See docs/deployment.md.
#   docker build -t parley .
#   docker run -e DATABASE_URL=postgres://... -e REDIS_URL=redis://... -e JWT_SECRET=... -p 3000:3000 parley

FROM node:20-bookworm AS build
WORKDIR /app
# Scarf (a transitive dependency) would report the install over the network: off.
ENV SCARF_ANALYTICS=false
# better-sqlite3 is built from source (.npmrc: build-from-source), with the image's python3,
# make and g++; argon2 ships its own prebuilt binaries.
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# The clients are built beside the server (the web client is served at /; the SDK, the terminal client).
COPY sdk ./sdk
COPY clients ./clients
COPY scripts/build-clients.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The data folder holds the SQLite file and a generated JWT secret when those are used
# (one instance); a cluster sets DATABASE_URL and JWT_SECRET and writes nothing here.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
# Parley answers SIGTERM by closing its WebSockets with 1001 and exiting within 10 s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
