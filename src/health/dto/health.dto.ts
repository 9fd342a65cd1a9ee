import { ApiProperty } from '@nestjs/swagger';

export class LiveStatus {
  @ApiProperty({ enum: ['ok'] }) status!: 'ok';
}

export class ReadyStatus {
  @ApiProperty({ enum: ['ok'] }) status!: 'ok';

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string', enum: ['ok'] },
    example: { database: 'ok', redis: 'ok' },
    description: '`database`, and `redis` when REDIS_URL is set',
  })
  checks!: Record<string, 'ok'>;
}
