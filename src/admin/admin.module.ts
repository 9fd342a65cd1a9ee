import { Module } from '@nestjs/common';
import { ChannelsModule } from '../channels/channels.module.js';
import { MessagesModule } from '../messages/messages.module.js';
import { UsersModule } from '../users/users.module.js';
import { AdminController } from './admin.controller.js';
import { AdminService } from './admin.service.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { AuditInterceptor } from './audit.interceptor.js';

/** The server API under /admin (PARLEY_API_KEYS). */
@Module({
  imports: [UsersModule, ChannelsModule, MessagesModule],
  controllers: [AdminController],
  providers: [AdminService, ApiKeyGuard, AuditInterceptor],
})
export class AdminModule {}
