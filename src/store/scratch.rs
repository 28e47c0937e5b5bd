//! Throwaway PostgreSQL databases, for the tests and benchmarks that run the store on both
//! backends. `CODEARTS_BOT_TEST_PG` names a server and a role that may `CREATE DATABASE`
//! (`bash scripts/test` starts a throwaway cluster and sets it); each [`ScratchDb`] is a new
//! database on it, dropped when the value is.

use sqlx::{Connection, PgConnection};

use super::db::{Location, Result};
use crate::util::secret::Secret;

/// The environment variable naming the PostgreSQL server of the tests.
pub const TEST_PG_ENV: &str = "CODEARTS_BOT_TEST_PG";

/// What a test says when PostgreSQL is not available.
pub const HOW_TO_RUN: &str = "the PostgreSQL tests need a server: run `bash scripts/test` \
     (it starts a throwaway cluster when PostgreSQL is installed: apt-get install postgresql), \
     or set CODEARTS_BOT_TEST_PG=postgres://user@127.0.0.1:5432/postgres (a role with CREATEDB)";

/// A new, empty database on the test server; dropped (with its connections) on drop.
pub struct ScratchDb {
    admin: String,
    name: String,
    url: String,
}

impl std::fmt::Debug for ScratchDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchDb")
            .field("name", &self.name)
            .finish()
    }
}

impl ScratchDb {
    /// The test server's URL, when one is configured.
    pub fn server() -> Option<String> {
        std::env::var(TEST_PG_ENV).ok().filter(|v| !v.is_empty())
    }

    /// The test server's URL; `None` (after saying so on stderr) when there is none, and a
    /// panic under CI, where the PostgreSQL tests must run.
    pub fn server_or_skip(test: &str) -> Option<String> {
        let server = Self::server();
        if server.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: CI is set but {TEST_PG_ENV} is not: {HOW_TO_RUN}"
            );
            eprintln!("SKIPPED (PostgreSQL) {test}: {HOW_TO_RUN}");
        }
        server
    }

    /// Creates a database named `codearts_bot_<random>` on `server`.
    pub async fn create(server: &str) -> Result<Self> {
        let name = format!("codearts_bot_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server).await?;
        // A generated name of letters, digits and underscores: nothing to quote.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(Self {
            admin: server.to_owned(),
            url: with_database(server, &name),
            name,
        })
    }

    /// Where the store opens it.
    pub fn location(&self) -> Location {
        Location::Postgres(Secret::new(self.url.clone()))
    }

    /// The database's URL (a test server's, so no secret worth hiding).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime, which must not block on itself: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// `server` with its database name replaced by `name` (the query string kept).
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_swapped_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
