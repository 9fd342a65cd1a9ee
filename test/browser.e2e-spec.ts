import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { eventually, sleep } from './helpers/cluster.js';
import { api, ServerProcess } from './helpers/server-process.js';
import { freshDatabaseUrl } from './helpers/test-app.js';

/**
 * The web client at `/`, in a real browser: Debian's Chromium driven by playwright-core, two
 * users in two browser contexts (alice on a desktop-sized window, bob on a phone-sized one),
 * against the built server as a child process. They sign up, open a DM, chat both ways, see
 * unread badges and typing, reply, edit, react, delete; the server is killed (-9) and restarted
 * mid-conversation and the pages recover by themselves with nothing lost or doubled.
 * Screenshots of the main views go to docs/screenshots/ with UPDATE_SCREENSHOTS=1 (the README shows them).
 *
 * Without Chromium the suite is skipped, and says so: `apt-get install chromium` (Debian/Ubuntu),
 * or CHROMIUM_PATH=/path/to/chrome.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  process.stderr.write(`browser.e2e-spec.ts SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH): the browser tests did not run\n`);
}
/** UPDATE_SCREENSHOTS=1 refreshes the README's screenshots; otherwise they go to a temporary folder. */
const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(process.cwd(), 'docs', 'screenshots') : join(tmpdir(), 'parley-screenshots');
const PASSWORD = 'password123';
const T = 20000; // generous: a loaded 2-core machine

