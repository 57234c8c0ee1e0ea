//! `shop up`: the supervisor that runs the whole stack on one machine. It finds (or
//! starts) PostgreSQL and NATS, provisions the databases, starts every service as
//! its own process with prefixed logs, waits until each is ready, and on Ctrl-C,
//! SIGTERM or the death of any service stops everything in order.

use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::binaries::{self, Workspace};
use crate::infra::Infrastructure;
use crate::logs::Console;
use crate::processes::{first_exit, ServiceProcess};
use crate::provision::{self, ServerArgs};
use crate::readiness::{self, NotReady};
use crate::services::{self, Planned, SERVICES};
use crate::signals::Signals;
use crate::summary;

/// How long services get to stop after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `shop up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Start from an empty system: drop every database and delete the JetStream
    /// streams first. Asks for no confirmation.
    #[arg(long)]
    pub reset: bool,

    /// Once the stack is ready, add sample products and customers and place orders
    /// that end in every status, so there is something to look at.
    #[arg(long)]
    pub demo: bool,

    /// Where a private PostgreSQL and NATS keep their data
    /// [default: .shop in the workspace root, or in the current directory].
    #[arg(long, env = "SHOP_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Directory that holds the service binaries [default: the directory of this
    /// `shop` executable, rebuilt first when it is a cargo target directory].
    #[arg(long, env = "SHOP_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Do not run `cargo build` before starting the services.
    #[arg(long)]
    pub no_build: bool,

    /// How long the services may take to become ready.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub ready_timeout: u64,

    #[command(flatten)]
    pub servers: ServerArgs,
}

/// How a run of the stack ended.
enum Outcome {
    /// Stopped on request (Ctrl-C or SIGTERM).
    Stopped,
    /// Could not be brought up.
    Failed(anyhow::Error),
    /// A service exited on its own.
    ServiceExited,
}

/// Runs `shop up` until it is stopped or something fails.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let console = Console::new(services::name_width());
    let mut signals = Signals::listen()?;
    let workspace = Workspace::of_target_dir(&binaries::exe_dir()?);
    let found = tokio::select! {
        found = find_binaries(&args, workspace.as_ref(), &console) => found?,
        () = signals.next() => return Ok(ExitCode::from(130)),
    };
    let state_dir = state_dir(&args, workspace.as_ref())?;
    let infrastructure = Infrastructure::acquire(&args.servers, &state_dir, &console).await?;
    let mut stack = Stack {
        console,
        infrastructure,
        services: Vec::new(),
    };
    let outcome = stack.run(&args, &found, &mut signals).await;
    stack.shut_down(&mut signals).await;
    Ok(match outcome {
        Outcome::Stopped => ExitCode::SUCCESS,
        Outcome::ServiceExited => ExitCode::FAILURE,
        Outcome::Failed(error) => {
            stack.console.say(format!("error: {error:#}"));
            ExitCode::FAILURE
        }
    })
}

/// The service binaries, rebuilt first when `shop` runs from the workspace.
async fn find_binaries(
    args: &UpArgs,
    workspace: Option<&Workspace>,
    console: &Console,
) -> anyhow::Result<Vec<PathBuf>> {
    let names: Vec<&str> = SERVICES.iter().map(|service| service.name).collect();
    if let Some(dir) = &args.bin_dir {
        return binaries::locate(dir, &names, None);
    }
    if let (Some(workspace), false) = (workspace, args.no_build) {
        workspace.build(console).await?;
    }
    binaries::locate(&binaries::exe_dir()?, &names, workspace)
}

fn state_dir(args: &UpArgs, workspace: Option<&Workspace>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    let base = match workspace {
        Some(workspace) => workspace.root.clone(),
        None => std::env::current_dir().context("find the current directory")?,
    };
    Ok(base.join(".shop"))
}

/// The running stack: its servers and its service processes.
struct Stack {
    console: Console,
    infrastructure: Infrastructure,
    services: Vec<ServiceProcess>,
}

