// Enqueue in the application's own transaction, whatever library it uses (db/executor.ts). For
// each library, the body of placeOrder is the README's example ("Using pgq with ..."), plus a
// batch enqueue and a publish in the same transaction: a commit leaves the application's row and
// every job, a rollback leaves neither, and the wake-up NOTIFY arrives only with the commit.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { drizzle as drizzlePostgresJs } from "drizzle-orm/postgres-js";
import { sql as drizzleSql } from "drizzle-orm";
import knexFactory from "knex";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import postgres from "postgres";
import postgresCopy from "postgres-copy";
import { DataSource } from "typeorm";
import { transactionAdapter, ValidationError, type Queue, type Transaction } from "../src/index.js";
import { testQueue } from "./helpers/queue.js";
import { waitFor } from "./helpers/wait.js";

const { q, db, url } = await testQueue();
await db`create table orders (id integer primary key)`;

/** What each library's example does inside its transaction, beyond the README's one enqueue. */
async function more(q: Queue, orderId: number, tx: Transaction, rollback: boolean) {
  await q.enqueueMany(`batch_${orderId}`, [{ orderId, n: 1 }, { orderId, n: 2 }, { orderId, n: 3 }], { tx });
  await q.publish(`orders.placed.${orderId}`, { orderId }, { tx });
  if (rollback) throw new Error("the application changed its mind");
}

interface Library {
  /** Runs the README's example for this library; with rollback, it throws inside the transaction. */
  placeOrder(orderId: number, rollback: boolean): Promise<void>;
  close(): Promise<void>;
}

const libraries: Record<string, () => Promise<Library>> = {
  "postgres.js (another copy)": async () => {
    // The application's own postgres.js: the same version as pgq's, another copy.
    const sql = postgresCopy(url, { max: 2, onnotice: () => {} });
    return {
      async placeOrder(orderId, rollback) {
        await sql.begin(async (tx) => {
          await tx`insert into orders (id) values (${orderId})`;
          await q.enqueue("emails", { orderId }, { tx });
          await more(q, orderId, tx, rollback);
        });
      },
      close: () => sql.end(),
    };
  },
  "pg PoolClient": async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    return {
      async placeOrder(orderId, rollback) {
        const client = await pool.connect();
        try {
          await client.query("begin");
          await client.query("insert into orders (id) values ($1)", [orderId]);
          await q.enqueue("emails", { orderId }, { tx: client });
          await more(q, orderId, client, rollback);
          await client.query("commit");
        } catch (error) {
          await client.query("rollback");
          throw error;
        } finally {
          client.release();
        }
      },
      close: () => pool.end(),
    };
  },
  "pg Client": async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return {
      async placeOrder(orderId, rollback) {
        await client.query("begin");
        try {
          await client.query("insert into orders (id) values ($1)", [orderId]);
          await q.enqueue("emails", { orderId }, { tx: client });
          await more(q, orderId, client, rollback);
          await client.query("commit");
        } catch (error) {
          await client.query("rollback");
          throw error;
        }
      },
      close: () => client.end(),
    };
  },
  "Kysely": async () => {
    const kysely = new Kysely<{ orders: { id: number } }>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
    });
    return {
      async placeOrder(orderId, rollback) {
        await kysely.transaction().execute(async (trx) => {
          await trx.insertInto("orders").values({ id: orderId }).execute();
          await q.enqueue("emails", { orderId }, { tx: trx });
          await more(q, orderId, trx, rollback);
        });
      },
      close: () => kysely.destroy(),
    };
  },
  "Drizzle (node-postgres)": async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const drizzleDb = drizzlePg({ client: pool });
    return {
      async placeOrder(orderId, rollback) {
        await drizzleDb.transaction(async (tx) => {
          await tx.execute(drizzleSql`insert into orders (id) values (${orderId})`);
          await q.enqueue("emails", { orderId }, { tx });
          await more(q, orderId, tx, rollback);
        });
      },
      close: () => pool.end(),
    };
  },
  "Drizzle (postgres.js)": async () => {
    const client = postgres(url, { max: 2, onnotice: () => {} });
    const drizzleDb = drizzlePostgresJs({ client });
    return {
      async placeOrder(orderId, rollback) {
        await drizzleDb.transaction(async (tx) => {
          await tx.execute(drizzleSql`insert into orders (id) values (${orderId})`);
          await q.enqueue("emails", { orderId }, { tx });
          await more(q, orderId, tx, rollback);
        });
      },
      close: () => client.end(),
    };
  },
  "Knex": async () => {
    const knex = knexFactory({ client: "pg", connection: url, pool: { min: 0, max: 2 } });
    return {
      async placeOrder(orderId, rollback) {
        await knex.transaction(async (trx) => {
          await trx("orders").insert({ id: orderId });
          await q.enqueue("emails", { orderId }, { tx: trx });
          await more(q, orderId, trx, rollback);
        });
      },
      close: () => knex.destroy(),
    };
  },
  "TypeORM EntityManager": async () => {
    const dataSource = await new DataSource({ type: "postgres", url, poolSize: 2 }).initialize();
    return {
      async placeOrder(orderId, rollback) {
        await dataSource.transaction(async (manager) => {
          await manager.query("insert into orders (id) values ($1)", [orderId]);
          await q.enqueue("emails", { orderId }, { tx: manager });
          await more(q, orderId, manager, rollback);
        });
      },
      close: () => dataSource.destroy(),
    };
  },
  "TypeORM QueryRunner": async () => {
    const dataSource = await new DataSource({ type: "postgres", url, poolSize: 2 }).initialize();
    return {
      async placeOrder(orderId, rollback) {
        const queryRunner = dataSource.createQueryRunner();
        await queryRunner.startTransaction();
        try {
          await queryRunner.query("insert into orders (id) values ($1)", [orderId]);
          await q.enqueue("emails", { orderId }, { tx: queryRunner });
          await more(q, orderId, queryRunner, rollback);
          await queryRunner.commitTransaction();
        } catch (error) {
          await queryRunner.rollbackTransaction();
          throw error;
        } finally {
          await queryRunner.release();
        }
      },
      close: () => dataSource.destroy(),
    };
  },
  "Prisma": async () => {
    const { PrismaClient, PrismaPg } = await prisma();
    const prismaClient = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 2 }) });
    return {
      async placeOrder(orderId, rollback) {
        await prismaClient.$transaction(async (tx) => {
          await tx.$executeRaw`insert into orders (id) values (${orderId})`;
          await q.enqueue("emails", { orderId }, { tx });
          await more(q, orderId, tx, rollback);
        });
      },
      close: () => prismaClient.$disconnect(),
    };
  },
};

