//! A PostgreSQL cluster of a test's own, for what would disturb the shared test server
//! (stopping and starting it under running replicas). Started, paused, resumed and removed
//! with `.ci/postgres`, the same script CI uses; needs PostgreSQL's server binaries.

use std::path::PathBuf;
use std::process::Command;

use codearts_bot::store::scratch::ScratchDb;

/// `.ci/postgres` in this checkout.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("bash runs .ci/postgres")
}

/// A throwaway cluster in a temporary folder; stopped and removed on drop.
pub struct Cluster {
    dir: PathBuf,
    url: String,
}

impl Cluster {
    /// Starts one when PostgreSQL's server binaries are here. Without them: `None` after a
    /// message, or a panic under CI (where `.ci/run` installs them). Tests of PostgreSQL run
    /// only where the shared test server is configured too ([`ScratchDb::server_or_skip`]).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        ScratchDb::server_or_skip(test)?;
        if !run(&["bindir"]).status.success() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: PostgreSQL's server binaries are missing (apt-get install postgresql)"
            );
            eprintln!(
                "SKIPPED (PostgreSQL) {test}: no server binaries (apt-get install postgresql)"
            );
            return None;
        }
        let parent = tempfile::Builder::new()
            .prefix("cbpg")
            .tempdir_in("/tmp")
            .expect("a temporary folder")
            .keep();
        // The server runs as another user when the tests run as root: it must reach `c`.
        let open = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&parent, open).expect("folder opened to the server's user");
        let dir = parent.join("c");
        let out = run(&["start", dir.to_str().expect("a UTF-8 path")]);
        assert!(
            out.status.success(),
            ".ci/postgres start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("CODEARTS_BOT_TEST_PG="))
            .expect(".ci/postgres prints the server's URL")
            .to_owned();
        Some(Self { dir, url })
    }

    /// The server's URL (a superuser: scratch databases are made on it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server, keeping its data.
    pub fn pause(&self) {
        let out = run(&["pause", self.dir.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port.
    pub fn resume(&self) {
        let out = run(&["resume", self.dir.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(&["stop", self.dir.to_str().unwrap_or_default()]);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}