impl Stack {
    async fn run(&mut self, args: &UpArgs, binaries: &[PathBuf], signals: &mut Signals) -> Outcome {
        if let Err(error) = self.prepare_databases(args.reset).await {
            return Outcome::Failed(error);
        }
        if signals.take_pending() {
            return Outcome::Stopped;
        }
        let infrastructure = &self.infrastructure;
        let plans = services::plan(
            &infrastructure.server,
            &infrastructure.database_url,
            &infrastructure.nats_url,
            |variable| std::env::var(variable).ok(),
        );
        if let Err(error) = self.start_services(&plans, binaries) {
            return Outcome::Failed(error);
        }
        let timeout = Duration::from_secs(args.ready_timeout);
        let ready = tokio::select! {
            ready = readiness::wait_all(&plans, timeout, &self.console) => ready,
            (index, status) = first_exit(&mut self.services) => return self.exited(index, status).await,
            () = signals.next() => return Outcome::Stopped,
        };
        if let Err(not_ready) = ready {
            self.report_not_ready(&not_ready, timeout);
            return Outcome::Failed(anyhow::anyhow!("the stack did not become ready"));
        }
        summary::print(&self.console, &plans, &self.infrastructure);
        if args.demo {
            let gateway = plans
                .iter()
                .find(|plan| plan.service.name == "gateway")
                .map_or("http://127.0.0.1:8080", |plan| plan.base_url.as_str());
            if let Err(error) = crate::demo::load(gateway, &self.console).await {
                self.console
                    .say(format!("the demo data could not be loaded: {error:#}"));
            }
        }
        tokio::select! {
            (index, status) = first_exit(&mut self.services) => self.exited(index, status).await,
            () = signals.next() => Outcome::Stopped,
        }
    }

    async fn prepare_databases(&self, reset: bool) -> anyhow::Result<()> {
        let say = |line: String| self.console.say(line);
        let server = &self.infrastructure.server;
        if reset {
            provision::reset(server, &self.infrastructure.nats_url, say).await?;
        }
        provision::provision_all(server, say).await
    }

    fn start_services(&mut self, plans: &[Planned], binaries: &[PathBuf]) -> anyhow::Result<()> {
        for (index, (plan, binary)) in plans.iter().zip(binaries).enumerate() {
            let name = plan.service.name;
            self.console
                .say(format!("starting {name} on {}", plan.base_url));
            let mut command = Command::new(binary);
            command.envs(plan.env.iter().map(|(key, value)| (key, value)));
            let prefix = self.console.prefix_for(name, index);
            self.services
                .push(ServiceProcess::spawn(name, command, prefix)?);
        }
        Ok(())
    }

    async fn exited(&mut self, index: usize, status: ExitStatus) -> Outcome {
        let Some(service) = self.services.get_mut(index) else {
            return Outcome::ServiceExited;
        };
        let lines = service.last_lines().await;
        let name = service.name;
        self.console.say(format!(
            "{name} exited on its own ({status}); stopping the others"
        ));
        self.show_lines(name, &lines);
        Outcome::ServiceExited
    }

    fn report_not_ready(&self, not_ready: &[NotReady], timeout: Duration) {
        for service in not_ready {
            self.console.say(format!(
                "{} is not ready after {} s: GET {} gave {}",
                service.name,
                timeout.as_secs(),
                service.url,
                service.last_answer
            ));
            let process = self
                .services
                .iter()
                .find(|process| process.name == service.name);
            if let Some(process) = process {
                self.show_lines(service.name, &process.recent_lines());
            }
        }
    }

    fn show_lines(&self, name: &str, lines: &[String]) {
        if lines.is_empty() {
            self.console.say(format!("{name} printed nothing"));
            return;
        }
        self.console.say(format!("the last lines of {name}:"));
        for line in lines {
            self.console.say(format!("    {line}"));
        }
    }

    /// Stops every service (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`] or a second
    /// Ctrl-C), then the private servers.
    async fn shut_down(&mut self, signals: &mut Signals) {
        let running: Vec<&str> = self
            .services
            .iter_mut()
            .filter_map(|service| (!service.has_exited()).then_some(service.name))
            .collect();
        if !running.is_empty() {
            self.console.say(format!("stopping {}", running.join(", ")));
        }
        self.services.iter_mut().for_each(ServiceProcess::terminate);
        let all_stopped = futures::future::join_all(self.services.iter_mut().map(|s| s.wait()));
        tokio::select! {
            _ = all_stopped => {}
            () = tokio::time::sleep(STOP_TIMEOUT) => {}
            () = signals.next() => {}
        }
        for service in &mut self.services {
            if !service.has_exited() {
                self.console
                    .say(format!("{} did not stop in time; killing it", service.name));
                service.kill().await;
            }
        }
        self.infrastructure.release(&self.console).await;
        self.console.say("stopped");
    }
}
