//! The leases table (docs/ha.md): taking, renewing and giving up the leader's lease in one
//! statement each, on the database's clock.

use super::db::{Result, Store, sql};

/// The database's clock in milliseconds, as SQL: every SQLite version has `julianday`; on
/// PostgreSQL `clock_timestamp()`, the time of the statement (`now()` would be the start of
/// the transaction).
macro_rules! db_now_ms {
    (sqlite) => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
    (postgres) => {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    };
}

/// Who holds a lease, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseHolder {
    pub holder: String,
    pub token: i64,
    /// Milliseconds the lease still has on the database's clock (negative: expired).
    pub left_ms: i64,
}

impl Store {
    /// Takes lease `name` for `holder` for `lease_ms` when it is free, expired, or already
    /// theirs; each grant starts a new term with a higher token. `None`: someone else holds it.
    pub async fn take_lease(&self, name: &str, holder: &str, lease_ms: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(sql!(self.dialect;
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, ",
            [db_now_ms],
            " + $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 token = leases.token + 1, expires_at = excluded.expires_at
             WHERE leases.expires_at < ",
            [db_now_ms],
            " OR leases.holder = excluded.holder
             RETURNING token"
        ))
        .bind(name)
        .bind(holder)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Extends the term `token` of `holder` by `lease_ms` from now, if it has not expired
    /// (an expired term is never revived: the holder must take the lease again, with a new
    /// token). `false`: the term is over.
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let renewed: Option<i64> = sqlx::query_scalar(sql!(self.dialect;
            "UPDATE leases SET expires_at = ",
            [db_now_ms],
            " + $4 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at >= ",
            [db_now_ms],
            " RETURNING token"
        ))
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(renewed.is_some())
    }

    /// Gives the term up at once (a clean shutdown), so another replica need not wait for it
    /// to expire.
    pub async fn release_lease(&self, name: &str, holder: &str, token: i64) -> Result<()> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Who holds lease `name`, if anyone ever did.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<LeaseHolder>> {
        Ok(sqlx::query_as(sql!(self.dialect;
            "SELECT holder, token, expires_at - ",
            [db_now_ms],
            " AS left_ms FROM leases WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn one_holder_at_a_time_each_term_a_higher_token_and_no_revival() {
        for backend in crate::store::testing::backends(
            "one_holder_at_a_time_each_term_a_higher_token_and_no_revival",
        )
        .await
        {
            let store = backend.store.clone();
            let a = store
                .take_lease("leader", "a", 60_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(store.take_lease("leader", "b", 60_000).await.unwrap(), None);
            assert!(store.renew_lease("leader", "a", a, 60_000).await.unwrap());
            assert!(!store.renew_lease("leader", "b", a, 60_000).await.unwrap());
            let holder = store.lease_holder("leader").await.unwrap().unwrap();
            assert_eq!((holder.holder.as_str(), holder.token), ("a", a));
            assert!(holder.left_ms > 50_000);

            // Released: b takes over at once, with a higher token; a's term cannot be renewed.
            store.release_lease("leader", "a", a).await.unwrap();
            let b = store
                .take_lease("leader", "b", 60_000)
                .await
                .unwrap()
                .unwrap();
            assert!(b > a);
            assert!(!store.renew_lease("leader", "a", a, 60_000).await.unwrap());

            // An expired term is not renewed, even with nobody else around.
            let c = store.take_lease("other", "c", 1).await.unwrap().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!store.renew_lease("other", "c", c, 60_000).await.unwrap());
            let again = store
                .take_lease("other", "c", 60_000)
                .await
                .unwrap()
                .unwrap();
            assert!(again > c, "taken again: a new term");
        }
    }
}
