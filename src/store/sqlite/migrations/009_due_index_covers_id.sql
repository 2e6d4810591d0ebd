-- The refresher's due query reads only `id`: with it in the index the query never touches the
-- table, whose rows for a batch of 200 are scattered over the whole file at a million
-- accounts (benches/scale.rs: 3x its time on an empty database before, see benches/README.md).
DROP INDEX accounts_due;
CREATE INDEX accounts_due ON accounts (next_refresh_at, id) WHERE next_refresh_at IS NOT NULL;
