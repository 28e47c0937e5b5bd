//! The store's tests run on every backend this machine has: SQLite in a temporary folder,
//! and PostgreSQL in a scratch database when `CODEARTS_BOT_TEST_PG` names a server (under CI
//! its absence fails the test; locally it is skipped with a message saying how to run it).

use super::db::{Location, Store};
use super::scratch::ScratchDb;

/// One backend's store and what keeps its database alive.
pub(crate) struct TestStore {
    pub store: Store,
    _dir: tempfile::TempDir,
    _db: Option<ScratchDb>,
}

/// A fresh store on SQLite, then (when available) on PostgreSQL. `test` names the test in
/// the skip message.
pub(crate) async fn backends(test: &str) -> Vec<TestStore> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let sqlite = Store::connect(&Location::Sqlite(dir.path().join("t.db")))
        .await
        .expect("open SQLite");
    let mut out = vec![TestStore {
        store: sqlite,
        _dir: dir,
        _db: None,
    }];
    if let Some(server) = ScratchDb::server_or_skip(test) {
        let db = ScratchDb::create(&server)
            .await
            .expect("create a test database");
        let store = Store::connect(&db.location())
            .await
            .expect("open PostgreSQL");
        out.push(TestStore {
            store,
            _dir: tempfile::tempdir().expect("temporary folder"),
            _db: Some(db),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::Dialect;

    /// Every `table.column` and named index of the migrated schema.
    async fn schema(store: &Store) -> (BTreeSet<String>, BTreeSet<String>) {
        let (columns, indexes): (&str, &str) = match store.dialect() {
            Dialect::Sqlite => (
                "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                   AND m.name <> '_sqlx_migrations'",
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
            ),
            Dialect::Postgres => (
                "SELECT table_name || '.' || column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
                // Primary keys and UNIQUE columns are indexes SQLite does not name.
                "SELECT indexname::text FROM pg_indexes
                 WHERE schemaname = current_schema() AND indexname NOT LIKE '%_pkey'
                   AND indexname NOT LIKE '%_key'",
            ),
        };
        let read = |sql: &'static str| async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(&store.pool)
                .await
                .expect("schema")
                .into_iter()
                .collect::<BTreeSet<_>>()
        };
        (read(columns).await, read(indexes).await)
    }

    #[tokio::test]
    async fn the_postgresql_migrations_build_the_same_tables_columns_and_indexes() {
        let stores = backends("the_postgresql_migrations_build_the_same_schema").await;
        let schemas = futures_util::future::join_all(stores.iter().map(|t| schema(&t.store))).await;
        let (sqlite, rest) = schemas.split_first().expect("SQLite is always there");
        assert!(
            sqlite.0.contains("deliveries.claimed_token"),
            "{:?}",
            sqlite.0
        );
        for other in rest {
            assert_eq!(other, sqlite, "the migrations of the two backends drifted");
        }
    }

    #[tokio::test]
    async fn the_store_speaks_tls_to_a_server_that_offers_it() {
        let Some(server) = ScratchDb::server_or_skip("the_store_speaks_tls") else {
            return;
        };
        let db = ScratchDb::create(&server).await.expect("scratch database");
        let plain = Store::connect(&db.location()).await.expect("open");
        let offered: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(&plain.pool)
            .await
            .expect("SHOW ssl");
        if offered != "on" {
            // .ci/postgres turns it on when openssl is there to make a certificate.
            eprintln!("SKIPPED the_store_speaks_tls: the test server has ssl = {offered}");
            return;
        }
        let url = format!("{}?sslmode=require", db.url());
        let location = Location::Postgres(crate::util::secret::Secret::new(url));
        let tls = Store::connect(&location).await.expect("open over TLS");
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&tls.pool)
                .await
                .expect("pg_stat_ssl");
        assert!(encrypted, "sslmode=require gives an encrypted connection");
        tls.close().await;
        plain.close().await;
    }
}
