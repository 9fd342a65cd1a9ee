import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

export class UserSearchQueryDto {
  @ApiPropertyOptional({ example: 'al', description: 'username prefix; empty lists everyone' })
  @IsOptional() @IsString() @MaxLength(32)
  query?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(100)
  limit: number = 20;
}
