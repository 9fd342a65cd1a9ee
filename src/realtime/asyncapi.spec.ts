import 'reflect-metadata';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { asyncApiDocument, CLOSE_CODES } from './asyncapi.js';
import { ChatGateway } from './chat.gateway.js';
import { CLOSE } from './connection.js';
import { SERVER_EVENTS } from './server-events.js';

/** The AsyncAPI document is written by hand; this keeps it honest against the code. */
describe('AsyncAPI document', () => {
  const ASYNCAPI_DOCUMENT = asyncApiDocument({ secure: false, host: 'chat.example:3000', prefix: '' });
  const ops = Object.values(ASYNCAPI_DOCUMENT.operations as Record<string, { action: string; messages: { $ref: string }[] }>);
  const messages = (ASYNCAPI_DOCUMENT.channels as { ws: { messages: Record<string, { name: string }> } }).ws.messages;
  const names = (action: string) =>
    ops.filter((o) => o.action === action).map((o) => messages[o.messages[0].$ref.split('/').pop()!].name).sort();

  it("receives exactly the gateway's @SubscribeMessage events", () => {
    const proto = ChatGateway.prototype as unknown as Record<string, unknown>;
    const handled = Object.getOwnPropertyNames(proto)
      .map((k) => Reflect.getMetadata(MESSAGE_METADATA, proto[k] as object) as string | undefined)
      .filter((e): e is string => typeof e === 'string')
      .sort();
    expect(handled.length).toBeGreaterThan(0);
    expect(names('receive')).toEqual(handled);
  });

  it('sends exactly the events of ServerEventMap', () => {
    expect(names('send')).toEqual([...SERVER_EVENTS].sort());
  });

  it('documents every contract event', () => {
    expect(names('receive')).toEqual(['channel.join', 'channel.leave', 'history', 'message.delete', 'message.edit', 'message.send', 'ping', 'reaction.add', 'reaction.remove', 'read', 'sync', 'typing']);
  });

  it('documents every close code the server sends, and the three ways to authenticate the handshake', () => {
    const documented = Object.keys(CLOSE_CODES).map(Number);
    expect(documented).toEqual(expect.arrayContaining([...Object.values(CLOSE), 1011]));
    const info = ASYNCAPI_DOCUMENT.info as { description: string };
    for (const code of documented) expect(info.description).toContain(String(code));
    expect(info.description).toMatch(/token expired.*every inbound frame/);
    expect(info.description).toContain('session ended');
    expect(info.description).toContain('?ticket=');
    const schemes = (ASYNCAPI_DOCUMENT.components as { securitySchemes: Record<string, { in?: string; name?: string; scheme?: string }> }).securitySchemes;
    expect(Object.values(schemes).map((s) => s.name ?? s.scheme).sort()).toEqual(['bearer', 'ticket', 'token']);
  });
});
