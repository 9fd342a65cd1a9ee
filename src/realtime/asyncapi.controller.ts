import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ASYNCAPI_DOCUMENT } from './asyncapi.js';

@ApiTags('docs')
@Controller()
export class AsyncApiController {
  @Get('asyncapi.json')
  @ApiOperation({ summary: 'The WebSocket protocol as an AsyncAPI 3 document' })
  @ApiOkResponse({ description: 'AsyncAPI 3.0 JSON' })
  asyncapi(): Record<string, unknown> {
    return ASYNCAPI_DOCUMENT;
  }
}
