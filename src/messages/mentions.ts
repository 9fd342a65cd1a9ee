import type { ChannelState } from '../channels/channel-state.store.js';
import type { UserRef } from '../users/user.mapper.js';

/**
 * `@name` where name is a username (3 to 32 of letters, digits, `_`, `.`, `-`), not inside a word
 * or an e-mail address (`a@b.c` names nobody). A name may end a sentence: "thanks @bob." tries
 * `bob.` and then `bob`.
 */
const MENTION = /(?<![\p{L}\p{N}_.@-])@([A-Za-z0-9_.-]{3,32})/gu;

/** The channel's members named in the text, once each, in order of first mention. */
export function parseMentions(text: string, state: ChannelState): UserRef[] {
  if (!text.includes('@')) return [];
  let byName: Map<string, UserRef> | undefined;
  const found = new Map<string, UserRef>();
  for (const match of text.matchAll(MENTION)) {
    byName ??= new Map([...state.members.values()].map((m) => [m.username.toLowerCase(), { id: m.userId, username: m.username }]));
    let name = match[1].toLowerCase();
    let user = byName.get(name);
    while (!user && /[.-]$/.test(name)) {
      name = name.slice(0, -1);
      user = byName.get(name);
    }
    if (user && !found.has(user.id)) found.set(user.id, user);
  }
  return [...found.values()];
}
