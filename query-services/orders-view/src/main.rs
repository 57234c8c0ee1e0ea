//! `orders-view`: serves the orders and payments read models.

use clap::Parser;
use orders_view::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info");
    orders_view::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
