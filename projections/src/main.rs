//! `projection-worker`: builds the read models from JetStream.

use clap::Parser;
use projections::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    projections::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
