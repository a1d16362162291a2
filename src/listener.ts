// The LISTEN connection that wakes idle workers within milliseconds of a commit.
//
// pgq keeps this connection itself rather than using postgres.js's sql.listen(), which
// re-listens after a disconnect only once and drops the listener silently if the database is
// still down at that moment. Here a lost connection is logged, retried with backoff for as
// long as it takes, and reported with a "restored" event, on which the worker fetches at once
// whatever was enqueued while it was deaf.
import { EventEmitter } from "node:events";
import type { Sql } from "postgres";
import type { Logger } from "pino";
import { bounded, openConnection, type ConnectionSource } from "./db.js";
import { quoteIdent } from "./schema.js";

const LISTEN_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

interface ListenerEvents {
  notify: [payload: string];
  lost: [];
  restored: [];
}

export class Listener extends EventEmitter<ListenerEvents> {
  private readonly sql: Sql;
  private listening = false;
  private closed = false;
  private reconnecting: Promise<void> | undefined;

  constructor(
    connection: ConnectionSource,
    private readonly channel: string,
    private readonly log: Logger,
  ) {
    super();
    this.sql = openConnection(connection, log, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      fetch_types: false,
      onnotify: (ch: string, payload: string) => {
        if (ch === this.channel) this.emit("notify", payload);
      },
      onclose: () => this.connectionClosed(),
    } as never);
  }

  /** Resolves once LISTEN is in place; if the database cannot be reached, keeps trying in the background. */
  async start(): Promise<void> {
    try {
      await this.listen();
    } catch (error) {
      this.log.warn({ err: error }, "cannot LISTEN for new jobs yet; polling until the connection is back");
      this.reconnect();
    }
  }

  get isListening(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.sql.end({ timeout: 1 }).catch(() => undefined);
  }

  private async listen(): Promise<void> {
    await bounded(this.sql.unsafe(`listen ${quoteIdent(this.channel)}`), LISTEN_TIMEOUT_MS, "LISTEN");
    this.listening = true;
  }

  private connectionClosed(): void {
    if (this.closed) return;
    if (this.listening) {
      this.listening = false;
      this.log.warn("the LISTEN connection was lost; reconnecting, and polling meanwhile");
      this.emit("lost");
    }
    this.reconnect();
  }

  private reconnect(): void {
    this.reconnecting ??= (async () => {
      for (let delay = RETRY_MIN_MS; !this.closed; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (this.closed) break;
        try {
          await this.listen();
          this.log.info("the LISTEN connection is back; fetching what was enqueued meanwhile");
          this.emit("restored");
          break;
        } catch (error) {
          this.log.debug({ err: error, retryInMs: delay }, "LISTEN reconnect failed");
        }
      }
    })().finally(() => (this.reconnecting = undefined));
  }
}
