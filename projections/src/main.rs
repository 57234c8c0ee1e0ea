//! `projection-worker`: builds the read models from JetStream.

use clap::Parser;
use projections::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    App::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
