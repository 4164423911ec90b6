-- A team's schema, as the drills must protect it: a partitioned table, a materialized view,
-- an audit trigger, a domain with a CHECK, an enum, jsonb with a GIN index.
CREATE TYPE account_state AS ENUM ('trial', 'active', 'closed');
CREATE DOMAIN positive_cents AS bigint CHECK (VALUE > 0);

CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    state account_state NOT NULL DEFAULT 'trial',
    profile jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX accounts_profile_gin ON accounts USING gin (profile);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL,
    account_id bigint
);
CREATE FUNCTION audit_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (action, account_id) VALUES (TG_OP, NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER accounts_audit AFTER INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION audit_accounts();

CREATE TABLE payments (
    id bigserial,
    account_id bigint NOT NULL REFERENCES accounts (id),
    amount positive_cents NOT NULL,
    paid_on date NOT NULL,
    PRIMARY KEY (id, paid_on)
) PARTITION BY RANGE (paid_on);
CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE payments_2025 PARTITION OF payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');

INSERT INTO accounts (email, state, profile)
SELECT 'user' || g || '@example.test', (ARRAY['trial', 'active', 'closed']::account_state[])[1 + g % 3],
       jsonb_build_object('plan', g % 4, 'tags', jsonb_build_array('a', g))
FROM generate_series(1, 300) g;
INSERT INTO payments (account_id, amount, paid_on)
SELECT 1 + g % 300, 100 + g, date '2024-01-01' + (g % 700)
FROM generate_series(1, 3000) g;

CREATE MATERIALIZED VIEW revenue_by_state AS
SELECT a.state, count(*) AS payments, sum(p.amount) AS cents
FROM payments p JOIN accounts a ON a.id = p.account_id GROUP BY a.state;
