//! SQL for single-use OAuth states: a nonce is recorded when its state is used, and a second
//! use finds it there.

use rusqlite::{Connection, params};

use crate::error::Result;

/// Records `nonce` as used; false when it was used before. Prunes nonces whose states have
/// expired (they can no longer be presented anyway).
pub fn consume(conn: &Connection, nonce: &str, expires_at: u64, now: u64) -> Result<bool> {
    conn.prepare_cached("DELETE FROM oauth_state_nonces WHERE expires_at < ?1")?
        .execute([now as i64])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO oauth_state_nonces (nonce, expires_at) VALUES (?1, ?2)
             ON CONFLICT (nonce) DO NOTHING",
        )?
        .execute(params![nonce, expires_at as i64])?;
    Ok(inserted == 1)
}
