-- A per-account version of its tokens, incremented by every write of them (a connect, a
-- refresh, a Page's token from a relist). Refreshes decide on it: the lease, the
-- compare-and-write of a refresh's result and a waiter's "did someone else finish?" compare
-- versions, never the tokens themselves, since a provider may answer a refresh with the very
-- token it was given (an unchanged token does not mean that no refresh happened).
ALTER TABLE accounts ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
