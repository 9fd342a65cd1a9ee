import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { bearerToken } from '../auth/auth.service.js';
import { AppError } from '../common/app-error.js';
import { ApiError } from '../common/api-error.decorator.js';
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
  @ApiBearerAuth('metrics') // dropped from the document when METRICS_TOKEN is unset (openapi-document.ts)
  @ApiOkResponse({ description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } })
  @ApiError(401, 'METRICS_TOKEN is set and was not given')
  // The token is read from the request, not with @Headers: OpenAPI describes Authorization as security, never as a parameter.
  scrape(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<string> {
    this.checkToken(req.headers.authorization);
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
