import { USERNAME_PATTERN } from './dto/credentials.dto.js';
import { usernameFrom } from './external-tokens.js';

describe('usernameFrom (the name of a user made by a product token)', () => {
  it.each([
    ['Zoë Product', 'Zoe_Product'],
    ['alice', 'alice'],
    ['J', 'userJ'],
    ['', 'user'],
    [undefined, 'user'],
    [42, 'user'],
    ['   ', 'user'],
    ['山田 太郎', 'user'],
    ['a'.repeat(40), 'a'.repeat(32)],
    ['__proto__', 'proto'],
    ['dr. who?', 'dr._who'],
  ])('%j → %s, always a valid username', (claim, expected) => {
    const name = usernameFrom(claim);
    expect(name).toBe(expected);
    expect(name).toMatch(USERNAME_PATTERN);
  });
});
