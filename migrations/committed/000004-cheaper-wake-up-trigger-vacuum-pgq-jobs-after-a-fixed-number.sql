--! Previous: sha1:6e31c7c4862181adfbabfadebee3de2a492e0216
--! Hash: sha1:220272b42824f3a8cbbd574b8fad6585f1de5d35
--! Message: cheaper wake-up trigger; vacuum pgq.jobs after a fixed number of dead tuples

-- Issue 6: a cheaper wake-up trigger, and table settings for a table that churns.
--
-- The wake-up trigger without aggregates. 000003's version ran two aggregating queries over the
-- transition table on every insert statement; their executor start-up (a subquery scan and a
-- hash aggregate each) was about a sixth of the backend's CPU time for a one-job insert.
-- Now ready jobs notify row by row, which PostgreSQL folds into one notification per queue and
-- transaction, and only a statement that inserts delayed jobs runs the aggregate for their ms.
create or replace function :PGQ_SCHEMA.notify_ready() returns trigger
language plpgsql as $$
begin
  perform pg_notify(tg_table_schema || '_jobs', n.queue) from new_jobs n where n.run_at <= now();
  if exists (select from new_jobs n where n.run_at > now()) then
    perform pg_notify(tg_table_schema || '_jobs',
                      later.queue || E'\n' || ceil(extract(epoch from later.due - now()) * 1000)::bigint)
    from (select n.queue, min(n.run_at) as due from new_jobs n where n.run_at > now() group by n.queue) later;
  end if;
  return null;
end;
$$;

-- Vacuum pgq.jobs after a fixed number of dead tuples, whatever its size. Every job leaves two
-- dead versions (the claim's UPDATE, then the DELETE that completes it), and they sit at the
-- head of jobs_claim, where every claim starts its scan: after 40,000 jobs of churn on a 5M-row
-- table the claim read 262 buffers instead of 21 (bench/RESULTS.md). 000001's scale factor of
-- 0.01 let a 5M-row backlog collect 51,000 dead tuples before autovacuum came; with 0 it comes
-- after 1,000 at any size (at most once per autovacuum_naptime, a server setting). fillfactor
-- stays 70: no update of pgq.jobs can be HOT (the claim, renewal and retry all change
-- locked_until or run_at, which jobs_claim's predicate or an index key reads), but the free
-- space keeps a third of the claims' new row versions on their own page (n_tup_newpage_upd:
-- 64% of updates moved page at fillfactor 70, 95% at 100).
alter table :PGQ_SCHEMA.jobs set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
