//! The leases table (docs/ha.md): taking, renewing and giving up the leader's lease in one
//! statement each, on the database's clock; and the fenced claim of deliveries about to be
//! sent, which checks the sender's term in the same statement.

use super::db::{Dialect, Result, Store, db_now_ms, sql};

/// Who holds a lease, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseHolder {
    pub holder: String,
    pub token: i64,
    /// Milliseconds the lease still has on the database's clock (negative: expired).
    pub left_ms: i64,
}

/// The lease of the replica that polls and sends.
pub const LEADER_LEASE: &str = "leader";

impl Store {
    /// Takes lease `name` for `holder` for `lease_ms` when it is free, expired, or already
    /// theirs; each grant starts a new term with a higher token. `None`: someone else holds it.
    pub async fn take_lease(&self, name: &str, holder: &str, lease_ms: i64) -> Result<Option<i64>> {
        // Under the write lock: a write of a fenced term checks the lease under the same lock,
        // so it commits wholly before a new term begins or is refused after.
        let mut tx = self.lock_writes().await?;
        let token = sqlx::query_scalar(sql!(self.dialect;
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
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
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

    /// Claims the pending deliveries `ids` for the term `token` of lease `name`, just before
    /// they are sent: in one statement that also checks, on the database's clock, that the
    /// term is still the lease's and unexpired (the fencing token). `false`: not all of them
    /// could be claimed (the term is over, or another replica settled or holds one), so this
    /// process must not send them. On PostgreSQL the rows are taken `FOR UPDATE SKIP LOCKED`
    /// and the lease row `FOR SHARE`, so a claim never waits behind another replica's and a
    /// new term cannot be granted half-way through one.
    pub async fn claim_deliveries(&self, name: &str, token: i64, ids: &[&str]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(true);
        }
        let listed = serde_json::Value::from(ids).to_string();
        let claimed: Vec<String> = sqlx::query_scalar(match self.dialect {
            Dialect::Sqlite => sql!(Dialect::Sqlite;
                "UPDATE deliveries SET claimed_token = $2
                 WHERE id IN (SELECT value FROM json_each($3)) AND status = 'pending'
                   AND EXISTS (SELECT 1 FROM leases WHERE name = $1 AND token = $2
                               AND expires_at > ", [db_now_ms], ")
                 RETURNING id"),
            Dialect::Postgres => sql!(Dialect::Postgres;
                "WITH fence AS (
                     SELECT token FROM leases WHERE name = $1 AND token = $2
                        AND expires_at > ", [db_now_ms], " FOR SHARE),
                 mine AS (
                     SELECT id FROM deliveries
                     WHERE id IN (SELECT value FROM json_array_elements_text($3::json))
                       AND status = 'pending' AND EXISTS (SELECT 1 FROM fence)
                     FOR UPDATE SKIP LOCKED)
                 UPDATE deliveries SET claimed_token = $2 WHERE id IN (SELECT id FROM mine)
                 RETURNING id"),
        })
        .bind(name)
        .bind(token)
        .bind(listed)
        .fetch_all(&self.pool)
        .await?;
        Ok(claimed.len() == ids.len())
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
    /// One pending delivery, `dlv_1`, of one event.
    async fn one_pending_delivery(store: &crate::store::Store) {
        sqlx::query(
            "INSERT INTO events (id, job_id, kind, job_name, detected_at, summary)
             VALUES (1, 'j', 'build_failed', 'api', 0, 'api failed')",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO deliveries (id, seq, event_id, channel, status, next_attempt_at, created_at)
             VALUES ('dlv_1', 1, 1, 'ops', 'pending', 0, 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn only_the_current_term_claims_deliveries_and_only_pending_ones() {
        for backend in
            crate::store::testing::backends("only_the_current_term_claims_deliveries").await
        {
            let store = backend.store.clone();
            one_pending_delivery(&store).await;
            let old = store
                .take_lease("leader", "a", 60_000)
                .await
                .unwrap()
                .unwrap();
            store.release_lease("leader", "a", old).await.unwrap();
            let new = store
                .take_lease("leader", "b", 60_000)
                .await
                .unwrap()
                .unwrap();
            // The deposed term's token is refused, whatever the process believes.
            assert!(
                !store
                    .claim_deliveries("leader", old, &["dlv_1"])
                    .await
                    .unwrap()
            );
            assert!(
                store
                    .claim_deliveries("leader", new, &["dlv_1"])
                    .await
                    .unwrap()
            );
            let by: Option<i64> =
                sqlx::query_scalar("SELECT claimed_token FROM deliveries WHERE id = 'dlv_1'")
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
            assert_eq!(by, Some(new));
            // A delivery settled (by whoever) is not claimed again; nor is an unknown one.
            sqlx::query("UPDATE deliveries SET status = 'sent' WHERE id = 'dlv_1'")
                .execute(&store.pool)
                .await
                .unwrap();
            assert!(
                !store
                    .claim_deliveries("leader", new, &["dlv_1"])
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .claim_deliveries("leader", new, &["dlv_9"])
                    .await
                    .unwrap()
            );
            // An expired term cannot claim either.
            let short = store.take_lease("short", "c", 1).await.unwrap().unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(
                !store
                    .claim_deliveries("short", short, &["dlv_1"])
                    .await
                    .unwrap()
            );
        }
    }

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
