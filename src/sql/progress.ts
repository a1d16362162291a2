// Progress: a running job's latest ctx.progress() value, on its row, fenced by the lease token.
import type { Sql } from "postgres";
import type { Tables } from "../db/tables.js";

/** False if the job is no longer held under this token (lost, rescued or cancelled). */
export async function recordProgress(sql: Sql, t: Tables, id: string, token: string, value: string): Promise<boolean> {
  const rows = await sql`
    update ${t.jobs} set progress = ${value}::text::jsonb
    where id = ${id} and lease_token = ${token}
    returning 1`;
  return rows.length > 0;
}
