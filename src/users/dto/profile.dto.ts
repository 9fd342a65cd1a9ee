import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { ValidateBy, ValidateIf } from 'class-validator';
import { codePointLength, StringField } from '../../common/string-field.decorator.js';
import { VISIBLE } from '../../common/text-hygiene.js';

/** Largest `metadata`, as UTF-8 bytes of its JSON text. */
export const MAX_METADATA_BYTES = 4096;
export const MAX_AVATAR_URL_LENGTH = 2048;

/** Given as null: cleared; left out: unchanged. Anything else is validated. */
const Nullable = (): PropertyDecorator => ValidateIf((_o: object, value: unknown) => value !== undefined && value !== null);

/** What the document says (the scheme with its slashes, no whitespace); the URL parser decides the rest. */
const AVATAR_URL_PATTERN = /^[hH][tT][tT][pP][sS]?:\/\/\S+$/;

/** An absolute http:// or https:// URL with a host, no credentials and no whitespace. */
export function isAvatarUrl(value: unknown): boolean {
  if (typeof value !== 'string' || codePointLength(value) > MAX_AVATAR_URL_LENGTH || !AVATAR_URL_PATTERN.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** A JSON object (not an array, not null) of at most MAX_METADATA_BYTES serialized. */
export function metadataProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'metadata must be a JSON object';
  if (Buffer.byteLength(JSON.stringify(value), 'utf8') > MAX_METADATA_BYTES) return `metadata must be at most ${MAX_METADATA_BYTES} bytes as JSON`;
  return null;
}

const DisplayNameField = () =>
  applyDecorators(
    Nullable(),
    StringField({ min: 1, max: 64, pattern: VISIBLE, patternMessage: 'displayName must have a visible character' }),
    ApiPropertyOptional({ type: String, nullable: true, minLength: 1, maxLength: 64, example: 'Alice Liddell', description: 'null clears it' }),
  );

const AvatarUrlField = () =>
  applyDecorators(
    Nullable(),
    ValidateBy({ name: 'avatarUrl', validator: { validate: isAvatarUrl, defaultMessage: () => `avatarUrl must be an http:// or https:// URL of at most ${MAX_AVATAR_URL_LENGTH} characters` } }),
    ApiPropertyOptional({ type: String, nullable: true, maxLength: MAX_AVATAR_URL_LENGTH, pattern: AVATAR_URL_PATTERN.source, example: 'https://cdn.example.com/a/alice.png', description: 'an http:// or https:// URL; null clears it' }),
  );

const MetadataField = () =>
  applyDecorators(
    ValidateIf((_o: object, value: unknown) => value !== undefined),
    ValidateBy({ name: 'metadata', validator: { validate: (v: unknown) => metadataProblem(v) === null, defaultMessage: (args) => metadataProblem(args?.value) ?? 'bad metadata' } }),
    ApiPropertyOptional({ type: 'object', additionalProperties: true, example: { team: 'design' }, description: `a JSON object of at most ${MAX_METADATA_BYTES} bytes (as JSON); replaces the stored one. Keys an object already has (constructor, toString, __proto__, ...) are refused at any depth, as everywhere` }),
  );

/** `PATCH /users/me`: the fields given change, the others stay. */
export class UpdateProfileDto {
  @DisplayNameField() displayName?: string | null;
  @AvatarUrlField() avatarUrl?: string | null;
  @MetadataField() metadata?: Record<string, unknown>;
}

export { AvatarUrlField, DisplayNameField, MetadataField };
