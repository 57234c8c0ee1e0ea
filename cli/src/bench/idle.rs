//! Waiting until every JetStream consumer, the saga's reactions included, has
//! worked off what the load before left it.

use std::time::Duration;

use futures::TryStreamExt;
use platform::nats::StreamSpec;
use tokio::time::Instant;

/// Waits until no durable consumer of the stack's streams at `nats_url` has messages
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

/// The streams of the stack that `shop up` starts. Others on the same server,
/// such as the tests' namespaced streams, may hold consumers that never drain.
const SERVICES: [&str; 4] = ["customers", "inventory", "orders", "payments"];

/// Messages pending or unacked, summed over the durable consumers of the stack's
/// streams. A stream that does not exist holds nothing.
async fn backlog(jetstream: &async_nats::jetstream::Context) -> Result<u64, String> {
    let mut backlog = 0;
    for service in SERVICES {
        let name = StreamSpec::in_namespace("", service).name;
        let Ok(stream) = jetstream.get_stream(&name).await else {
            continue;
        };
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
