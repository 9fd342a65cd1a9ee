import { createSecretKey } from 'node:crypto';
import { Global, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { AppConfig } from '../config/app-config.js';
import { UsersModule } from '../users/users.module.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { ExternalTokens } from './external-tokens.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { PasswordController } from './password.controller.js';
import { PasswordHasher } from './password-hasher.js';
import { SessionRevocations } from './session-revocations.js';
import { SessionStore } from './session.store.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';

@Global()
@Module({
  imports: [
    UsersModule,
    JwtModule.registerAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        // A KeyObject made once: given a string, jsonwebtoken first tries it as a public key
        // (and throws) on every verification, a cost paid by every WebSocket handshake.
        secret: createSecretKey(Buffer.from(config.jwtSecret)) as unknown as string,
        signOptions: { algorithm: 'HS256', expiresIn: config.jwtTtlSeconds },
        verifyOptions: { algorithms: ['HS256'] },
      }),
    }),
  ],
  controllers: [AuthController, SessionsController, PasswordController],
  providers: [AuthService, PasswordHasher, JwtAuthGuard, SessionStore, SessionsService, SessionRevocations, ExternalTokens],
  exports: [AuthService, JwtAuthGuard, SessionRevocations, SessionsService],
})
export class AuthModule {}
