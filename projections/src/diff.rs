//! Replay-diff: replays a projection's events through the current projection
//! code into a scratch database and compares the result, row by row, with the
//! live read model. It shows what a change to a projection would change in the
//! data it serves.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::Context;
use platform::Envelope;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

use crate::app::Projection;
use crate::replay::{self, Row, Snapshot};

/// How one row differs between the live read model and the replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The replay has the row and the live model does not.
    Added(Row),
    /// The live model has the row and the replay does not.
    Removed(Row),
    /// Both have the row, with these columns different.
    Changed(Vec<ColumnChange>),
}

/// One column that differs, with both values.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnChange {
    /// The column's name.
    pub column: String,
    /// Its value in the live read model.
    pub live: Value,
    /// Its value in the replay.
    pub replayed: Value,
}

/// One row that differs, named by its table and primary key.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDiff {
    /// The table, such as `orders`.
    pub table: String,
    /// The primary key, as `column=value` pairs, such as `id=0190…`.
    pub key: String,
    /// How it differs.
    pub change: Change,
}

/// Every row that differs, by table and then primary key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// The rows that differ.
    pub rows: Vec<RowDiff>,
}

impl Diff {
    /// Whether the two read models are identical, row for row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            let (table, key) = (&row.table, &row.key);
            match &row.change {
                Change::Added(values) => {
                    writeln!(f, "+ {table} {key}: only in the replay {}", json(values))?
                }
                Change::Removed(values) => writeln!(
                    f,
                    "- {table} {key}: only in the live model {}",
                    json(values)
                )?,
                Change::Changed(columns) => {
                    writeln!(f, "~ {table} {key}:")?;
                    for c in columns {
                        writeln!(
                            f,
                            "    {}: live {} → replay {}",
                            c.column, c.live, c.replayed
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn json(row: &Row) -> String {
    Value::Object(row.clone()).to_string()
}

/// Compares a live snapshot with a replayed one. Rows are matched by the primary
/// key of their table, which either snapshot read along from its database; a
/// table without a known key matches rows by all their columns.
pub fn diff(live: &Snapshot, replayed: &Snapshot) -> Diff {
    let tables: BTreeSet<&String> = live.tables.keys().chain(replayed.tables.keys()).collect();
    let mut rows = Vec::new();
    for table in tables {
        let key = replayed.keys.get(table).or_else(|| live.keys.get(table));
        let live_rows = by_key(live.tables.get(table), key);
        let replayed_rows = by_key(replayed.tables.get(table), key);
        let keys: BTreeSet<&String> = live_rows.keys().chain(replayed_rows.keys()).collect();
        for row_key in keys {
            let change = match (live_rows.get(row_key), replayed_rows.get(row_key)) {
                (None, Some(row)) => Change::Added((*row).clone()),
                (Some(row), None) => Change::Removed((*row).clone()),
                (Some(old), Some(new)) => match changed_columns(old, new) {
                    columns if columns.is_empty() => continue,
                    columns => Change::Changed(columns),
                },
                (None, None) => continue,
            };
            rows.push(RowDiff {
                table: table.clone(),
                key: row_key.clone(),
                change,
            });
        }
    }
    Diff { rows }
}

/// The rows of a table by their key written as `column=value` pairs.
fn by_key<'a>(rows: Option<&'a Vec<Row>>, key: Option<&Vec<String>>) -> BTreeMap<String, &'a Row> {
    let Some(rows) = rows else {
        return BTreeMap::new();
    };
    rows.iter()
        .map(|row| {
            let columns: Vec<&String> = match key {
                Some(key) => key.iter().collect(),
                None => row.keys().collect(),
            };
            let pairs: Vec<String> = columns
                .into_iter()
                .map(|column| {
                    let value = match row.get(column) {
                        Some(Value::String(text)) => text.clone(),
                        Some(other) => other.to_string(),
                        None => "null".to_owned(),
                    };
                    format!("{column}={value}")
                })
                .collect();
            (pairs.join(","), row)
        })
        .collect()
}

fn changed_columns(live: &Row, replayed: &Row) -> Vec<ColumnChange> {
    let columns: BTreeSet<&String> = live.keys().chain(replayed.keys()).collect();
    columns
        .into_iter()
        .filter_map(|column| {
            let live = live.get(column).cloned().unwrap_or(Value::Null);
            let replayed = replayed.get(column).cloned().unwrap_or(Value::Null);
            (live != replayed).then(|| ColumnChange {
                column: column.clone(),
                live,
                replayed,
            })
        })
        .collect()
}

/// Replays `envelopes` through `projection` into a scratch database created on
/// `server` (and dropped afterwards, also on failure), and compares it with the
/// live read model in `live`.
pub async fn replay_diff(
    live: &PgPool,
    server: &PgConnectOptions,
    projection: &Projection,
    envelopes: &[Envelope],
) -> anyhow::Result<Diff> {
    let name = format!("shop_diff_{}", platform::testing::unique_tag());
    platform::db::create_database(server, &name).await?;
    let replayed = replay_into_scratch(server, &name, projection, envelopes).await;
    let dropped = platform::db::drop_database(server, &name).await;
    let replayed = replayed?;
    dropped.with_context(|| format!("drop the scratch database {name}"))?;
    let live = replay::snapshot(live, projection)
        .await
        .context("read the live read model")?;
    Ok(diff(&live, &replayed))
}

async fn replay_into_scratch(
    server: &PgConnectOptions,
    name: &str,
    projection: &Projection,
    envelopes: &[Envelope],
) -> anyhow::Result<Snapshot> {
    let pool = platform::db::connect(server.clone().database(name), 2).await?;
    let snapshot = async {
        replay::migrate(&pool).await?;
        replay::apply(&pool, projection, envelopes).await?;
        replay::snapshot(&pool, projection).await
    }
    .await;
    pool.close().await;
    snapshot
}

/// The stream sequence each source of `projection` has applied in the live read
/// model, by durable name: the events a diff should replay. A source that has
/// applied nothing is missing.
pub async fn live_checkpoints(
    live: &PgPool,
    projection: &Projection,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let durable_names: Vec<&str> = projection.sources.iter().map(|s| s.durable_name).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT consumer, max(stream_seq) FROM consumer_checkpoints
          WHERE consumer = ANY ($1) GROUP BY consumer",
    )
    .bind(&durable_names)
    .fetch_all(live)
    .await
    .context("read the live checkpoints")?;
    Ok(rows
        .into_iter()
        .map(|(consumer, seq)| (consumer, u64::try_from(seq).unwrap_or(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(rows: Value) -> Snapshot {
        let mut snapshot: Snapshot = serde_json::from_value(json!({ "orders": rows })).unwrap();
        snapshot.keys.insert("orders".into(), vec!["id".into()]);
        snapshot
    }

    #[test]
    fn rows_are_matched_by_key_and_only_changed_columns_are_listed() {
        let live = snapshot(json!([
            {"id": "a", "status": "CONFIRMED", "version": 4},
            {"id": "b", "status": "PENDING", "version": 1},
        ]));
        let replayed = snapshot(json!([
            {"id": "a", "status": "SHIPPED", "version": 4},
            {"id": "c", "status": "PENDING", "version": 1},
        ]));
        let diff = diff(&live, &replayed);
        let summary: Vec<(&str, &str)> = diff
            .rows
            .iter()
            .map(|row| {
                let kind = match &row.change {
                    Change::Added(_) => "added",
                    Change::Removed(_) => "removed",
                    Change::Changed(_) => "changed",
                };
                (row.key.as_str(), kind)
            })
            .collect();
        assert_eq!(
            summary,
            [("id=a", "changed"), ("id=b", "removed"), ("id=c", "added")]
        );
        let expected = vec![ColumnChange {
            column: "status".into(),
            live: json!("CONFIRMED"),
            replayed: json!("SHIPPED"),
        }];
        assert_eq!(diff.rows[0].change, Change::Changed(expected));
    }
}