/**
 * Prisma's client is generated from a schema (test/fixtures/prisma), here into a folder git
 * ignores. Its CLI fetches a schema engine first, which `generate` never runs: pointing it at
 * /bin/true lets generation work without a download.
 */
async function prisma() {
  const dir = "test/fixtures/prisma";
  if (!existsSync(`${dir}/generated/client.ts`)) {
    await promisify(execFile)(process.execPath, ["node_modules/prisma/build/index.js", "generate", "--schema", `${dir}/schema.prisma`], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: "/bin/true", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    });
  }
  const { PrismaClient } = await import("./fixtures/prisma/generated/client.js");
  const { PrismaPg } = await import("@prisma/adapter-pg");
  return { PrismaClient, PrismaPg };
}

/** The queues whose wake-up NOTIFY arrived, on a LISTEN connection of its own. */
const woken = new Set<string>();
const listener = postgres(url, { max: 1, onnotice: () => {} });
// A ready job's notification is its queue, then a line saying where it lands (migration 000012).
await listener.listen("pgq_jobs", (payload) => woken.add(payload.split("\n")[0]!));
after(() => listener.end());

async function rowsOf(orderId: number) {
  const [row] = await db`
    select (select count(*)::int from orders where id = ${orderId}) as orders,
           (select count(*)::int from pgq.jobs where payload->>'orderId' = ${String(orderId)}) as jobs`;
  return row!;
}

/** Enqueues on pgq's own pool and waits for its wake-up: NOTIFYs arrive in commit order, so any earlier one would have too. */
async function probe(name: string): Promise<void> {
  const queue = `probe_${name.replace(/\W+/g, "_")}`;
  await q.enqueue(queue, {});
  await waitFor(() => woken.has(queue), { what: `the wake-up of ${queue}` });
}

