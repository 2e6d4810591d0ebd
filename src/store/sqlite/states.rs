//! SQL for single-use OAuth states: a nonce is recorded when its state is used, and a second
//! use finds it there.

use rusqlite::{Connection, params};

use crate::domain::Timestamp;
use crate::error::Result;

pub(super) fn consume(
    conn: &Connection,
    nonce: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    conn.prepare_cached("DELETE FROM oauth_state_nonces WHERE expires_at < ?1")?
        .execute([now.unix()])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO oauth_state_nonces (nonce, expires_at) VALUES (?1, ?2)
             ON CONFLICT (nonce) DO NOTHING",
        )?
        .execute(params![nonce, expires_at.unix()])?;
    Ok(inserted == 1)
}