(HAVE_CHROMIUM ? describe : describe.skip)('web client in Chromium', () => {
  const db = freshDatabaseUrl('sqlite');
  const env = { DATABASE_URL: db.url, RATE_LIMIT_PER_SEC: '0', HTTP_RATE_LIMIT: 'false', PASSWORD_HASH_MEMORY_KIB: '1024', PRESENCE_GRACE_MS: '300' };
  let server: ServerProcess;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = await ServerProcess.start(env);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 60000);
  afterAll(async () => {
    await browser?.close();
    if (server?.alive) await server.kill('SIGKILL');
    await db.cleanup();
  });

  async function page(viewport: { width: number; height: number }, isMobile = false): Promise<Page> {
    const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile });
    contexts.push(context);
    const p = await context.newPage();
    p.setDefaultTimeout(T);
    p.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    p.on('console', (m) => {
      // A refused connection while the server is down is expected; anything else is not.
      if (m.type() === 'error' && !/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection|Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
    });
    await p.goto(server.baseUrl + '/');
    return p;
  }

  async function signUp(p: Page, username: string): Promise<void> {
    await p.getByLabel('Username').fill(username);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Sign up' }).click();
    await p.getByText(`Signed in as ${username}`).waitFor();
  }

  const log = (p: Page) => p.getByRole('log', { name: 'Messages' });
  /** The texts of the messages shown, in order (stored and pending). */
  const texts = (p: Page) => log(p).locator('li.message .text').allInnerTexts();

  async function say(p: Page, text: string): Promise<void> {
    await p.getByLabel('Message', { exact: true }).fill(text);
    await p.getByLabel('Message', { exact: true }).press('Enter');
  }

  it('two users chat in a DM: unread badges, typing, reply, edit, react, delete, search, notifications, a server restart; phone and keyboard', async () => {
    const suffix = Math.random().toString(36).slice(2, 6);
    const aliceName = `alice_${suffix}`;
    const bobName = `bob_${suffix}`;
    const alice = await page({ width: 1200, height: 760 });
    const bob = await page({ width: 390, height: 780 }, true);

    // Sign up (the login view is the first screenshot).
    await alice.getByLabel('Username').fill(aliceName);
    await alice.screenshot({ path: join(SHOTS, 'login.png') });
    await signUp(alice, aliceName);
    await signUp(bob, bobName);

    // Alice finds bob (debounced search) and opens the DM, from the keyboard.
    await alice.getByLabel('Find a user').fill(bobName.slice(0, 6));
    await alice.getByRole('button', { name: `Message ${bobName}` }).click();
    await say(alice, 'Hello Bob');
    await log(alice).getByText('Hello Bob').waitFor();

    // Bob (phone): an unread badge in the list; opening the DM reads it.
    const bobItem = bob.getByRole('button', { name: new RegExp(`^${aliceName}.*1 unread`) });
    await bobItem.waitFor();
    await bob.screenshot({ path: join(SHOTS, 'conversations-phone.png') });
    await bobItem.click();
    await log(bob).getByText('Hello Bob').waitFor();
    // One column on a phone: the list is hidden while the chat is open; back shows it.
    expect(await bob.getByLabel('Find a user').isVisible()).toBe(false);

    // Typing, then bob answers.
    await bob.getByLabel('Message', { exact: true }).pressSequentially('Hi Al', { delay: 30 });
    await alice.getByText(`${bobName} is typing…`).waitFor();
    await bob.getByLabel('Message', { exact: true }).fill('Hi Alice');
    await bob.getByRole('button', { name: 'Send' }).click();
    await log(alice).getByText('Hi Alice').waitFor();
    await bob.getByRole('button', { name: 'Back to conversations' }).click();
    await eventually('bob has no unread left', async () => (await bob.getByTestId('unread').count()) === 0, T);

    // Alice goes elsewhere (a channel): bob's next message shows as unread for her.
    await alice.getByLabel('Channel name').fill(`room-${suffix}`);
    await alice.getByLabel('Channel name').press('Enter');
    await alice.getByRole('heading', { name: `#room-${suffix}` }).waitFor();
    await bob.getByRole('button', { name: new RegExp(`^${aliceName}`) }).click();
    await say(bob, 'Are you there?');
    await alice.getByRole('button', { name: new RegExp(`^${bobName}.*1 unread`) }).click();
    await log(alice).getByText('Are you there?').waitFor();
    // Where the unread part began: a "New messages" line right before it.
    expect(await log(alice).locator('li.divider + li.message .text').innerText()).toBe('Are you there?');

    {
      // Reply.
      await log(alice).locator('li.message', { hasText: 'Are you there?' }).getByRole('button', { name: `Reply to ${bobName}` }).click();
      await say(alice, 'Yes, here');
      await log(bob).locator('li.message', { hasText: 'Yes, here' }).locator('.reply-quote', { hasText: 'Are you there?' }).waitFor();
      // Edit.
      await log(alice).locator('li.message', { hasText: 'Yes, here' }).getByRole('button', { name: 'Edit' }).click();
      await alice.getByLabel('Edit message').fill('Yes, right here');
      await alice.getByLabel('Edit message').press('Enter');
      await log(bob).locator('li.message', { hasText: 'Yes, right here' }).getByText('(edited)').waitFor();
      // React (bob), seen by alice; toggled off by bob again.
      const bobsView = log(bob).locator('li.message', { hasText: 'Yes, right here' });
      await bobsView.getByRole('button', { name: 'React' }).click();
      await bobsView.getByRole('button', { name: 'React with 👍' }).click();
      await log(alice).locator('li.message', { hasText: 'Yes, right here' }).getByRole('button', { name: /^👍 1/ }).waitFor();
      // Delete (bob deletes a message alice has answered): the quote in her reply goes too.
      await say(bob, 'oops, wrong chat');
      await log(alice).getByText('oops, wrong chat').waitFor();
      await log(alice).locator('li.message', { hasText: 'oops, wrong chat' }).getByRole('button', { name: `Reply to ${bobName}` }).click();
      await say(alice, 'which chat?');
      await log(bob).locator('li.message', { hasText: 'which chat?' }).locator('.reply-quote', { hasText: 'oops, wrong chat' }).waitFor();
      await log(bob).locator('li.message', { hasText: 'oops, wrong chat' }).first().getByRole('button', { name: 'Delete' }).click();
      await log(alice).locator('li.message .text.deleted').first().waitFor();
      await log(alice).locator('li.message', { hasText: 'which chat?' }).locator('.reply-quote', { hasText: 'message deleted' }).waitFor();
      expect(await log(alice).getByText('oops, wrong chat').count()).toBe(0);
      // Search: a hit opens its conversation and shows the message.
      await alice.getByLabel('Search messages').fill('right');
      await alice.getByLabel('Search messages').press('Enter');
      await alice.getByRole('list', { name: 'Search results' }).getByRole('button', { name: /Yes, right here/ }).click();
      await log(alice).locator('li.message.focused', { hasText: 'Yes, right here' }).waitFor();
      // Mute: the server's conversation.update marks it in the list; unmute takes it away.
      await alice.getByRole('button', { name: 'Mute', exact: true }).click();
      await alice.getByRole('button', { name: new RegExp(`^${bobName}.*, muted$`) }).waitFor();
      await alice.getByRole('button', { name: 'Unmute', exact: true }).click();
      await alice.getByRole('button', { name: 'Mute', exact: true }).waitFor();
      expect(await alice.getByRole('button', { name: /, muted$/ }).count()).toBe(0);
    }
    await alice.screenshot({ path: join(SHOTS, 'chat-desktop.png') });
    await bob.screenshot({ path: join(SHOTS, 'chat-phone.png') });

    // Notifications while the tab is hidden (permission granted; the browser's Notification
    // recorded instead of shown): bob's next message notifies alice and stays unread meanwhile.
    // (Scripts as strings: this file is type-checked without the DOM library.)
    await alice.evaluate(`
      window.notes = [];
      window.Notification = class {
        static permission = 'granted';
        constructor(title, options) { window.notes.push([title, options.body]); }
      };
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    `);
    await say(bob, 'psst');
    await log(alice).getByText('psst').waitFor();
    expect(await alice.evaluate('window.notes')).toEqual([[bobName, 'psst']]);
    await alice.getByRole('button', { name: new RegExp(`^${bobName}.*1 unread`) }).waitFor(); // hidden: not read
    await alice.evaluate(`
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    `);
    await eventually('alice reads it when she looks', async () => (await alice.getByTestId('unread').count()) === 0, T);

    // The server dies mid-conversation. Alice keeps typing: the messages wait as "Sending…",
    // the banner says so, and everything arrives once the server is back, once, in order.
    const before = await texts(bob);
    await server.kill('SIGKILL');
    await alice.getByRole('status').getByText('Reconnecting…').waitFor();
    for (const t of ['while down 1', 'while down 2', 'while down 3']) await say(alice, t);
    await log(alice).getByText('Sending…').first().waitFor();
    await alice.screenshot({ path: join(SHOTS, 'reconnecting.png') });
    server = await ServerProcess.start(env, server.port);
    await eventually('the banner to go', async () => (await alice.getByRole('status').count()) === 0, 60000);
    await say(bob, 'back again');
    await log(alice).getByText('back again').waitFor({ timeout: 60000 });
    await log(bob).getByText('while down 3').waitFor({ timeout: 60000 });
    await sleep(500);
    const after = await texts(bob);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length)).toEqual(['while down 1', 'while down 2', 'while down 3', 'back again']);
    expect(await texts(alice)).toEqual(after); // the same conversation on both sides, nothing doubled
    expect(await log(alice).getByText('Sending…').count()).toBe(0);
    expect(errors).toEqual([]);
  }, 240000);

  /** Presses Tab until the focused control is the one named `name` (keyboard reachability). */
  async function tabTo(p: Page, name: RegExp, max = 40): Promise<void> {
    for (let i = 0; i < max; i++) {
      await p.keyboard.press('Tab');
      const focused = (await p.evaluate(`(() => { const e = document.activeElement; return e ? (e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].textContent) || e.textContent || '').trim() : ''; })()`)) as string;
      if (name.test(focused)) return;
    }
    throw new Error(`${name} not reached with the Tab key`);
  }

  /** Every button, input and textarea has a name a screen reader announces. */
  async function unlabelled(p: Page): Promise<string[]> {
    return (await p.evaluate(`[...document.querySelectorAll('button, input, textarea')].filter((e) => !(e.getAttribute('aria-label') || (e.labels && e.labels.length && e.labels[0].textContent.trim()) || e.textContent.trim())).map((e) => e.outerHTML.slice(0, 80))`)) as string[];
  }

  it('keeps unsent messages across a page reload and sends each once, also one the server stored but whose ack was lost', async () => {
    const suffix = Math.random().toString(36).slice(2, 6);
    const { register } = await import('../sdk/src/index.js');
    const hal = await register(server.baseUrl, { username: `hal_${suffix}`, password: PASSWORD });
    const ivy = await register(server.baseUrl, { username: `ivy_${suffix}`, password: PASSWORD });
    const p = await page({ width: 1200, height: 760 });
    // Between the page and the server: sends dropped on the way in, or acks (and message.new) on the way out.
    let mode: 'pass' | 'drop-sends' | 'drop-acks' = 'pass';
    await p.context().routeWebSocket(() => true, (ws) => {
      const srv = ws.connectToServer();
      ws.onMessage((m) => {
        if (!(mode === 'drop-sends' && String(m).includes('"event":"message.send"'))) srv.send(m);
      });
      srv.onMessage((m) => {
        if (!(mode === 'drop-acks' && /"event":"message\.(ack|new)"/.test(String(m)))) ws.send(m);
      });
    });
    await p.getByLabel('Username').fill(hal.user.username);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByLabel('Password').press('Enter');
    await p.getByText(`Signed in as ${hal.user.username}`).waitFor();
    await p.getByLabel('Find a user').fill(ivy.user.username);
    await p.getByRole('button', { name: `Message ${ivy.user.username}` }).click();
    await p.getByRole('heading', { name: ivy.user.username }).waitFor();
    const { channelId } = (await api<{ channelId: string }>(server.baseUrl, 'POST', '/dms', { username: hal.user.username }, ivy.accessToken)).body;
    const stored = async () => (await api<{ messages: { text: string }[] }>(server.baseUrl, 'GET', `/channels/${channelId}/messages`, undefined, ivy.accessToken)).body.messages.map((m) => m.text);
    const saved = () => p.evaluate(`localStorage.getItem(${JSON.stringify(`parley.outbox.${hal.user.id}`)})`) as Promise<string | null>;

    mode = 'drop-sends';
    await say(p, 'never reached the server');
    mode = 'drop-acks';
    await say(p, 'stored, ack lost');
    await eventually('the server stored the second', async () => (await stored()).includes('stored, ack lost'), T);
    expect(await stored()).toEqual(['stored, ack lost']);
    expect(await log(p).getByText('Sending…').count()).toBe(2);
    expect(JSON.parse((await saved())!).map((o: { text: string }) => o.text)).toEqual(['never reached the server', 'stored, ack lost']);

    mode = 'pass';
    await p.reload();
    await p.getByText(`Signed in as ${hal.user.username}`).waitFor();
    await p.getByRole('button', { name: new RegExp(`^${ivy.user.username}`) }).click();
    await eventually('both sends answered', async () => (await saved()) === null && (await log(p).getByText('Sending…').count()) === 0, T);
    // Each once: the resent ack-lost one came back as the message the server already had.
    expect(await stored()).toEqual(['stored, ack lost', 'never reached the server']);
    await eventually('the page shows them once each', async () => JSON.stringify(await texts(p)) === JSON.stringify(['stored, ack lost', 'never reached the server']), T);
    expect(errors).toEqual([]);
  }, 120000);

  it('keyboard only, with a label on every control: log in, find a user, message them, reply and cancel with Escape', async () => {
    const suffix = Math.random().toString(36).slice(2, 6);
    const { register } = await import('../sdk/src/index.js');
    const dana = await register(server.baseUrl, { username: `dana_${suffix}`, password: PASSWORD });
    const erin = await register(server.baseUrl, { username: `erin_${suffix}`, password: PASSWORD });
    const p = await page({ width: 390, height: 780 }, true);
    expect(await unlabelled(p)).toEqual([]);
    await tabTo(p, /^Username$/);
    await p.keyboard.type(dana.user.username);
    await p.keyboard.press('Tab');
    await p.keyboard.type(PASSWORD);
    await p.keyboard.press('Enter'); // the form's default action: Log in
    await p.getByText(`Signed in as ${dana.user.username}`).waitFor();
    expect(await unlabelled(p)).toEqual([]);

    await tabTo(p, /^Find a user$/);
    await p.keyboard.type(`erin_${suffix}`);
    await p.getByRole('button', { name: `Message ${erin.user.username}` }).waitFor();
    await tabTo(p, new RegExp(`^Message ${erin.user.username}$`));
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: erin.user.username }).waitFor();
    await tabTo(p, /^Message$/);
    await p.keyboard.type('typed from the keyboard');
    await p.keyboard.press('Enter');
    await log(p).getByText('typed from the keyboard').waitFor();
    await log(p).locator('li.message:not(.outgoing)', { hasText: 'typed from the keyboard' }).waitFor();
    expect(await unlabelled(p)).toEqual([]);

    await tabTo(p, /^Reply to /);
    await p.keyboard.press('Enter'); // focus moves to the composer
    await p.getByRole('button', { name: 'Cancel reply' }).waitFor();
    expect(await p.evaluate('document.activeElement.id')).toBe('composer');
    await p.keyboard.press('Escape');
    await eventually('the reply is cancelled', async () => (await p.getByRole('button', { name: 'Cancel reply' }).count()) === 0, T);
    await tabTo(p, /^Back to conversations$/);
    await p.keyboard.press('Enter');
    await p.getByRole('button', { name: new RegExp(`^${erin.user.username}`) }).waitFor();
    expect(errors).toEqual([]);
  }, 120000);
});
