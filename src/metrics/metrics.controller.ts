import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { bearerToken } from '../auth/auth.service.js';
import { AppError } from '../common/app-error.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from './metrics.service.js';

@ApiTags('health')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`)' })
  @ApiBearerAuth()
  @ApiOkResponse({ description: 'Prometheus text format', schema: { type: 'string' } })
  @ApiResponse({ status: 401, type: ErrorResponseDto, description: '`unauthorized`: METRICS_TOKEN is set and was not given' })
  scrape(@Res({ passthrough: true }) res: Response, @Headers('authorization') authorization?: string): Promise<string> {
    this.checkToken(authorization);
    // Set here, not with @Header: a refusal is the usual JSON error.
    res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return this.metrics.registry.metrics();
  }

  private checkToken(authorization: string | undefined): void {
    const expected = this.config.metricsToken;
    if (!expected) return;
    const given = Buffer.from(bearerToken(authorization) ?? '');
    const want = Buffer.from(expected);
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new AppError('unauthorized', 'metrics need the METRICS_TOKEN bearer token');
  }
}
