import { Body, Controller, Delete, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiError } from '../common/api-error.decorator.js';
import { UuidParam } from '../common/uuid-param.decorator.js';
import { RateLimited } from '../rate-limit/http-rate-limit.guard.js';
import type { AuthSession } from './auth.service.js';
import { Authenticated, CurrentUser } from './authenticated.decorator.js';
import { Client } from './client-info.decorator.js';
import { AuthResultDto } from './dto/credentials.dto.js';
import { RefreshDto, SessionView, WsTicketDto } from './dto/session.dto.js';
import type { ClientInfo } from './session.store.js';
import { SessionsService } from './sessions.service.js';

@ApiTags('auth')
@Controller('auth')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  @Post('refresh')
  @RateLimited('write') // per client address: nobody is authenticated yet
  @HttpCode(200)
  @ApiOperation({ summary: 'New access and refresh tokens for a refresh token (rotation: each one works once)' })
  @ApiOkResponse({ type: AuthResultDto })
  @ApiError(400)
  @ApiError(401, 'unknown, expired or ended; a refresh token already used ends its whole session')
  refresh(@Body() dto: RefreshDto, @Client() client: ClientInfo): Promise<AuthResultDto> {
    return this.sessions.refresh(dto.refreshToken, client);
  }

  @Post('logout')
  @Authenticated()
  @HttpCode(204)
  @ApiOperation({ summary: "End the caller's session: its tokens stop working and its WebSocket connections close (1008), on every instance" })
  @ApiNoContentResponse({ description: 'ended' })
  logout(@CurrentUser() caller: AuthSession): Promise<void> {
    return this.sessions.logout(caller);
  }

  @Get('sessions')
  @Authenticated()
  @ApiOperation({ summary: "The caller's live sessions, most recently used first" })
  @ApiOkResponse({ type: SessionView, isArray: true })
  list(@CurrentUser() caller: AuthSession): Promise<SessionView[]> {
    return this.sessions.list(caller);
  }

  @Delete('sessions/:id')
  @Authenticated()
  @HttpCode(204)
  @ApiOperation({ summary: "End one of the caller's sessions (as logout does for it)" })
  @ApiNoContentResponse({ description: 'ended' })
  @ApiError(400, 'not a UUID')
  @ApiError(404, "no such session of the caller's")
  end(@CurrentUser() caller: AuthSession, @UuidParam() id: string): Promise<void> {
    return this.sessions.end(caller, id);
  }

  @Post('ws-ticket')
  @Authenticated()
  @ApiOperation({ summary: 'A single-use ticket for `/ws?ticket=`, valid a few seconds: no long-lived token in a URL' })
  @ApiCreatedResponse({ type: WsTicketDto })
  wsTicket(@CurrentUser() caller: AuthSession): Promise<WsTicketDto> {
    return this.sessions.issueTicket(caller);
  }
}
