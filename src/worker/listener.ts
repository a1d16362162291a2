// The LISTEN connection that wakes idle workers within milliseconds of a commit.
//
// pgq keeps this connection itself rather than using postgres.js's sql.listen(), which
// re-listens after a disconnect only once and drops the listener silently if the database is
// still down at that moment. Here a lost connection is logged, retried with backoff for as
// long as it takes, and reported to every subscriber (restored), on which the worker fetches at once
// whatever was enqueued while it was deaf.
//
// A connection can also go deaf without closing: a NAT or firewall that forgets it, a peer
// that vanished, leave a socket that nothing ever arrives on. So while listening, the listener
// probes it every PROBE_EVERY_MS, and a probe not answered within PROBE_TIMEOUT_MS means the
// connection is replaced. The first probe is a notification sent through another connection
// (pgq's pool), on a channel of its own (so that no other worker hears it, and no probe looks
// like a queue): it also finds a pooler in transaction mode (PgBouncer), where LISTEN succeeds
// but the server connection it ran on goes back to the pool, so nothing is ever delivered. Then
// the listener says so once and stops: the worker polls. Once a notification has arrived, the
// probes are a `select 1` on the LISTEN connection itself: an answer proves the socket carries
// what the server sends, and unlike a NOTIFY it commits nothing (a NOTIFY takes a transaction id
// and waits for its WAL flush) and wakes no other process's listening backend (every LISTEN
// session of the database is signalled at each NOTIFY, to read the queue).
//
// One listener serves all of a client's workers (src/worker/shared-connections.ts): each
// subscribes to its queues, and a notification goes only to the workers of its queue.
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import type { Sql } from "postgres";
import type { Logger } from "pino";
import { Backoff, sleep } from "../backoff.js";
import { bounded, openConnection, type ConnectionSource } from "../db/connections.js";
import type { OwnPool } from "../db/own-pool.js";
import { isTooManyConnections } from "../db/outage.js";
import { quoteIdent } from "../db/schema.js";
import type { Landing } from "./claim-bounds.js";

const LISTEN_TIMEOUT_MS = 10_000;
const RECONNECT = { baseMs: 100, maxMs: 5_000 };
/** A deaf connection is noticed within about PROBE_EVERY_MS + PROBE_TIMEOUT_MS. */
const PROBE_EVERY_MS = 5_000;
/** A healthy connection hears its probe within milliseconds; this allows for a loaded machine. */
const PROBE_TIMEOUT_MS = 5_000;

interface ListenerEvents {
  lost: [];
}

export interface ProbeOptions {
  /** The pool the probes are sent through: the worker's, whose current pool is read per probe. */
  notifyVia: OwnPool;
  /** For the warning when LISTEN cannot work here. */
  pollIntervalMs: number;
}

/**
 * What a worker hears: a job of one of its queues is ready (or due in `dueInMs`; `landing` says
 * whether it may be behind the worker's claim bound), running jobs were cancelled, LISTEN is back.
 */
export interface Subscriber {
  ready(queue: string, dueInMs: number, landing: Landing | undefined): void;
  cancel(ids: string[]): void;
  restored(): void;
}

export class Listener extends EventEmitter<ListenerEvents> {
  private sql: Sql | undefined;
  private started: Promise<void> | undefined;
  private readonly byQueue = new Map<string, Set<Subscriber>>();
  private readonly subscribers = new Set<Subscriber>();
  private listening = false;
  private closed = false;
  /** LISTEN was found not to deliver notifications (a transaction-mode pooler): polling only. */
  private gaveUp = false;
  private reconnecting: Promise<void> | undefined;
  private readonly probeChannel = `pgq_probe_${randomBytes(8).toString("hex")}`;
  private probe: ProbeOptions | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private probesSent = 0;
  private probesHeard = 0;
  /** A probe was heard once: LISTEN works here, and later silence means a deaf connection. */
  private deliveryProven = false;
  private awaitingProbe: (() => void) | undefined;

  constructor(
    private readonly connection: ConnectionSource,
    private readonly channel: string,
    private readonly log: Logger,
    /** Where q.cancel() announces running jobs it took (db/schema.ts cancelChannel). */
    private readonly cancelChannel: string,
  ) {
    super();
  }

