import { ApiPropertyOptional } from '@nestjs/swagger';
import { Optional } from '../../common/optional.decorator.js';
import { IntField } from '../../common/int-field.decorator.js';
import { StringField } from '../../common/string-field.decorator.js';

export class UserSearchQueryDto {
  @ApiPropertyOptional({ example: 'al', description: 'username prefix; empty lists everyone' })
  @Optional() @StringField({ max: 32 })
  query?: string;

  @ApiPropertyOptional({ default: 20 })
  @Optional() @IntField({ min: 1, max: 100, query: true })
  limit: number = 20;
}
