use clap::Parser;
use customers::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    platform::telemetry::init(
        config.common.log_format,
        "info,customers=debug,platform=info",
    );
    customers::build(config)
        .await?
        .run(platform::shutdown::on_signal())
        .await
}
