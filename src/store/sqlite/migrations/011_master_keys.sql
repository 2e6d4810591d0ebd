-- The master keys this database's values are sealed with, so a rotation can keep two side by
-- side: each sealed value names its key by id in its header (values without one are key 1's).
-- The key with the highest id that is not retired seals new values.
CREATE TABLE master_keys (
    id           INTEGER PRIMARY KEY NOT NULL, -- the key id sealed values carry
    check_value  TEXT NOT NULL,                -- the key's public fingerprint (HKDF, own label)
    added_at     INTEGER NOT NULL,             -- unix seconds
    retired_at   INTEGER,                      -- no value is sealed with it since then
    accept_until INTEGER                       -- its OAuth states and dashboard tokens count until then
) STRICT;

-- The one key before rotations existed is key 1.
INSERT INTO master_keys (id, check_value, added_at)
SELECT 1, value, unixepoch() FROM meta WHERE key = 'master_key_check';
DELETE FROM meta WHERE key = 'master_key_check';
