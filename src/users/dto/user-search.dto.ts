import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { IntField } from '../../common/int-field.decorator.js';

export class UserSearchQueryDto {
  @ApiPropertyOptional({ example: 'al', description: 'username prefix; empty lists everyone' })
  @IsOptional() @IsString() @MaxLength(32)
  query?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional() @IntField({ min: 1, max: 100, query: true })
  limit: number = 20;
}
