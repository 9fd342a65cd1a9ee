import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { IntField } from '../../common/int-field.decorator.js';

export class UserSearchQueryDto {
  @ApiPropertyOptional({ example: 'al', maxLength: 32, description: 'username prefix; empty lists everyone' })
  @IsOptional() @IsString() @MaxLength(32)
  query?: string;

  @ApiPropertyOptional({ default: 20 })
  @IsOptional() @IntField({ min: 1, max: 100, query: true })
  limit: number = 20;
}
