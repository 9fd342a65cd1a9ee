import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions, migratePostgres } from './data-source-options.js';
import { DatabaseWriter } from './database-writer.js';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig],
      useFactory: async (config: AppConfig) => {
        const options = dataSourceOptions(config.database, { sqliteSynchronous: config.sqliteSynchronous });
        // PostgreSQL migrates first, under a lock shared by every replica (see migratePostgres).
        if (config.database.type === 'postgres') await migratePostgres(config.database, options);
        return {
          ...options,
          migrationsRun: config.database.type === 'sqlite',
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