  /** Sends `subscriber` the notifications of `queues` and every cancel; returns the unsubscribe. */
  subscribe(queues: readonly string[], subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    for (const queue of queues) {
      let set = this.byQueue.get(queue);
      if (!set) this.byQueue.set(queue, (set = new Set()));
      set.add(subscriber);
    }
    return () => {
      this.subscribers.delete(subscriber);
      for (const queue of queues) {
        const set = this.byQueue.get(queue);
        set?.delete(subscriber);
        if (set?.size === 0) this.byQueue.delete(queue);
      }
    };
  }

  /**
   * Resolves once LISTEN is in place; if the database cannot be reached, keeps trying in the
   * background. Rejects if the server refused the connection for want of slots (53300): that
   * will not pass by itself, and a worker starting so says so. Once per listener: the first
   * caller's options hold.
   */
  start(probe: ProbeOptions): Promise<void> {
    return (this.started ??= this.begin(probe));
  }

  private async begin(probe: ProbeOptions): Promise<void> {
    this.probe = probe;
    // A health check does not keep the process alive.
    this.probeTimer = setInterval(() => void this.checkDelivery(), PROBE_EVERY_MS).unref();
    try {
      await this.listen();
      // The first probe at once: a pooler that swallows notifications is found in moments.
      void this.checkDelivery();
    } catch (error) {
      this.reconnect();
      if (isTooManyConnections(error)) throw error;
      this.log.warn({ err: error }, "cannot LISTEN for new jobs yet; polling until the connection is back");
    }
  }

  get isListening(): boolean {
    return this.listening;
  }

  /** LISTEN is in place and a probe was heard on it: every notification reaches the subscribers, unless the connection went deaf since (its probe finds that). */
  get delivering(): boolean {
    return this.listening && this.deliveryProven;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopProbing();
    await this.retire();
  }

