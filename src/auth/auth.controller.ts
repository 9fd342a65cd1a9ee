import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimited } from '../rate-limit/http-rate-limit.guard.js';
import { AuthService } from './auth.service.js';
import { AuthResultDto, CredentialsDto } from './dto/credentials.dto.js';

@ApiTags('auth')
@ApiResponse({ status: 400, type: ErrorResponseDto, description: '`invalid_payload`' })
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('register')
  @RateLimited('register')
  @ApiOperation({ summary: 'Create an account and get a token' })
  @ApiResponse({ status: 201, type: AuthResultDto })
  @ApiResponse({ status: 409, type: ErrorResponseDto, description: '`conflict`: username taken' })
  register(@Body() dto: CredentialsDto): Promise<AuthResultDto> {
    return this.auth.register(dto);
  }

  @Post('login')
  @HttpCode(200)
  @RateLimited('login')
  @ApiOperation({ summary: 'Exchange username and password for a token' })
  @ApiResponse({ status: 200, type: AuthResultDto })
  @ApiResponse({ status: 401, type: ErrorResponseDto, description: '`unauthorized`: wrong username or password' })
  login(@Body() dto: CredentialsDto): Promise<AuthResultDto> {
    return this.auth.login(dto);
  }
}
