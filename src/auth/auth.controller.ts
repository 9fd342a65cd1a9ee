import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiError } from '../common/api-error.decorator.js';
import { RateLimited } from '../rate-limit/http-rate-limit.guard.js';
import { AuthService } from './auth.service.js';
import { Client } from './client-info.decorator.js';
import { AuthResultDto, CredentialsDto, LoginDto } from './dto/credentials.dto.js';
import type { ClientInfo } from './session.store.js';

@ApiTags('auth')
@ApiError(400)
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('register')
  @RateLimited('register')
  @ApiOperation({ summary: 'Create an account and get tokens (a new session)' })
  @ApiResponse({ status: 201, type: AuthResultDto })
  @ApiError(409, 'username taken')
  register(@Body() dto: CredentialsDto, @Client() client: ClientInfo): Promise<AuthResultDto> {
    return this.auth.register(dto, client);
  }

  @Post('login')
  @HttpCode(200)
  @RateLimited('login')
  @ApiOperation({ summary: 'Exchange username and password for tokens (a new session)' })
  @ApiResponse({ status: 200, type: AuthResultDto })
  @ApiError(401, 'wrong username or password (whatever its length)')
  login(@Body() dto: LoginDto, @Client() client: ClientInfo): Promise<AuthResultDto> {
    return this.auth.login(dto, client);
  }
}