  /** A fresh connection each time: after a deaf or broken one, postgres.js may not flush writes on it again. */
  private async listen(): Promise<void> {
    void this.retire();
    const sql: Sql = openConnection(this.connection, this.log, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      onnotify: (ch: string, payload: string) => {
        if (sql !== this.sql) return;
        if (ch === this.channel) this.notified(payload);
        else if (ch === this.cancelChannel) this.cancelled(payload);
        else if (ch === this.probeChannel) this.probeHeard(Number(payload));
      },
      onclose: () => {
        if (sql === this.sql) this.connectionClosed();
      },
    } as never);
    this.sql = sql;
    await bounded(sql.unsafe(`listen ${quoteIdent(this.channel)}`), LISTEN_TIMEOUT_MS, "LISTEN");
    await bounded(sql.unsafe(`listen ${quoteIdent(this.cancelChannel)}`), LISTEN_TIMEOUT_MS, "LISTEN");
    await bounded(sql.unsafe(`listen ${quoteIdent(this.probeChannel)}`), LISTEN_TIMEOUT_MS, "LISTEN");
    this.listening = true;
  }

  private notified(payload: string): void {
    const { queue, dueInMs, landing } = parseNotification(payload);
    const subscribers = this.byQueue.get(queue);
    if (subscribers) for (const s of subscribers) s.ready(queue, dueInMs, landing);
  }

  private cancelled(payload: string): void {
    // Ids of running jobs q.cancel() took, comma-separated: each worker aborts those it runs.
    const ids = payload.split(",");
    for (const s of this.subscribers) s.cancel(ids);
  }

  private async retire(): Promise<void> {
    const sql = this.sql;
    this.sql = undefined;
    this.listening = false;
    await sql?.end({ timeout: 0 }).catch(() => undefined);
  }

  private connectionClosed(): void {
    if (this.closed || this.gaveUp) return;
    if (this.listening) {
      this.listening = false;
      this.log.warn("the LISTEN connection was lost; reconnecting, and polling meanwhile");
      this.emit("lost");
    }
    this.reconnect();
  }

  private reconnect(): void {
    this.reconnecting ??= (async () => {
      const backoff = new Backoff(RECONNECT);
      while (!this.closed) {
        const delay = backoff.next();
        await sleep(delay);
        if (this.closed) break;
        try {
          await this.listen();
          this.log.info("the LISTEN connection is back; fetching what was enqueued meanwhile");
          for (const s of this.subscribers) s.restored();
          break;
        } catch (error) {
          this.log.debug({ err: error, retryInMs: delay }, "LISTEN reconnect failed");
        }
      }
    })().finally(() => (this.reconnecting = undefined));
  }

  /** Until a notification has arrived, sends one through the pool and expects to hear it; then asks the connection itself to answer. */
  private async checkDelivery(): Promise<void> {
    if (!this.probe || !this.listening || this.probing || this.closed) return;
    this.probing = true;
    const sql = this.sql!;
    try {
      if (this.deliveryProven) return await this.checkAnswers(sql);
      const seq = ++this.probesSent;
      try {
        await bounded(this.probe.notifyVia.sql`select pg_notify(${this.probeChannel}, ${String(seq)})`, PROBE_TIMEOUT_MS, "sending the LISTEN probe");
      } catch (error) {
        // The database may be down: that says nothing about this connection, which reports
        // its own close. The next probe tries again.
        this.log.debug({ err: error }, "could not send the LISTEN probe");
        return;
      }
      if (await this.heard(seq)) {
        this.log.debug("LISTEN delivers notifications: its first probe was heard");
        this.deliveryProven = true;
        return;
      }
      if (this.closed || sql !== this.sql || !this.listening) return;
      this.giveUp();
    } finally {
      this.probing = false;
    }
  }

  /** A connection that does not answer a `select 1` within PROBE_TIMEOUT_MS is deaf: it is replaced. */
  private async checkAnswers(sql: Sql): Promise<void> {
    let answered = false;
    // An error counts as an answer: a connection that closed says so itself (connectionClosed).
    const answer = sql`select 1`.then(() => (answered = true), () => (answered = true));
    const timedOut = await new Promise<boolean>((resolve) => {
      // After a stalled event loop, timers run before pending socket reads: read those first.
      const timer = setTimeout(() => setImmediate(() => resolve(!answered)), PROBE_TIMEOUT_MS).unref();
      void answer.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    // Replaced meanwhile: that one is not this one.
    if (!timedOut || this.closed || sql !== this.sql || !this.listening) return;
    this.log.warn({ waitedMs: PROBE_TIMEOUT_MS }, "the LISTEN connection is silent (its probe was not answered); replacing it, and polling meanwhile");
    this.emit("lost");
    await this.retire();
    this.reconnect();
  }

  private heard(seq: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.probesHeard < seq) return false;
        clearTimeout(timer);
        this.awaitingProbe = undefined;
        resolve(true);
        return true;
      };
      const timer = setTimeout(() => {
        // After a stalled event loop, timers run before pending socket reads: read those first.
        setImmediate(() => {
          if (!check()) {
            this.awaitingProbe = undefined;
            resolve(false);
          }
        });
      }, PROBE_TIMEOUT_MS).unref();
      this.awaitingProbe = check;
      check();
    });
  }

  private probeHeard(seq: number): void {
    this.probesHeard = Math.max(this.probesHeard, seq);
    this.awaitingProbe?.();
  }

  private giveUp(): void {
    this.gaveUp = true;
    this.stopProbing();
    void this.retire();
    this.log.warn(
      `LISTEN does not deliver notifications here (is a pooler such as PgBouncer in transaction mode in between?); ` +
        `polling every ${this.probe!.pollIntervalMs} ms. Pass listen: false to silence this ` +
        `(behind a transaction-mode pooler, connect with pooler: "transaction").`,
    );
  }

  private stopProbing(): void {
    clearInterval(this.probeTimer);
    this.awaitingProbe = undefined;
  }
}

/**
 * A notification on the jobs channel: `queue` (from earlier versions), `queue\np<priority>`
 * (ready jobs; since migration 000016 `queue\np<priority>@<ms>`, with the oldest run_at among
 * them), `queue\nrewind` (ready jobs behind any claim bound), or `queue\n<ms>` for delayed
 * jobs: due that many ms after the commit (relative, so clocks do not matter), since 000016
 * followed by `\np<priority>@<ms>`, where they will land.
 */
function parseNotification(payload: string): { queue: string; dueInMs: number; landing?: Landing } {
  const [queue = "", what, where] = payload.split("\n");
  if (what === undefined) return { queue, dueInMs: 0 };
  if (what === "rewind") return { queue, dueInMs: 0, landing: { kind: "rewind" } };
  if (what.startsWith("p")) return { queue, dueInMs: 0, landing: parseLanding(what) };
  return { queue, dueInMs: Number(what) || 0, landing: where === undefined ? undefined : parseLanding(where) };
}

/** `p<priority>`, or `p<priority>@<ms since the epoch>`; anything else says nothing of where. */
function parseLanding(text: string): Landing | undefined {
  const [priority, runAtMs] = text.slice(1).split("@").map(Number);
  if (!Number.isInteger(priority)) return undefined;
  return Number.isFinite(runAtMs) ? { kind: "priority", priority: priority!, runAtMs } : { kind: "priority", priority: priority! };
}
