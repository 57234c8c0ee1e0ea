use clap::Parser;
use gateway::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(config.common.log_format, "info,gateway=debug");
    App::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
