use clap::Parser;
use inventory::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(
        config.common.log_format,
        "info,inventory=debug,platform=info",
    );
    App::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
