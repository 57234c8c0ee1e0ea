//! Running a batch's work side by side where order does not matter.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use futures::{StreamExt, TryStreamExt};

/// Runs `work` on every item, up to `limit` at once, except that items with the
/// same key run one after another, in the order given. Reactions use it to send
/// commands to different aggregates side by side while each aggregate still gets
/// its causes in stream order. Returns the first error; work still in flight is
/// dropped with it, which a command in an event-store transaction survives as a
/// rollback.
pub async fn for_each_by_key<K, T, F, Fut>(
    items: impl IntoIterator<Item = (K, T)>,
    limit: usize,
    work: F,
) -> anyhow::Result<()>
where
    K: Eq + Hash,
    F: Fn(T) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut group_of: HashMap<K, usize> = HashMap::new();
    for (key, item) in items {
        let at = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(item);
    }
    let work = &work;
    futures::stream::iter(groups)
        .map(|group| async move {
            for item in group {
                work(item).await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(limit.max(1))
        .try_collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn items_of_one_key_run_in_order_while_keys_overlap() {
        let log = Mutex::new(Vec::new());
        // Key "a" sleeps longest on its first item: were its items run side by
        // side, a2 would finish before a1.
        let items = [("a", ("a1", 30)), ("b", ("b1", 1)), ("a", ("a2", 1))];
        for_each_by_key(items, 4, |(name, millis)| {
            let log = &log;
            async move {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                log.lock().unwrap().push(name);
                Ok(())
            }
        })
        .await
        .unwrap();
        let log = log.into_inner().unwrap();
        assert_eq!(log, ["b1", "a1", "a2"]);
    }

    #[tokio::test]
    async fn the_first_error_is_returned() {
        let outcome = for_each_by_key([(1, 1), (2, 2)], 2, |item| async move {
            anyhow::ensure!(item != 2, "item {item} failed");
            Ok(())
        })
        .await;
        assert_eq!(outcome.unwrap_err().to_string(), "item 2 failed");
    }
}
