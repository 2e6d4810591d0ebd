//! `dravo serve`: the HTTP API until a signal stops it.

use crate::config::Config;
use crate::error::{Error, Result};

/// Serves on a multi-threaded runtime (every other command needs one thread only).
pub fn run(config: Config) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?
        .block_on(crate::serve(config))
}
