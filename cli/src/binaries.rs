//! Finding the service binaries: they sit next to the `shop` executable. When that
//! is a cargo target directory of the Shop workspace, they are rebuilt first with
//! the same profile, so `shop up` never runs stale code.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::process::Command;

use crate::logs::Console;

/// A cargo workspace and the profile whose output directory `shop` runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The directory with the workspace's `Cargo.toml`.
    pub root: PathBuf,
    /// The profile: `debug` (cargo's `dev`), `release`, or a custom one.
    pub profile: String,
}

impl Workspace {
    /// The workspace that built an executable in `exe_dir`, which must be
    /// `<root>/target/<profile>` with a `<root>/Cargo.toml`.
    pub fn of_target_dir(exe_dir: &Path) -> Option<Self> {
        let profile = exe_dir.file_name()?.to_str()?.to_owned();
        let target = exe_dir.parent()?;
        let root = target.parent()?;
        let built_here = target.file_name()? == "target" && root.join("Cargo.toml").is_file();
        built_here.then(|| Self {
            root: root.to_owned(),
            profile,
        })
    }

    /// The arguments that build every binary with this profile.
    pub fn build_args(&self) -> Vec<String> {
        let mut args = vec!["build".to_owned()];
        match self.profile.as_str() {
            "debug" => {}
            "release" => args.push("--release".to_owned()),
            custom => args.extend(["--profile".to_owned(), custom.to_owned()]),
        }
        args.push("--bins".to_owned());
        args
    }

    /// The build command as a person would type it.
    pub fn build_command(&self) -> String {
        format!("cargo {}", self.build_args().join(" "))
    }

    /// Runs the build, its progress going straight to the terminal.
    pub async fn build(&self, console: &Console) -> anyhow::Result<()> {
        let command = self.build_command();
        console.say(format!(
            "building the services: {command} (in {})",
            self.root.display()
        ));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(self.build_args())
            .current_dir(&self.root)
            .kill_on_drop(true)
            .status()
            .await
            .context("run cargo")?;
        anyhow::ensure!(status.success(), "`{command}` failed ({status})");
        Ok(())
    }
}

/// The directory of the running `shop` executable.
pub fn exe_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("find the shop executable")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent()
        .map(Path::to_owned)
        .context("the shop executable has no directory")
}

/// The path of each named binary in `dir`, or an error that lists the missing ones
/// and says exactly how to get them.
pub fn locate(
    dir: &Path,
    names: &[&str],
    workspace: Option<&Workspace>,
) -> anyhow::Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&paths)
        .filter(|(_, path)| !path.is_file())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(paths);
    }
    let remedy = match workspace {
        Some(workspace) => format!(
            "Build them: cd {} && {}",
            workspace.root.display(),
            workspace.build_command()
        ),
        None => format!(
            "Build them in the Shop workspace with `cargo build --release --bins` and run \
             target/release/shop, or copy them next to shop in {}, or pass --bin-dir.",
            dir.display()
        ),
    };
    anyhow::bail!(
        "missing service binaries in {}: {}. {remedy}",
        dir.display(),
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shop-cli-{}", platform::testing::unique_tag()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_target_dir_with_a_manifest_above_it_is_a_workspace_build() {
        let root = scratch();
        let release = root.join("target").join("release");
        std::fs::create_dir_all(&release).unwrap();
        assert_eq!(
            Workspace::of_target_dir(&release),
            None,
            "no Cargo.toml yet"
        );
        std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        let workspace = Workspace::of_target_dir(&release).unwrap();
        assert_eq!(workspace.root, root);
        assert_eq!(workspace.build_command(), "cargo build --release --bins");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn each_profile_builds_with_its_own_flags() {
        let with = |profile: &str| Workspace {
            root: PathBuf::from("/w"),
            profile: profile.to_owned(),
        };
        assert_eq!(with("debug").build_command(), "cargo build --bins");
        assert_eq!(
            with("bench").build_command(),
            "cargo build --profile bench --bins"
        );
    }

    #[test]
    fn missing_binaries_are_listed_with_the_command_that_builds_them() {
        let dir = scratch();
        std::fs::write(dir.join("inventory"), "").unwrap();
        let workspace = Workspace {
            root: PathBuf::from("/src/shop"),
            profile: "release".to_owned(),
        };
        let error = locate(&dir, &["inventory", "gateway"], Some(&workspace)).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(": gateway."), "{message}");
        assert!(
            message.contains("cd /src/shop && cargo build --release --bins"),
            "{message}"
        );
        let found = locate(&dir, &["inventory"], None).unwrap();
        assert_eq!(found, vec![dir.join("inventory")]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
