"""The shared rate budget grants in one round trip: `grant_rate_budget(...)`.

Before, every provider call ran a transaction of six statements (create the budget rows, lock
them, read the clock, purge old grants, sum, insert) while holding the budget rows' locks, so the
instances took turns at the pace of those round trips. The function runs the same steps inside
the server, in the same order and under the same locks, so the rows are held for the function's
run and the commit only.

It is a function, not one SQL statement, because the sum must be read after the lock is granted:
in READ COMMITTED every statement of a PL/pgSQL function takes a new snapshot, so the sum sees
every grant committed by the transaction the lock waited for; one statement (CTEs) keeps the
snapshot taken before it waited and would grant beside that transaction unchecked.

The grant's transaction commits with `synchronous_commit = off` (set by the function, for that
transaction only): the budget rows' locks are released without waiting for the WAL flush, which
on a busy or slow disk is most of the time they are held, and a backend that sleeps on the flush
while holding them makes every instance wait for it to be scheduled again. What it costs: a crash
of PostgreSQL itself (not of an instance) can lose the grants of its last moments (up to three
`wal_writer_delay`, 0.6 s by default), so the window spanning that crash may be overspent by
them. Around a database outage the quota is already not exact (the instances' fallback shares
know nothing of the grants made before it); the rule holds exactly while PostgreSQL is up.

Granted: no rows. Not granted: for each budget the request does not fit, its live grants
`(over_budget, grant_epoch, grant_amount)` and the server's clock `now_epoch`, from which the
caller works out the wait (`domain/rate_window.py`). Needs above a limit count as the limit.

Revision ID: llm0002_rate_grant_function
Revises: llm0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "llm0002_rate_grant_function"
down_revision: str | None = "llm0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANT_RATE_BUDGET = """
create function grant_rate_budget(
    p_names text[], p_needs bigint[], p_limits bigint[], p_period double precision
) returns table (
    over_budget text, grant_epoch double precision, grant_amount bigint, now_epoch double precision
)
language plpgsql as $$
declare
    v_now timestamptz;
    v_over text[];
begin
    -- Waits for a transaction that inserted a row and has not committed, so the lock below
    -- always finds the rows (no call grants beside an uncommitted first one unchecked).
    insert into rate_budgets (name) select unnest(p_names) on conflict do nothing;
    perform 1 from rate_budgets where name = any(p_names) order by name for update;
    -- This transaction only: its commit does not wait for the WAL flush while holding the rows.
    perform set_config('synchronous_commit', 'off', true);
    v_now := clock_timestamp();
    delete from rate_grants
    where budget = any(p_names) and granted_at <= v_now - make_interval(secs => p_period);
    select array_agg(n.name) into v_over
    from unnest(p_names, p_needs, p_limits) as n(name, need, cap)
    where coalesce((select sum(g.amount) from rate_grants g where g.budget = n.name), 0)
          + least(n.need, n.cap) > n.cap;
    if v_over is null then
        insert into rate_grants (budget, amount, granted_at)
        select n.name, least(n.need, n.cap), v_now
        from unnest(p_names, p_needs, p_limits) as n(name, need, cap);
        return;
    end if;
    return query
        select g.budget, extract(epoch from g.granted_at)::float8, g.amount,
               extract(epoch from v_now)::float8
        from rate_grants g where g.budget = any(v_over);
end $$
"""


def upgrade() -> None:
    op.execute(GRANT_RATE_BUDGET)


def downgrade() -> None:
    op.execute("drop function grant_rate_budget(text[], bigint[], bigint[], double precision)")
