import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions, ensurePostgresSchema } from './data-source-options.js';
import { DatabaseWriter } from './database-writer.js';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: async (config: AppConfig) => {
        await ensurePostgresSchema(config.database);
        return {
          ...dataSourceOptions(config.database, { sqliteSynchronous: config.sqliteSynchronous }),
          // Fail fast at boot: a database that is not there is a configuration error.
          retryAttempts: 0,
        };
      },
    }),
  ],
  providers: [DatabaseWriter],
  exports: [DatabaseWriter],
})
export class DatabaseModule {}
