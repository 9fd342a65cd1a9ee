import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedHook {
  at: number;
  headers: IncomingHttpHeaders;
  raw: string;
  /** Parsed body: {id, type, createdAt, data}. */
  event: { id: string; type: string; createdAt: string; data: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** What the receiver answered. */
  status: number;
}

/**
 * A local webhook receiver for tests: records every request (accepted or not) and answers what
 * `decide` says (204 by default), so a test can fail some events, then accept them.
 */
export class WebhookReceiver {
  readonly requests: ReceivedHook[] = [];
  decide: (hook: Omit<ReceivedHook, 'status'>) => number = () => 204;
  /** How long each answer takes (a slow receiver keeps several claims in flight at once). */
  delayMs = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const hook = { at: Date.now(), headers: req.headers, raw, event: JSON.parse(raw) };
        const status = receiver.decide(hook);
        receiver.requests.push({ ...hook, status });
        setTimeout(() => res.writeHead(status).end(), receiver.delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** Accepted events (2xx), in arrival order. */
  get accepted(): ReceivedHook[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300);
  }

  ofType(type: string): ReceivedHook[] {
    return this.accepted.filter((r) => r.event.type === type);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
