import 'reflect-metadata';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { ASYNCAPI_DOCUMENT } from './asyncapi.js';
import { ChatGateway } from './chat.gateway.js';
import { SERVER_EVENTS } from './server-events.js';

/** The AsyncAPI document is written by hand; this keeps it honest against the code. */
describe('AsyncAPI document', () => {
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
    expect(names('receive')).toEqual(['channel.join', 'channel.leave', 'history', 'message.send', 'ping', 'read', 'sync', 'typing']);
  });
});
