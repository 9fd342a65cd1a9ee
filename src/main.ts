import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { ConfigError, loadConfig } from './config/app-config.js';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { bufferLogs: true, bodyParser: false });
  configureApp(app, config);
  if (config.host) await app.listen(config.port, config.host);
  else await app.listen(config.port);
  const shown = !config.host || config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  new Logger('Bootstrap').log(
    `listening on http://${shown.includes(':') ? `[${shown}]` : shown}:${config.port} (WebSocket at /ws${config.docsEnabled ? ', docs at /docs' : ''})`,
  );
  // SIGTERM/SIGINT: the modules' shutdown hooks stop accepting, close sockets with 1001 and let
  // queued writes commit; whatever happens, the process is gone within 10 s.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => process.exit(1), 10_000).unref();
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  if (config.jwtSecretGenerated) {
    new Logger('Bootstrap').warn(`JWT_SECRET is not set: using a generated one kept in ${config.dataDir}/jwt-secret`);
  }
}

void bootstrap();
