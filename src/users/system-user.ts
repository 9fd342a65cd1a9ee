/**
 * The reserved user that system messages are stored under (made by the Embedding migration): it
 * keeps the messages' foreign key and the (sender_id, client_msg_id) idempotency key working for
 * messages nobody sent. It cannot log in (no password, deactivated), its name `system` cannot be
 * registered, and no Message on the wire names it: those say `kind: "system", sender: null`.
 */
export const SYSTEM_USER_ID = '00000000-0000-0000-0000-000000000000';
export const SYSTEM_USER = { id: SYSTEM_USER_ID, username: 'system' } as const;

/**
 * The product's id of a user (`sub` of its tokens, `:externalId` of the server API): 1 to 128
 * characters that need no escaping in a URL path beyond what every client does (`|` and `:` for
 * ids such as `auth0|5f1e2d`).
 */
export const EXTERNAL_ID_PATTERN = /^[A-Za-z0-9._~:@|+=-]{1,128}$/;
