//! Reading a whole table in a few round trips instead of one per row.
//!
//! sqlx's SQLite driver runs statements on a worker thread and hands every row back through a
//! channel, waking a thread per row: reading 10,000 watched jobs that way took ~60 ms, most of
//! it in those wake-ups (docs/benchmarks.md, "Start-up"). Here SQLite itself packs up to
//! [`CHUNK`] rows into one JSON array (`json_group_array`) on the worker, and the chunk is
//! parsed on our side in one pass (PostgreSQL: `json_agg`, the same shape). Chunks follow the
//! key (`key > last`), so memory stays bounded by one chunk's text whatever the table's size.

use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use super::db::{Dialect, Result, corrupt};

/// Rows per round trip.
const CHUNK: i64 = 2_000;

/// Every row of `table`, as `T` deserialised from the JSON array `json_array({columns})`.
/// `key` must be a unique text column (rows come in its order). `table` names the table in
/// a corrupt-row error. `columns` are in `dialect`'s SQL (a JSON column is `json(c)` on
/// SQLite, `c::json` on PostgreSQL, so it arrives as JSON rather than as a string).
pub(super) async fn read_all<T: DeserializeOwned>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    table: &'static str,
    key: &str,
    columns: &str,
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
    columns: &str,
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    // Built from the callers' static column lists, never from input.
    let pack = match dialect {
        Dialect::Sqlite => format!("json_group_array(json_array({columns}))"),
        // json_agg of no rows is NULL where SQLite answers `[]`.
        Dialect::Postgres => format!("COALESCE(json_agg(json_build_array({columns}))::text, '[]')"),
    };
    let sql = format!(
        "SELECT {pack}, max({key}), count(*) \
         FROM (SELECT * FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT {CHUNK}) AS chunk"
    );
    let mut last = String::new();
    loop {
        let (chunk, max_key, n): (String, Option<String>, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&last)
                .fetch_one(&mut *conn)
                .await?;
        let rows: Vec<T> = serde_json::from_str(&chunk).map_err(|e| corrupt(table, e))?;
        drop(chunk);
        each(rows)?;
        match max_key {
            Some(max_key) if n == CHUNK => last = max_key,
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    async fn table_of(n: usize) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL, j TEXT)")
            .execute(&mut conn)
            .await
            .expect("create");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 WHERE $1 > 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
             INSERT INTO t SELECT printf('%06d', i), i,
                 CASE WHEN i % 3 = 0 THEN NULL ELSE json_object('i', i) END FROM n",
        )
        .bind(n as i64)
        .execute(&mut conn)
        .await
        .expect("rows");
        conn
    }

    #[tokio::test]
    async fn every_row_comes_back_in_key_order_across_chunks() {
        // 2 full chunks and a partial one; and exactly one full chunk (the loop must stop).
        for n in [4_500, 2_000, 0] {
            let mut conn = table_of(n).await;
            let rows: Vec<(String, i64, Option<serde_json::Value>)> =
                read_all(&mut conn, Dialect::Sqlite, "t", "k", "k, v, json(j)")
                    .await
                    .expect("read");
            assert_eq!(rows.len(), n);
            for (i, (k, v, j)) in rows.iter().enumerate() {
                assert_eq!((k.as_str(), *v), (format!("{i:06}").as_str(), i as i64));
                assert_eq!(j.is_none(), i % 3 == 0);
            }
        }
    }

    #[tokio::test]
    async fn a_row_of_the_wrong_shape_is_a_corrupt_row_naming_the_table() {
        let mut conn = table_of(3).await;
        let err = read_all::<(String, String)>(&mut conn, Dialect::Sqlite, "t", "k", "k, v")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("corrupt row in t"), "{err}");
    }
}
