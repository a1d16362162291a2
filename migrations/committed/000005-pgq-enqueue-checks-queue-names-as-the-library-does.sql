--! Previous: sha1:220272b42824f3a8cbbd574b8fad6585f1de5d35
--! Hash: sha1:bfcd4b1525350cfab144b4eb3435839d27ca2360
--! Message: pgq.enqueue checks queue names as the library does

-- pgq.enqueue refuses what the library refuses, before it writes, with SQLSTATE 22023
-- (invalid_parameter_value) and a message that says what to do. 000001 checked only the payload's
-- size, and left queue names to the jobs_queue_name constraint (a bare 23514) or let them
-- through: a name with surrounding whitespace or a line separator was stored, and no worker can
-- be started for it (the library refuses the name), so its jobs were stuck.
create or replace function :PGQ_SCHEMA.enqueue(
  queue        text,
  payload      jsonb default 'null',
  priority     integer default 0,
  run_at       timestamptz default now(),
  max_attempts integer default 25,
  dedupe_key   text default null,
  group_key    text default null
) returns bigint
language plpgsql as $$
#variable_conflict use_column
declare
  job_id bigint;
begin
  if enqueue.queue is null or char_length(enqueue.queue) not between 1 and 128 then
    raise exception 'pgq.enqueue: the queue name must be 1 to 128 characters long (got %)',
      coalesce(char_length(enqueue.queue)::text, 'null') using errcode = 'invalid_parameter_value';
  end if;
  -- As src/validate.ts: control characters, line and paragraph separators, private use;
  -- and no surrounding whitespace, as JavaScript's trim() sees it.
  if enqueue.queue ~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029\ue000-\uf8ff\U000f0000-\U0010ffff]'
     or enqueue.queue ~ '^[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff]|[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff]$' then
    raise exception 'pgq.enqueue: queue name % has a character that is not printable, or starts or ends with whitespace',
      to_json(enqueue.queue) using errcode = 'invalid_parameter_value';
  end if;
  if octet_length(enqueue.payload::text) > 1048576 then
    raise exception 'pgq.enqueue: the payload is % bytes once serialised; the limit is 1048576',
      octet_length(enqueue.payload::text) using errcode = 'program_limit_exceeded';
  end if;
  insert into :PGQ_SCHEMA.jobs (queue, payload, priority, run_at, max_attempts, dedupe_key, group_key)
  values (enqueue.queue, coalesce(enqueue.payload, 'null'), coalesce(enqueue.priority, 0),
          coalesce(enqueue.run_at, now()), coalesce(enqueue.max_attempts, 25),
          enqueue.dedupe_key, enqueue.group_key)
  on conflict (queue, dedupe_key) where dedupe_key is not null do nothing
  returning id into job_id;
  if job_id is null then
    select j.id into job_id from :PGQ_SCHEMA.jobs j
    where j.queue = enqueue.queue and j.dedupe_key = enqueue.dedupe_key;
  end if;
  return job_id;
end;
$$;
