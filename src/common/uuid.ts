/**
 * What Parley accepts as a UUID, everywhere a client gives one: class-validator's and
 * ParseUUIDPipe's `all` (versions 1 to 8 with the RFC variant, the nil and the max UUID). As a
 * JSON Schema pattern (no flags), so the documents say exactly this: `format: uuid` alone also
 * allows `urn:uuid:` prefixes and other versions (found by test/fuzz.e2e-spec.ts).
 */
export const UUID_PATTERN =
  '^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|[fF]{8}-[fF]{4}-[fF]{4}-[fF]{4}-[fF]{12})$';

export const UUID_ALL = new RegExp(UUID_PATTERN);