let nextOrder = 1;
for (const [name, make] of Object.entries(libraries)) {
  describe(`a transaction of ${name}`, async () => {
    let library: Library;
    before(async () => {
      library = await make();
    });
    after(() => library.close());

    test("commit leaves the row and every job, and wakes workers", async () => {
      const orderId = nextOrder++;
      await q.subscribe(`audit_${orderId}`, `orders.placed.${orderId}`);
      await library.placeOrder(orderId, false);
      assert.deepEqual(await rowsOf(orderId), { orders: 1, jobs: 5 });
      const queues = await db`select queue from pgq.jobs where payload->>'orderId' = ${String(orderId)} order by id`;
      assert.deepEqual(queues.map((r) => r.queue), ["emails", `batch_${orderId}`, `batch_${orderId}`, `batch_${orderId}`, `audit_${orderId}`]);
      await waitFor(() => woken.has(`batch_${orderId}`) && woken.has(`audit_${orderId}`), { what: "the wake-ups of the committed jobs" });
    });

    test("rollback leaves neither, and wakes no one", async () => {
      const orderId = nextOrder++;
      await q.subscribe(`audit_${orderId}`, `orders.placed.${orderId}`);
      await assert.rejects(library.placeOrder(orderId, true), /changed its mind/);
      assert.deepEqual(await rowsOf(orderId), { orders: 0, jobs: 0 });
      await probe(`${name}_${orderId}`);
      assert.equal(woken.has(`batch_${orderId}`) || woken.has(`audit_${orderId}`), false);
    });
  });
}

test("Prisma's batch transaction enqueues with pgq.enqueue in SQL", async () => {
  const { PrismaClient, PrismaPg } = await prisma();
  const prismaClient = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) });
  after(() => prismaClient.$disconnect());
  const orderId = nextOrder++;
  await prismaClient.$transaction([
    prismaClient.$executeRaw`insert into orders (id) values (${orderId})`,
    prismaClient.$executeRaw`select pgq.enqueue('emails', ${JSON.stringify({ orderId })}::jsonb, max_attempts => 5)`,
  ]);
  assert.deepEqual(await rowsOf(orderId), { orders: 1, jobs: 1 });
});

test("the aliased postgres.js is a module instance of its own", () => {
  assert.notEqual(postgresCopy, postgres);
});

test("an object pgq cannot use is refused before any SQL, naming what tx may be", async () => {
  const [before] = await db`select count(*)::int as n from pgq.jobs`;
  for (const tx of [{}, "tx", 42, () => {}, { query: () => {} }, { session: {}, execute: () => {} }] as never[]) {
    for (const attempt of [() => q.enqueue("emails", {}, { tx }), () => q.enqueueMany("emails", [{}], { tx }), () => q.publish("orders.placed", {}, { tx })]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.code, "INVALID_OPTION");
        assert.match(error.message, /tx must be a transaction or client of postgres\.js, pg .*Kysely, Drizzle .*Knex, TypeORM .*Prisma/);
        return true;
      });
    }
  }
  const [afterwards] = await db`select count(*)::int as n from pgq.jobs`;
  assert.equal(afterwards!.n, before!.n);
});

test("transactionAdapter runs pgq's statements through any driver's (text, params)", async () => {
  const seen: string[] = [];
  await db.begin(async (tx) => {
    const adapter = transactionAdapter(async (text, params) => {
      seen.push(text);
      return tx.unsafe(text, params as never[]);
    });
    const { id } = await q.enqueue("adapted", { n: 1 }, { tx: adapter, priority: 3 });
    const ids = await q.enqueueMany("adapted", [{ n: 2 }, { n: 3 }], { tx: adapter, dedupeKey: "d" });
    assert.equal(typeof id, "string");
    assert.deepEqual(ids, [ids[0], ids[0]]);
  });
  assert.equal(seen.length, 2);
  const rows = await db`select priority from pgq.jobs where queue = 'adapted' order by id`;
  assert.deepEqual(rows.map((r) => r.priority), [3, 0]);
});
