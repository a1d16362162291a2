--! Previous: sha1:e7d0067b59133dbcbb02c4c10a3d1bd093918c07
--! Hash: sha1:c57c0dff57e9273f809328d36a706a284ee2b072
--! Message: pgq.enqueue takes expires_at and ttl_ms

-- pgq.enqueue takes the expiry the library takes (issue 12): expires_at, or ttl_ms counted from
-- when the job is due, as q.enqueue's expiresAt and ttlMs; a job not started by then never runs
-- and is finished as expired. Both come last, so every earlier argument keeps its place and
-- default, and named and positional calls written for 000009 work unchanged. As in 000006, a new
-- argument makes a new function: privileges granted on the old one go with it.
drop function :PGQ_SCHEMA.enqueue(text, jsonb, integer, timestamptz, integer, text, text, integer, integer, integer, bigint, text);

create function :PGQ_SCHEMA.enqueue(
  queue           text,
  payload         jsonb       default 'null',
  priority        integer     default 0,
  -- null: now, or delay_ms from now (by the database's clock)
  run_at          timestamptz default null,
  max_attempts    integer     default 25,
  dedupe_key      text        default null,
  group_key       text        default null,
  backoff_base_ms integer     default 1000,
  -- null: one hour, or backoff_base_ms if that is longer
  backoff_max_ms  integer     default null,
  -- null: the worker's timeout
  timeout_ms      integer     default null,
  delay_ms        bigint      default null,
  -- a W3C traceparent: the job's process spans continue this trace (null: none)
  trace_context   text        default null,
  -- not started by then, the job never runs: it is finished as expired (null: never, unless ttl_ms)
  expires_at      timestamptz default null,
  -- expires this long after it is due (run_at, or delay_ms from now); not with expires_at
  ttl_ms          bigint      default null
) returns bigint
language plpgsql as $$
#variable_conflict use_column
declare
  job_id  bigint;
  base_ms integer := coalesce(enqueue.backoff_base_ms, 1000);
  max_ms  integer := coalesce(enqueue.backoff_max_ms, greatest(3600000, base_ms));
  due     timestamptz;
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
  if enqueue.run_at is not null and enqueue.delay_ms is not null then
    raise exception 'pgq.enqueue: give run_at or delay_ms, not both' using errcode = 'invalid_parameter_value';
  end if;
  if not isfinite(enqueue.run_at) then
    raise exception 'pgq.enqueue: run_at must be a finite time (got %)', enqueue.run_at
      using errcode = 'invalid_parameter_value';
  end if;
  -- A hundred years, as the library's MAX_DELAY_MS.
  if enqueue.delay_ms not between 0 and 3153600000000 then
    raise exception 'pgq.enqueue: delay_ms must be from 0 to 3153600000000 (a hundred years), got %', enqueue.delay_ms
      using errcode = 'invalid_parameter_value';
  end if;
  if enqueue.max_attempts < 1 then
    raise exception 'pgq.enqueue: max_attempts must be 1 or more (got %)', enqueue.max_attempts
      using errcode = 'invalid_parameter_value';
  end if;
  if base_ms < 0 then
    raise exception 'pgq.enqueue: backoff_base_ms must be 0 or more (got %)', base_ms
      using errcode = 'invalid_parameter_value';
  end if;
  if max_ms < base_ms then
    raise exception 'pgq.enqueue: backoff_max_ms must be at least backoff_base_ms (%), got %', base_ms, max_ms
      using errcode = 'invalid_parameter_value';
  end if;
  if enqueue.timeout_ms < 1 then
    raise exception 'pgq.enqueue: timeout_ms must be 1 or more, or null for the worker''s timeout (got %)', enqueue.timeout_ms
      using errcode = 'invalid_parameter_value';
  end if;
  if char_length(enqueue.dedupe_key) not between 1 and 512 then
    raise exception 'pgq.enqueue: dedupe_key must be 1 to 512 characters long, or null (got %)', char_length(enqueue.dedupe_key)
      using errcode = 'invalid_parameter_value';
  end if;
  if char_length(enqueue.group_key) not between 1 and 512 then
    raise exception 'pgq.enqueue: group_key must be 1 to 512 characters long, or null (got %)', char_length(enqueue.group_key)
      using errcode = 'invalid_parameter_value';
  end if;
  if enqueue.expires_at is not null and enqueue.ttl_ms is not null then
    raise exception 'pgq.enqueue: give expires_at or ttl_ms, not both' using errcode = 'invalid_parameter_value';
  end if;
  if not isfinite(enqueue.expires_at) then
    raise exception 'pgq.enqueue: expires_at must be a finite time, or null for no expiry (got %)', enqueue.expires_at
      using errcode = 'invalid_parameter_value';
  end if;
  if enqueue.ttl_ms not between 1 and 3153600000000 then
    raise exception 'pgq.enqueue: ttl_ms must be from 1 to 3153600000000 (a hundred years), or null for no expiry, got %', enqueue.ttl_ms
      using errcode = 'invalid_parameter_value';
  end if;
  if enqueue.trace_context !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-|$)'
     or char_length(enqueue.trace_context) > 512 then
    raise exception 'pgq.enqueue: trace_context must be a W3C traceparent such as 00-<32 hex>-<16 hex>-01, or null (got %)',
      to_json(left(enqueue.trace_context, 100)) using errcode = 'invalid_parameter_value';
  end if;
  -- With a dedupe key whose live twin finishes between the insert and the lookup, neither
  -- finds a job: the next insert takes the key.
  due := coalesce(enqueue.run_at, now() + coalesce(enqueue.delay_ms, 0) * interval '1 millisecond');
  loop
    insert into :PGQ_SCHEMA.jobs (queue, payload, priority, run_at, max_attempts, backoff_base_ms,
                                  backoff_max_ms, timeout_ms, dedupe_key, group_key, trace_context, expires_at)
    values (enqueue.queue, coalesce(enqueue.payload, 'null'), coalesce(enqueue.priority, 0), due,
            coalesce(enqueue.max_attempts, 25), base_ms, max_ms, enqueue.timeout_ms,
            enqueue.dedupe_key, enqueue.group_key, enqueue.trace_context,
            coalesce(enqueue.expires_at, due + enqueue.ttl_ms * interval '1 millisecond'))
    on conflict (queue, dedupe_key) where dedupe_key is not null do nothing
    returning id into job_id;
    exit when job_id is not null;
    select j.id into job_id from :PGQ_SCHEMA.jobs j
    where j.queue = enqueue.queue and j.dedupe_key = enqueue.dedupe_key;
    exit when job_id is not null;
  end loop;
  return job_id;
end;
$$;
