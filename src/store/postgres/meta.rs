//! The `meta` table and rows written by `dravo store copy`: the meta calls of a write
//! transaction.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::*;

#[async_trait]
impl MetaTx for PgTx<'_> {
    async fn meta_get(&mut self, key: &str) -> Result<Option<String>> {
        Ok(self
            .row("SELECT value FROM meta WHERE key = $1 FOR UPDATE", &[&key])
            .await?
            .map(|r| r.get(0)))
    }

    async fn meta_set(&mut self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    async fn meta_delete(&mut self, key: &str) -> Result<()> {
        self.execute("DELETE FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn import_rows(
        &mut self,
        table: &crate::store::tables::Table,
        rows: &[crate::store::copy::CopyRow],
    ) -> Result<()> {
        let query = super::copy::insert_query(table);
        for row in rows {
            let mut params = Vec::with_capacity(row.values.len() + 1);
            if let Some(position) = row.position {
                params.push(Box::new(position) as Box<dyn ToSql + Sync + Send>);
            }
            params.extend(super::copy::params(tables::pick_all(table, &row.values))?);
            self.execute(&query, &super::copy::refs(&params)).await?;
        }
        if table.positioned {
            self.row(&super::copy::resync_query(table), &[]).await?;
        }
        Ok(())
    }
}
