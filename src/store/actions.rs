//! Actions taken on CodeArts from chat (`actions`): recorded before CodeArts is called and
//! settled after. The `once_key` makes a target (a failed build to re-run, a running build to
//! stop) acted on once: the second click finds the first's row instead of a new call, and a
//! row left `started` by a crash is never run again (docs/actions.md).

use chrono::{DateTime, Utc};

use super::db::{Result, Store, from_ms, to_ms};

/// What to record before calling CodeArts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction<'a> {
    /// `rerun` or `stop`.
    pub kind: &'a str,
    pub job_id: &'a str,
    pub build_no: Option<u32>,
    pub who: &'a str,
    /// How answers name them (`@alice`).
    pub shown_as: &'a str,
    pub platform: &'a str,
    pub channel: Option<&'a str>,
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionRow {
    pub id: i64,
    pub kind: String,
    pub job_id: String,
    pub build_no: Option<i64>,
    pub who: String,
    pub shown_as: String,
    pub platform: String,
    pub channel: Option<String>,
    pub state: String,
    pub new_build: Option<i64>,
    pub answer: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl ActionRow {
    pub fn created(&self) -> DateTime<Utc> {
        from_ms(self.created_at)
    }
}

/// What recording found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Recorded: the caller asks CodeArts, then settles this id.
    Started(i64),
    /// The same target was already acted on (or is being): that action.
    Already(Box<ActionRow>),
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled<'a> {
    Done {
        new_build: Option<u32>,
        answer: &'a str,
        request_id: Option<&'a str>,
    },
    /// CodeArts refused or could not be asked: the target may be tried again.
    Failed {
        answer: &'a str,
        request_id: Option<&'a str>,
    },
}

/// The columns of [`ActionRow`], in a literal so the queries stay static SQL.
macro_rules! columns {
    () => {
        "id, kind, job_id, build_no, who, shown_as, platform, channel, state, new_build, \
         answer, request_id, created_at, finished_at"
    };
}

impl Store {
    /// Records an action before CodeArts is asked, unless its target was already acted on.
    pub async fn begin_action(&self, action: &NewAction<'_>, now: DateTime<Utc>) -> Result<Begun> {
        let once_key = format!(
            "{}:{}:{}",
            action.kind,
            action.job_id,
            action
                .build_no
                .map_or_else(|| "-".to_owned(), |n| n.to_string())
        );
        let mut tx = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO actions (kind, job_id, build_no, once_key, who, shown_as, platform,
                                  channel, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'started', $9)
             ON CONFLICT (once_key) DO NOTHING RETURNING id",
        )
        .bind(action.kind)
        .bind(action.job_id)
        .bind(action.build_no.map(i64::from))
        .bind(&once_key)
        .bind(action.who)
        .bind(action.shown_as)
        .bind(action.platform)
        .bind(action.channel)
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let begun = match id {
            Some(id) => Begun::Started(id),
            None => Begun::Already(Box::new(
                sqlx::query_as::<_, ActionRow>(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM actions WHERE once_key = $1"
                ))
                .bind(&once_key)
                .fetch_one(&mut *tx)
                .await?,
            )),
        };
        tx.commit().await?;
        Ok(begun)
    }

    /// Settles a started action with CodeArts' answer.
    pub async fn settle_action(
        &self,
        id: i64,
        outcome: Settled<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (state, new_build, answer, request_id) = match outcome {
            Settled::Done {
                new_build,
                answer,
                request_id,
            } => ("done", new_build.map(i64::from), answer, request_id),
            Settled::Failed { answer, request_id } => ("failed", None, answer, request_id),
        };
        // A refusal frees the target (once_key NULL): asking again is a new attempt.
        sqlx::query(
            "UPDATE actions SET state = $1, new_build = $2, answer = $3, request_id = $4,
                                finished_at = $5,
                                once_key = CASE WHEN $6 = 'failed' THEN NULL ELSE once_key END
             WHERE id = $7",
        )
        .bind(state)
        .bind(new_build)
        .bind(answer)
        .bind(request_id)
        .bind(to_ms(now))
        .bind(state)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent actions, newest first; of one job when `job_id` is given.
    pub async fn actions(&self, job_id: Option<&str>, limit: u32) -> Result<Vec<ActionRow>> {
        Ok(sqlx::query_as::<_, ActionRow>(concat!(
            "SELECT ",
            columns!(),
            " FROM actions WHERE ($1 IS NULL OR job_id = $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(job_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_target_is_acted_on_once_unless_codearts_refused() {
        for backend in
            crate::store::testing::backends("a_target_is_acted_on_once_unless_codearts_refused")
                .await
        {
            let store = backend.store.clone();
            let now = Utc::now();
            let action = NewAction {
                kind: "rerun",
                job_id: "0123456789abcdef0123456789abcdef",
                build_no: Some(42),
                who: "discord:1",
                shown_as: "@one",
                platform: "discord",
                channel: Some("c"),
            };
            let Begun::Started(first) = store.begin_action(&action, now).await.unwrap() else {
                panic!("the first click starts");
            };
            let second = NewAction {
                who: "discord:2",
                ..action.clone()
            };
            match store.begin_action(&second, now).await.unwrap() {
                Begun::Already(row) => assert_eq!(
                    (row.who.as_str(), row.state.as_str()),
                    ("discord:1", "started")
                ),
                other => panic!("{other:?}"),
            }
            store
                .settle_action(
                    first,
                    Settled::Failed {
                        answer: "403",
                        request_id: None,
                    },
                    now,
                )
                .await
                .unwrap();
            let Begun::Started(retry) = store.begin_action(&second, now).await.unwrap() else {
                panic!("a refused action may be tried again");
            };
            store
                .settle_action(
                    retry,
                    Settled::Done {
                        new_build: Some(43),
                        answer: "build #43 started",
                        request_id: Some("req-1"),
                    },
                    now,
                )
                .await
                .unwrap();
            match store.begin_action(&action, now).await.unwrap() {
                Begun::Already(row) => assert_eq!(row.new_build, Some(43)),
                other => panic!("{other:?}"),
            }
            let log = store.actions(Some(action.job_id), 10).await.unwrap();
            assert_eq!(log.len(), 2);
            assert_eq!(log[0].state, "done");
        }
    }
}
