// Transaction mode: each running job holds a connection of its own for its transaction
// (job-connection.ts says why not a shared pool). A slot takes an idle one or opens one, and
// gives it back when its job's transaction is over.
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
  ) {}

  take(): JobConnection {
    const idle = this.idle.pop();
    if (idle) return idle;
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
