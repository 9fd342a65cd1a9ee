import { Body, Controller, Get, HttpCode, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Client } from '../auth/client-info.decorator.js';
import type { ClientInfo } from '../auth/session.store.js';
import { AuditQueryDto, AuditPage } from '../audit/dto/audit.dto.js';
import { AuditService } from '../audit/audit.service.js';
import { ApiError } from '../common/api-error.decorator.js';
import { AppError } from '../common/app-error.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { SendResult } from '../messages/dto/message.dto.js';
import { EXTERNAL_ID_PATTERN } from '../users/system-user.js';
import { ApiKeyAuth, type ApiKeyRequest } from './api-key.guard.js';
import { AdminService } from './admin.service.js';
import { AuditAs } from './audit.interceptor.js';
import {
  AddMembersDto,
  AddMembersResult,
  AdminChannelView,
  AdminMessageDto,
  AdminUserView,
  CreateAdminChannelDto,
  MintTokenDto,
  TokenView,
  UpsertUserDto,
} from './dto/admin.dto.js';

/** The `:externalId` path parameter: checked, and documented with its pattern. */
function externalIdOf(raw: string): string {
  if (!EXTERNAL_ID_PATTERN.test(raw)) {
    const why = 'externalId must be 1 to 128 letters, digits or . _ ~ : @ | + = -';
    throw new AppError('invalid_payload', `externalId: ${why}`, { fields: { externalId: [why] } });
  }
  return raw;
}
const ExternalIdParam = () =>
  ApiParam({ name: 'externalId', description: "the product's id of the user", schema: { type: 'string', pattern: EXTERNAL_ID_PATTERN.source, minLength: 1, maxLength: 128 } });

/**
 * The server API, for a product's backend (docs/embedding.md): users by the product's ids, their
 * tokens, deactivation, channels, members, and messages as a user or as the system.
 */
@ApiTags('admin')
@ApiKeyAuth()
@ApiError(400)
@Controller('admin')
export class AdminController {
  constructor(
    private readonly admin: AdminService,
    private readonly audit: AuditService,
  ) {}

  @Put('users/:externalId')
  @AuditAs('user.upsert')
  @ApiOperation({ summary: 'Create or update a user by external id', description: 'Creates the user (201) or changes the profile fields given (200). The user has no password: they come in with tokens.' })
  @ExternalIdParam()
  @ApiOkResponse({ type: AdminUserView, description: 'updated' })
  @ApiCreatedResponse({ type: AdminUserView, description: 'created' })
  @ApiError(409, 'the username is taken by another user, or differs from this user\'s (usernames never change)')
  async upsertUser(@Param('externalId') externalId: string, @Body() dto: UpsertUserDto, @Res({ passthrough: true }) res: Response): Promise<AdminUserView> {
    const { user, created } = await this.admin.upsertUser(externalIdOf(externalId), dto);
    res.status(created ? 201 : 200);
    return user;
  }

  @Post('users/:externalId/tokens')
  @AuditAs('user.token')
  @ApiOperation({ summary: "Mint an access token for a user (a session of its own)" })
  @ExternalIdParam()
  @ApiCreatedResponse({ type: TokenView })
  @ApiError(403, 'the user is deactivated')
  @ApiError(404, 'no user with this external id')
  mintToken(@Param('externalId') externalId: string, @Body() dto: MintTokenDto, @Client() client: ClientInfo): Promise<TokenView> {
    return this.admin.mintToken(externalIdOf(externalId), dto.ttl, client);
  }

  @Post('users/:externalId/deactivate')
  @HttpCode(200)
  @AuditAs('user.deactivate')
  @ApiOperation({
    summary: 'Deactivate a user',
    description: 'Every session ends: their WebSocket connections close with 1008 on every instance, and their tokens (minted, own or product-issued) are refused from then on. Idempotent.',
  })
  @ExternalIdParam()
  @ApiOkResponse({ type: AdminUserView })
  @ApiError(404, 'no user with this external id')
  deactivate(@Param('externalId') externalId: string, @Req() req: ApiKeyRequest): Promise<AdminUserView> {
    return this.admin.deactivate(externalIdOf(externalId), req.apiKeyActor ?? 'apikey:unknown');
  }

  @Post('channels')
  @AuditAs('channel.create')
  @ApiOperation({ summary: 'Create a channel with members (by external id, accepted at once)' })
  @ApiCreatedResponse({ type: AdminChannelView })
  @ApiError(404, 'a member is unknown or deactivated (`details.externalIds`)')
  @ApiError(409, 'a public channel has this name')
  createChannel(@Body() dto: CreateAdminChannelDto): Promise<AdminChannelView> {
    return this.admin.createChannel(dto);
  }

  @Post('channels/:id/members')
  @AuditAs('channel.members.add')
  @ApiOperation({ summary: 'Add members to a channel (by external id, accepted at once; history before them counts as read)' })
  @ApiCreatedResponse({ type: AddMembersResult })
  @ApiError(404, 'no such channel (DMs included), or a user is unknown or deactivated (`details.externalIds`)')
  addMembers(@UuidParam() id: string, @Body() dto: AddMembersDto): Promise<AddMembersResult> {
    return this.admin.addMembers(id, dto);
  }

  @Post('channels/:id/messages')
  @AuditAs('message.post')
  @ApiOperation({
    summary: 'Post a message as a member, or a system message',
    description: 'With `as`: a message of that user, with every rule of a send (member, idempotent by `clientMsgId`). Without: a system message (`kind: "system"`, `sender: null`) delivered like any other.',
  })
  @ApiCreatedResponse({ type: SendResult })
  @ApiError(403, '`as` is deactivated, or not a member of this public channel')
  @ApiError(404, 'no such channel, or no user `as`')
  @ApiError(409, 'a system message with this clientMsgId exists in another channel')
  postMessage(@UuidParam() id: string, @Body() dto: AdminMessageDto): Promise<SendResult> {
    return this.admin.postMessage(id, dto);
  }

  @Get('audit')
  @AuditAs('audit.read')
  @ApiOperation({ summary: 'The audit log, newest first' })
  @ApiOkResponse({ type: AuditPage })
  auditLog(@Query() q: AuditQueryDto): Promise<AuditPage> {
    return this.audit.page(q.cursor, q.limit);
  }
}
