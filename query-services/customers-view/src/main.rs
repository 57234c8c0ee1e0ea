//! `customers-view`: serves the customers and notifications read models.

use clap::Parser;
use customers_view::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    customers_view::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
