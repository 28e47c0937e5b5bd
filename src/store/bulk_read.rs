//! Reading a whole table in a few round trips instead of one per row.
//!
//! sqlx's SQLite driver runs statements on a worker thread and hands every row back through a
//! channel, waking a thread per row: reading 10,000 watched jobs that way took ~60 ms, most of
//! it in those wake-ups (docs/benchmarks.md, "Start-up"). Here the database packs up to
//! [`CHUNK`] rows into one JSON array text on its side, and the chunk is parsed on ours in one
//! pass. Memory stays bounded by one chunk's text whatever the table's size.
//!
//! On SQLite the chunks follow the `rowid` (the table's own order, read page after page) and
//! each row is concatenated as text: a JSON column goes in as it is stored, with no parsing
//! on SQLite's side. Following the text key instead walked its index and fetched each row
//! from the table at random, and `json_group_array(json(c))` parsed and re-printed every
//! stored JSON value: together most of SQLite's time in a start-up (docs/benchmarks.md,
//! "Start-up"). On PostgreSQL the chunks follow the key and `json_agg` packs them.

use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use super::db::{Dialect, Result, corrupt};

/// Rows per round trip.
const CHUNK: i64 = 2_000;

/// A column read into the chunk, by how it is packed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Col {
    /// Text (or NULL): quoted as a JSON string.
    Text(&'static str),
    /// An integer (or NULL).
    Int(&'static str),
    /// Text holding JSON that this program wrote (or NULL): included as it is, so it arrives
    /// as a JSON value rather than a string. Text that is not JSON makes the chunk unreadable,
    /// a corrupt row naming the table.
    Json(&'static str),
}

/// Every row of `table`, as `T` deserialised from the JSON array of `columns`. `key` must be
/// a unique text column: rows come in its order on PostgreSQL, in the table's own (`rowid`)
/// order on SQLite; a caller that needs an order sorts. `table` names the table in a
/// corrupt-row error.
pub(super) async fn read_all<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &'static str,
    key: &str,
    columns: &[Col],
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    read_chunks(conn, dialect, table, key, columns, |rows: Vec<T>| {
        out.extend(rows);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// [`read_all`], handing each chunk to `each` as it arrives, so the caller can keep a smaller
/// form of the rows instead of all of them at once.
pub(super) async fn read_chunks<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &'static str,
    key: &str,
    columns: &[Col],
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let sql = chunk_query(dialect, table, key, columns);
    match dialect {
        Dialect::Sqlite => {
            let mut last: i64 = -1;
            loop {
                let (chunk, max_rowid, n): (String, Option<i64>, i64) =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(last)
                        .fetch_one(&mut *conn)
                        .await?;
                each(parse(table, chunk)?)?;
                match max_rowid {
                    Some(max_rowid) if n == CHUNK => last = max_rowid,
                    _ => return Ok(()),
                }
            }
        }
        Dialect::Postgres => {
            let mut last = String::new();
            loop {
                let (chunk, max_key, n): (String, Option<String>, i64) =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&last)
                        .fetch_one(&mut *conn)
                        .await?;
                each(parse(table, chunk)?)?;
                match max_key {
                    Some(max_key) if n == CHUNK => last = max_key,
                    _ => return Ok(()),
                }
            }
        }
    }
}

fn parse<T: DeserializeOwned>(table: &'static str, chunk: String) -> Result<Vec<T>> {
    serde_json::from_str(&chunk).map_err(|e| corrupt(table, e))
}

/// The query for one chunk after the cursor `$1`: the packed rows, the cursor's next value
/// and the number of rows. Built from the callers' static names, never from input.
fn chunk_query(dialect: Dialect, table: &str, key: &str, columns: &[Col]) -> String {
    match dialect {
        Dialect::Sqlite => {
            let row = columns
                .iter()
                .map(|c| match c {
                    Col::Text(c) => format!("json_quote({c})"),
                    Col::Int(c) | Col::Json(c) => format!("coalesce({c}, 'null')"),
                })
                .collect::<Vec<_>>()
                .join(", ',', ");
            // `concat` builds a row in one allocation (a chain of `||` copies it once per
            // piece); group_concat of no rows is NULL.
            format!(
                "SELECT concat('[', group_concat(concat('[', {row}, ']'), ','), ']'), \
                 max(chunk_rowid), count(*) \
                 FROM (SELECT *, rowid AS chunk_rowid FROM {table} WHERE rowid > $1 \
                 ORDER BY rowid LIMIT {CHUNK}) AS chunk"
            )
        }
        Dialect::Postgres => {
            let row = columns
                .iter()
                .map(|c| match c {
                    Col::Text(c) | Col::Int(c) => (*c).to_owned(),
                    Col::Json(c) => format!("{c}::json"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            // json_agg of no rows is NULL where the array should be empty.
            format!(
                "SELECT COALESCE(json_agg(json_build_array({row}))::text, '[]'), max({key}), \
                 count(*) \
                 FROM (SELECT * FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT {CHUNK}) \
                 AS chunk"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    /// `t` with `n` rows, inserted in an order that is not the key's (so `rowid` order is not).
    async fn table_of(n: usize) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER, j TEXT)")
            .execute(&mut conn)
            .await
            .expect("create");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 WHERE $1 > 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
             INSERT INTO t SELECT printf('%06d', i), i,
                 CASE WHEN i % 3 = 0 THEN NULL ELSE json_object('i', i) END FROM n
             ORDER BY (i * 7919) % $1",
        )
        .bind(n as i64)
        .execute(&mut conn)
        .await
        .expect("rows");
        conn
    }

    const COLS: [Col; 3] = [Col::Text("k"), Col::Int("v"), Col::Json("j")];

    #[tokio::test]
    async fn every_row_comes_back_once_across_chunks() {
        // 2 full chunks and a partial one; exactly one full chunk (the loop must stop); none.
        for n in [4_500, 2_000, 0] {
            let mut conn = table_of(n).await;
            let mut rows: Vec<(String, Option<i64>, Option<serde_json::Value>)> =
                read_all(&mut conn, Dialect::Sqlite, "t", "k", &COLS)
                    .await
                    .expect("read");
            assert_eq!(rows.len(), n);
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (k, v, j)) in rows.iter().enumerate() {
                assert_eq!(
                    (k.as_str(), *v),
                    (format!("{i:06}").as_str(), Some(i as i64))
                );
                match j {
                    None => assert_eq!(i % 3, 0),
                    Some(j) => assert_eq!(j["i"], i as i64),
                }
            }
        }
    }

    #[tokio::test]
    async fn text_nulls_and_stored_json_arrive_as_they_were_written() {
        let mut conn = table_of(0).await;
        let awkward = "quote \" backslash \\ newline \n tab \t unicode é 漢 \u{1}";
        sqlx::query("INSERT INTO t (k, v, j) VALUES ($1, NULL, $2), ('plain', 7, NULL)")
            .bind(awkward)
            .bind(r#"{"nested":[1,"two",null,{"x":false}]}"#)
            .execute(&mut conn)
            .await
            .expect("rows");
        let mut rows: Vec<(String, Option<i64>, Option<serde_json::Value>)> =
            read_all(&mut conn, Dialect::Sqlite, "t", "k", &COLS)
                .await
                .expect("read");
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(rows[0], ("plain".to_owned(), Some(7), None));
        assert_eq!(rows[1].0, awkward);
        assert_eq!(rows[1].1, None);
        assert_eq!(
            rows[1].2,
            Some(serde_json::json!({"nested": [1, "two", null, {"x": false}]}))
        );
    }

    #[tokio::test]
    async fn a_row_of_the_wrong_shape_is_a_corrupt_row_naming_the_table() {
        let mut conn = table_of(3).await;
        let err = read_all::<(String, String)>(
            &mut conn,
            Dialect::Sqlite,
            "t",
            "k",
            &[Col::Text("k"), Col::Int("v")],
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("corrupt row in t"), "{err}");
        // A JSON column holding text that is not JSON.
        sqlx::query("UPDATE t SET j = 'not json {' WHERE k = '000001'")
            .execute(&mut conn)
            .await
            .expect("update");
        let err = read_all::<(String, Option<i64>, Option<serde_json::Value>)>(
            &mut conn,
            Dialect::Sqlite,
            "t",
            "k",
            &COLS,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("corrupt row in t"), "{err}");
    }
}
