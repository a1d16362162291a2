// Transaction mode: each running job holds a connection of its own for its transaction
// (job-connection.ts says why not a shared pool). One per slot is opened at start, so that a
// process the server cannot take says so then (openError) rather than failing jobs later. A slot
// takes an idle one (or opens one, should a timed-out transaction still hold its own), and gives
// it back when its job's transaction is over.
import type { Logger } from "pino";
import type { ConnectionSource } from "../db/connections.js";
import { JobConnection } from "./job-connection.js";

export class SlotConnections {
  private readonly idle: JobConnection[] = [];
  private readonly all: JobConnection[] = [];

  constructor(
    private readonly source: ConnectionSource,
    private readonly log: Logger,
    /** Behind a transaction-mode pooler: a slot's backend changes with every transaction. */
    private readonly pooled: boolean,
    slots: number,
  ) {
    for (let i = 0; i < slots; i++) this.idle.push(this.open());
  }

  /** The error that kept a slot's connection from opening at start, if any. */
  async openError(): Promise<unknown> {
    return (await Promise.all(this.all.map((c) => c.opened))).find((error) => error !== undefined);
  }

  take(): JobConnection {
    return this.idle.pop() ?? this.open();
  }

  private open(): JobConnection {
    const connection = new JobConnection(this.source, this.log, this.pooled);
    this.all.push(connection);
    return connection;
  }

  giveBack(connection: JobConnection): void {
    this.idle.push(connection);
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()));
  }
}
