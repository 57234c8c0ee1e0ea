//! `catalog`: serves the products read model.

use catalog::Config;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    catalog::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
