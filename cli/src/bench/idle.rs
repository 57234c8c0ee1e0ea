//! Waiting until every JetStream consumer, the saga's reactions included, has
//! worked off what the load before left it.

use std::time::Duration;

use futures::TryStreamExt;
use tokio::time::Instant;

/// Waits until no durable consumer of any stream at `nats_url` has messages
/// pending or unacked, for at most `timeout`. A latency measured over a reaction
/// consumer's backlog (the restocks of the command load reach the orders
/// service too) would time that backlog, not the path.
pub async fn wait_until_consumers_idle(nats_url: &str, timeout: Duration) -> Result<(), String> {
    let client = async_nats::connect(nats_url)
        .await
        .map_err(|error| format!("connect to NATS at {nats_url}: {error}"))?;
    let jetstream = async_nats::jetstream::new(client);
    let started = Instant::now();
    loop {
        let backlog = backlog(&jetstream).await?;
        if backlog == 0 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "the consumers still had {backlog} messages to work off after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages pending or unacked, summed over every durable consumer.
async fn backlog(jetstream: &async_nats::jetstream::Context) -> Result<u64, String> {
    let names: Vec<String> = jetstream
        .stream_names()
        .try_collect()
        .await
        .map_err(|error| format!("list the streams: {error}"))?;
    let mut backlog = 0;
    for name in names {
        let stream = jetstream
            .get_stream(&name)
            .await
            .map_err(|error| format!("look up stream {name}: {error}"))?;
        let consumers: Vec<_> = stream
            .consumers()
            .try_collect()
            .await
            .map_err(|error| format!("list the consumers of {name}: {error}"))?;
        backlog += consumers
            .iter()
            .filter(|info| info.config.durable_name.is_some())
            .map(|info| info.num_pending + info.num_ack_pending as u64)
            .sum::<u64>();
    }
    Ok(backlog)
}
