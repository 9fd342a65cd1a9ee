// For the TypeORM CLI only (`npm run migration:generate`): the app builds its own DataSource.
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';

const config = loadConfig();
export default new DataSource({ ...dataSourceOptions(config.database, { migrationsRun: false }) });
