//! `store migrate --from <sqlite file> --to <postgres url>`: copies a single-machine
//! deployment's SQLite file into an empty PostgreSQL database, all or nothing
//! (docs/postgres.md; the copy itself is `store::copy`).
//!
//! The URL is a secret (it usually holds the password): the output and every error show it
//! as [`Location::shown`] does, without user, password and query.
//!
//! Exit codes: 2 when the command is refused as given (`--to` is not a PostgreSQL URL, no file
//! at `--from`, the target is not empty, the two databases are at different schema versions),
//! 1 when a database fails (cannot connect, a row PostgreSQL refuses).

use std::path::Path;
use std::time::Instant;

use crate::cli::failure::{EXIT_CONFIG, EXIT_RUNTIME, Failure};
use crate::store::{Error, Location, Store};
use crate::util::secret::Secret;

pub(super) async fn run(from: &Path, to: &Secret) -> Result<(), Failure> {
    let url = to.expose();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Failure::new(
            EXIT_CONFIG,
            "--to: must be a PostgreSQL URL, postgres://user:password@host:5432/db",
        ));
    }
    // Opening a missing file would create an empty database, and copy nothing.
    if !from.is_file() {
        return Err(Failure::new(
            EXIT_CONFIG,
            format!("--from: there is no SQLite file at {}", from.display()),
        ));
    }
    let source_at = Location::Sqlite(from.to_owned());
    let target_at = Location::Postgres(to.clone());
    let shown = target_at.shown();
    // The errors below come from our code and the databases, which are given the URL only to
    // connect; should one ever quote it, it is still replaced.
    let failure = |code, message: String| Failure::new(code, message.replace(url, &shown));

    let started = Instant::now();
    let source = open(&source_at)
        .await
        .map_err(|m| failure(EXIT_RUNTIME, m))?;
    let target = match open(&target_at).await {
        Ok(target) => target,
        Err(m) => {
            source.close().await;
            return Err(failure(EXIT_RUNTIME, m));
        }
    };
    let copied = source.copy_into(&target).await;
    source.close().await;
    target.close().await;
    let tables = copied.map_err(|e| {
        let code = if e.is_refusal() {
            EXIT_CONFIG
        } else {
            EXIT_RUNTIME
        };
        failure(
            code,
            format!("cannot copy {} into {shown}: {e}", from.display()),
        )
    })?;

    let mut total = 0;
    for copied in &tables {
        println!("copied {} rows of {}", copied.rows, copied.table);
        total += copied.rows;
    }
    println!(
        "migrated {} into {shown}: {total} rows in {} tables in {:.1} s (leases are not copied: \
         each replica takes its own)",
        from.display(),
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Opens a store (applying its migrations); the error names the database.
async fn open(at: &Location) -> Result<Store, String> {
    Store::connect(at).await.map_err(|e| match e {
        Error::Open { .. } => e.to_string(),
        e => format!("{}: {e}", at.shown()),
    })
}
