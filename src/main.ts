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
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { bufferLogs: true });
  configureApp(app, config);
  // SIGTERM/SIGINT run the modules' shutdown hooks: stop accepting, close sockets, drain writes.
  app.enableShutdownHooks();
  await app.listen(config.port);
  if (config.jwtSecretGenerated) {
    new Logger('Bootstrap').warn(`JWT_SECRET is not set: using a generated one kept in ${config.dataDir}/jwt-secret`);
  }
}

void bootstrap();
