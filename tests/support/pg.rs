//! The PostgreSQL the tests may use (`DRAVO_TEST_POSTGRES_URL`, which `.ci/postgres start DIR`
//! prints): a fresh schema per test, and SQL run on it directly. Included with `#[path]`
//! beside `support`.
#![allow(dead_code)]

/// The test database's URL, or `None` (the test is skipped) when none is configured.
pub fn base_url() -> Option<String> {
    match std::env::var("DRAVO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("DRAVO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "DRAVO_REQUIRE_POSTGRES=1 but DRAVO_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: set DRAVO_TEST_POSTGRES_URL to run the PostgreSQL tests");
            None
        }
    }
}

/// Runs `sql` on the test database (a connection of its own, on a thread of its own).
pub fn psql(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to the test database");
                tokio::spawn(conn);
                if sql.trim_start().to_uppercase().starts_with("SELECT") {
                    client.query(&sql, &[]).await.expect("run the query")
                } else {
                    client.batch_execute(&sql).await.expect("run the SQL");
                    Vec::new()
                }
            })
    })
    .join()
    .unwrap()
}

/// A fresh, empty schema of the test database, and the URL that puts a node in it.
pub fn fresh_database(base: &str) -> String {
    let schema = format!("mn_{}", crate::support::random_suffix());
    psql(base, &format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}
