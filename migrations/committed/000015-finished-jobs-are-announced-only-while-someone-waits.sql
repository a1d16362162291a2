--! Previous: sha1:74033f04a55a1a0d4d7179f3ddde2fe8fb30bb04
--! Hash: sha1:34768aa5f3c1d422e263f445e0beadad472cae09
--! Message: finished jobs are announced only while someone waits

-- Issue 17: every statement that finishes jobs announced their ids on <schema>_finished for
-- q.waitFor(), whether or not anyone waited. That cost about a quarter of a batched completion's
-- time in the database, and more than that: at commit, PostgreSQL signals every session of the
-- database that LISTENs on any channel (each worker's wake-up connection among them), and each
-- wakes to read the notification queue. Clients that wait now say so here: a row per client,
-- touched while it waits and for a while after; a finishing statement announces only while some
-- row is fresh (sql/history.ts says how fresh). Unlogged: after a crash the table is empty until
-- the waiters touch it again, and in the meantime they find their jobs by polling.
create unlogged table :PGQ_SCHEMA.waiting_clients (
  client  uuid primary key,
  seen_at timestamptz not null default now()
);
