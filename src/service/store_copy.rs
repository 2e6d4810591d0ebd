//! `dravo store copy`: moves a whole database from one backend to the other (SQLite to
//! PostgreSQL, or back), sealed values as they are, then checks that every table holds as
//! many rows on both sides.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::tables::TABLES;
use crate::store::{DatabaseLocation, Store};

/// Opens a location, migrating its schema to this build's. A source must exist; a SQLite
/// target is created when missing.
async fn open(location: &DatabaseLocation, must_exist: bool) -> Result<Arc<dyn Store>> {
    if must_exist
        && let Some(path) = location.local_file()
        && !path.is_file()
    {
        return Err(Error::config(format!(
            "no SQLite database at {}",
            path.display()
        )));
    }
    location.open(None).await
}

/// How many rows each table held, copied and checked.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

/// Copies every table of `from` into `to`, which must hold no rows, `batch` rows per
/// transaction; `progress` hears each table's name and rows copied so far. Nothing may write
/// to `from` meanwhile (stop its servers): the closing count check fails if something did.
pub async fn copy_store(
    from: &DatabaseLocation,
    to: &DatabaseLocation,
    batch: usize,
    mut progress: impl FnMut(&str, u64),
) -> Result<CopyReport> {
    let batch = batch.clamp(1, 10_000);
    let source = open(from, true).await?;
    let target = open(to, false).await?;
    for table in TABLES {
        if target.count_rows(table).await? > 0 {
            return Err(Error::Conflict(format!(
                "{} already holds data (table {}): copy into an empty database",
                to.describe(),
                table.name
            )));
        }
    }
    let mut report = CopyReport::default();
    for table in TABLES {
        let mut after = 0;
        let mut copied = 0u64;
        loop {
            let rows = source.export_rows(table, after, batch).await?;
            let Some(last) = rows.last() else { break };
            let done = !table.positioned || rows.len() < batch;
            after = last.position.unwrap_or(after);
            let n = rows.len() as u64;
            target
                .write(move |tx| Box::pin(async move { tx.import_rows(table, &rows).await }))
                .await
                .map_err(|e| {
                    Error::store(format!(
                        "copying table {} into {} failed: {e}",
                        table.name,
                        to.describe()
                    ))
                })?;
            copied += n;
            progress(table.name, copied);
            if done {
                break;
            }
        }
        let (in_source, in_target) = (
            source.count_rows(table).await?,
            target.count_rows(table).await?,
        );
        if in_source != copied || in_target != copied {
            return Err(Error::store(format!(
                "table {}: {copied} rows copied, but {} holds {in_source} and {} holds {in_target}: was something writing to the source? Stop its servers, empty the target and copy again",
                table.name,
                from.describe(),
                to.describe()
            )));
        }
        report.tables.push((table.name, copied));
    }
    Ok(report)
}
