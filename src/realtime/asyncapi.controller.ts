import { Controller, Get, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { publicOrigin } from '../common/public-origin.js';
import { AppConfig } from '../config/app-config.js';
import { asyncApiDocument } from './asyncapi.js';

@ApiTags('docs')
@Controller()
export class AsyncApiController {
  constructor(private readonly config: AppConfig) {}

  @Get('asyncapi.json')
  @ApiOperation({ summary: 'The WebSocket protocol as an AsyncAPI 3 document; its server is PUBLIC_URL, or the address asked at' })
  @ApiOkResponse({
    description: 'an AsyncAPI 3.1 document (its own specification describes the rest)',
    schema: {
      type: 'object',
      required: ['asyncapi', 'info', 'channels', 'operations', 'components'],
      properties: {
        asyncapi: { type: 'string', enum: ['3.1.0'] },
        info: { type: 'object' },
        servers: { type: 'object' },
        channels: { type: 'object' },
        operations: { type: 'object' },
        components: { type: 'object' },
      },
      additionalProperties: true,
    },
  })
  asyncapi(@Req() req: Request): Record<string, unknown> {
    return asyncApiDocument(publicOrigin(req, this.config.publicUrl));
  }
}
