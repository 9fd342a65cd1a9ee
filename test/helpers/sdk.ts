import WebSocket from 'ws';
import { ParleyClient, ParleyClientOptions, WebSocketConstructor } from '../../sdk/src/index.js';
import type { Message } from '../../sdk/src/index.js';
import { AsyncApiContract, reportViolation } from './contract.js';

/**
 * An SDK client for tests: `ws` as its WebSocket (Node 20 has none), short back-off, and every
 * frame in and out held to the AsyncAPI document the server serves. Records what the
 * application sees (`messages` per channel, in the order handed out) and the state changes.
 */
export class SdkProbe {
  readonly messages = new Map<string, Message[]>();
  readonly updates: Message[] = [];
  readonly states: { state: string; closeCode?: number; error?: string }[] = [];
  readonly violations: string[] = [];
  /** Every frame's direction and event, in order. */
  readonly frames: string[] = [];

  private constructor(readonly client: ParleyClient) {
    client.on('message', (m) => {
      const list = this.messages.get(m.channelId) ?? [];
      list.push(m);
      this.messages.set(m.channelId, list);
    });
    client.on('messageUpdated', (m) => this.updates.push(m));
    client.on('state', (s) => this.states.push({ state: s.state, closeCode: s.closeCode, error: s.error?.code }));
  }

  static async create(options: Omit<ParleyClientOptions, 'WebSocket'>, contractUrl = options.url): Promise<SdkProbe> {
    const contract = await AsyncApiContract.forWsUrl(contractUrl.replace(/^http/, 'ws') + '/ws');
    // eslint-disable-next-line prefer-const -- the frame hook is made before the probe it reports to
    let probe: SdkProbe | undefined;
    const client = new ParleyClient({
      backoff: { baseMs: 100, maxMs: 1000 },
      ...options,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      onFrame: (direction, event, data) => {
        probe?.frames.push(`${direction} ${event}`);
        const frame = { event, data };
        const problem = direction === 'in' ? contract?.checkServerFrame(frame) : contract && !contract.allowsClientFrame(frame) ? `client frame off the document: ${JSON.stringify(frame).slice(0, 300)}` : null;
        if (problem) {
          probe?.violations.push(problem);
          reportViolation(problem);
        }
      },
    });
    probe = new SdkProbe(client);
    return probe;
  }

  /** Seqs handed to the application for one channel, in order. */
  seqs(channelId: string): number[] {
    return (this.messages.get(channelId) ?? []).map((m) => m.seq);
  }

  texts(channelId: string): string[] {
    return (this.messages.get(channelId) ?? []).map((m) => m.text);
  }
}
