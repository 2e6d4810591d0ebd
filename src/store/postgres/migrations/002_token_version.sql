-- SQLite's migration 014: a per-account version of its tokens, incremented by every write of
-- them; refreshes decide on it, never on the tokens themselves.
ALTER TABLE accounts ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;
