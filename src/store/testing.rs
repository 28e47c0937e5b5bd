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
