//! The command line: which plugin or subcommand a run means, and running it.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cni_proto::Env;
use cni_proto::cni_types::{Error, ErrorCode, Version};

use crate::install::{self, BINARY, Layout};
use crate::node::NodeConfig;
use crate::table::{self, Entry, PLUGINS};

/// The subcommands of `cni-plugins` (no plugin may have one of these names).
pub const SUBCOMMANDS: &[&str] = &["help", "version", "install", "install-node", "sleep"];

/// What a command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run this plugin with the environment and stdio as they are.
    Plugin(&'static Entry),
    /// Print the usage and the plugins.
    Help,
    /// Print the version.
    Version,
    /// Install or roll back.
    Install(InstallArgs),
    /// Install from environment variables (see [`crate::node`]).
    InstallNode,
    /// Wait for SIGTERM, SIGINT or SIGHUP (a DaemonSet's main container).
    Sleep,
    /// Run as a name that is not a plugin of this binary while a runtime asked for a verb.
    Missing(String),
    /// A command line that makes no sense; the message says why.
    Usage(String),
}

/// The options of `install`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallArgs {
    /// `--dest DIR`.
    pub dest: PathBuf,
    /// `--backup-dir DIR`.
    pub backup: Option<PathBuf>,
    /// `--rollback`.
    pub rollback: bool,
    /// `--conflist FILE`.
    pub conflist: Option<PathBuf>,
    /// `--net-dir DIR`.
    pub net_dir: Option<PathBuf>,
    /// `--force`.
    pub force: bool,
    /// `--source FILE`: the binary to install (default: this one).
    pub source: Option<PathBuf>,
}

/// Decide what `argv` asks for. The file name of `argv[0]` selects a plugin first (the
/// symlinks); otherwise the first argument is a plugin or a subcommand.
pub fn parse(argv: &[OsString], env: &Env) -> Invocation {
    let name = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(OsStr::to_str)
        .unwrap_or(BINARY);
    if let Some(entry) = table::find(name) {
        return Invocation::Plugin(entry);
    }
    let first = argv.get(1).map(|a| a.to_string_lossy());
    match first.as_deref() {
        None if name != BINARY && env.get("CNI_COMMAND").is_some() => {
            Invocation::Missing(name.to_owned())
        }
        None | Some("help" | "--help" | "-h") => Invocation::Help,
        Some("version" | "--version" | "-V") => Invocation::Version,
        Some("install") => parse_install(&argv[2..]),
        Some("install-node") if argv.len() == 2 => Invocation::InstallNode,
        Some("sleep") if argv.len() == 2 => Invocation::Sleep,
        Some("install-node" | "sleep") => {
            Invocation::Usage("install-node and sleep take no arguments".into())
        }
        Some(other) => match table::find(other) {
            Some(entry) => Invocation::Plugin(entry),
            None => Invocation::Usage(format!("no plugin or command {other:?}")),
        },
    }
}

fn parse_install(args: &[OsString]) -> Invocation {
    let mut out = InstallArgs::default();
    let mut dest = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy();
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(PathBuf::from(v))),
            _ => (arg.as_ref(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().map(PathBuf::from));
        match flag {
            "--rollback" | "--force" if inline.is_some() => {
                return Invocation::Usage(format!("{flag} takes no value"));
            }
            "--rollback" => out.rollback = true,
            "--force" => out.force = true,
            "--dest" | "--backup-dir" | "--conflist" | "--net-dir" | "--source" => {
                let Some(v) = value().filter(|v| !v.as_os_str().is_empty()) else {
                    return Invocation::Usage(format!("{flag} needs a value"));
                };
                let slot = match flag {
                    "--dest" => &mut dest,
                    "--backup-dir" => &mut out.backup,
                    "--conflist" => &mut out.conflist,
                    "--net-dir" => &mut out.net_dir,
                    _ => &mut out.source,
                };
                *slot = Some(v);
            }
            other => return Invocation::Usage(format!("install: unknown argument {other:?}")),
        }
    }
    let Some(dest) = dest else {
        return Invocation::Usage("install needs --dest DIR".into());
    };
    out.dest = dest;
    if out.conflist.is_some() != out.net_dir.is_some() {
        return Invocation::Usage("--conflist and --net-dir go together".into());
    }
    if out.force && out.conflist.is_none() {
        return Invocation::Usage("--force only applies to --conflist".into());
    }
    if out.rollback && out.conflist.is_some() {
        return Invocation::Usage("--rollback takes no --conflist".into());
    }
    Invocation::Install(out)
}

/// Run `argv` with the environment and stdio given; returns the exit code.
pub fn run(
    argv: &[OsString],
    env: &Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    match parse(argv, env) {
        Invocation::Plugin(entry) => {
            let plugin = (entry.build)();
            cni_proto::skel::run(&*plugin, env, stdin, stdout, stderr)
        }
        Invocation::Help => {
            let _ = stdout.write_all(help().as_bytes());
            0
        }
        Invocation::Version => {
            let _ = stdout.write_all(version().as_bytes());
            0
        }
        Invocation::Install(args) => report(install(&args), "install", stdout, stderr),
        Invocation::InstallNode => report(install_node(env), "install-node", stdout, stderr),
        Invocation::Sleep => {
            let waited = crate::block_termination().and_then(|set| {
                let _ = writeln!(stderr, "{BINARY}: waiting for SIGTERM");
                let _ = stderr.flush();
                set.wait()
            });
            match waited {
                Ok(sig) => {
                    let _ = writeln!(stderr, "{BINARY}: {sig}, exiting");
                    0
                }
                Err(e) => {
                    let _ = writeln!(stderr, "{BINARY} sleep: {e}");
                    1
                }
            }
        }
        Invocation::Missing(name) => {
            let plugins: Vec<&str> = table::names().collect();
            let e = Error::msg(
                ErrorCode::Internal,
                format!(
                    "plugin {name:?} is not part of this {BINARY} binary (it has {})",
                    plugins.join(", ")
                ),
            );
            let _ = stdout.write_all(e.to_json_pretty().as_bytes());
            1
        }
        Invocation::Usage(msg) => {
            let _ = writeln!(stderr, "{BINARY}: {msg}\n\n{}", help());
            2
        }
    }
}

fn source_or_self(source: Option<&Path>) -> std::io::Result<PathBuf> {
    match source {
        Some(s) => Ok(s.to_owned()),
        None => std::env::current_exe(),
    }
}

fn install(args: &InstallArgs) -> boxed::Result<String> {
    let mut layout = Layout::new(&args.dest);
    if let Some(b) = &args.backup {
        layout = layout.with_backup(b);
    }
    if args.rollback {
        return Ok(install::rollback(&layout)?.to_string());
    }
    let source = source_or_self(args.source.as_deref())?;
    // The conflist is read and checked first: a refused one changes nothing.
    let conflist = match (&args.conflist, &args.net_dir) {
        (Some(file), Some(net_dir)) => {
            let bytes = std::fs::read(file).map_err(|e| boxed::context(e, file))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::conflist::check(net_dir, &name, &bytes, args.force)?;
            Some((net_dir, name, bytes))
        }
        _ => None,
    };
    let names: Vec<&str> = table::names().collect();
    let mut report = install::install(&layout, &source, &names)?;
    let mut notes = String::new();
    if let Some((net_dir, name, bytes)) = conflist {
        report
            .actions
            .push(crate::conflist::write(net_dir, &name, &bytes, args.force)?);
        notes = shadow_note(&crate::conflist::shadowing(net_dir, &name));
    }
    Ok(format!("{report}{notes}"))
}

fn install_node(env: &Env) -> boxed::Result<String> {
    let cfg = NodeConfig::from_env(env)?;
    let source = source_or_self(None)?;
    let (report, shadows) = cfg.apply(&source)?;
    Ok(format!("{report}{}", shadow_note(&shadows)))
}

fn shadow_note(shadows: &[PathBuf]) -> String {
    shadows
        .iter()
        .map(|p| {
            format!(
                "warning: {} sorts first: runtimes that take the first config use it, not ours\n",
                p.display()
            )
        })
        .collect()
}

fn report(
    r: boxed::Result<String>,
    what: &str,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    match r {
        Ok(text) => {
            let _ = stdout.write_all(text.as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(stderr, "{BINARY} {what}: {}", boxed::chain(&*e));
            1
        }
    }
}

/// Boxed errors with their causes printed in one line, without pulling anyhow into the binary.
mod boxed {
    use std::error::Error as StdError;
    use std::path::Path;

    pub type Result<T> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

    #[derive(Debug, thiserror::Error)]
    #[error("read {path}")]
    struct Context {
        path: String,
        #[source]
        source: std::io::Error,
    }

    pub fn context(source: std::io::Error, path: &Path) -> Box<dyn StdError + Send + Sync> {
        Box::new(Context {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn chain(e: &(dyn StdError + 'static)) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cur = c.source();
        }
        out
    }
}

/// The usage text with every plugin.
pub fn help() -> String {
    let mut s = format!(
        "{BINARY} {}: every cni-rs CNI plugin in one binary\n\n\
         Run as a plugin through a symlink named like it (bridge -> {BINARY}), or as\n  \
         {BINARY} PLUGIN                  (environment and stdin as a runtime passes them)\n  \
         {BINARY} install --dest DIR [--backup-dir DIR] [--source FILE]\n  \
         {BINARY}     [--conflist FILE --net-dir DIR [--force]]\n  \
         {BINARY} install --dest DIR [--backup-dir DIR] --rollback\n  \
         {BINARY} install-node            (settings from the environment: POD_CIDR, CNI_BIN_DIR, ...)\n  \
         {BINARY} sleep                   (wait for SIGTERM: a DaemonSet's main container)\n  \
         {BINARY} version | help\n\nPlugins:\n",
        env!("CARGO_PKG_VERSION")
    );
    for e in PLUGINS {
        s.push_str(&format!("  {:<12} {}\n", e.name, e.summary));
    }
    s
}

/// The version text.
pub fn version() -> String {
    let versions: Vec<String> = Version::ALL.iter().map(ToString::to_string).collect();
    let names: Vec<&str> = table::names().collect();
    format!(
        "{BINARY} {}\nplugins: {}\nCNI protocol versions supported: {}\n",
        env!("CARGO_PKG_VERSION"),
        names.join(", "),
        versions.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn parse_args(a: &[&str]) -> Invocation {
        parse(&argv(a), &Env::new())
    }

    #[test]
    fn argv0_file_name_selects_the_plugin() {
        for e in PLUGINS {
            let path = format!("/opt/cni/bin/{}", e.name);
            let Invocation::Plugin(got) = parse_args(&[&path, "ignored"]) else {
                panic!("{path} is not dispatched");
            };
            assert_eq!(got.name, e.name);
        }
    }

    #[test]
    fn first_argument_selects_the_plugin_or_subcommand() {
        assert!(matches!(
            parse_args(&["/x/cni-plugins", "portmap"]),
            Invocation::Plugin(e) if e.name == "portmap"
        ));
        assert!(matches!(parse_args(&["cni-plugins"]), Invocation::Help));
        assert!(matches!(
            parse_args(&["cni-plugins", "--help"]),
            Invocation::Help
        ));
        assert!(matches!(
            parse_args(&["cni-plugins", "version"]),
            Invocation::Version
        ));
        assert!(matches!(
            parse_args(&["cni-plugins", "install-node"]),
            Invocation::InstallNode
        ));
        assert!(matches!(
            parse_args(&["cni-plugins", "nosuch"]),
            Invocation::Usage(_)
        ));
        // A renamed binary still takes subcommands.
        assert!(matches!(
            parse_args(&["cni-plugins-v2", "bridge"]),
            Invocation::Plugin(_)
        ));
    }

    #[test]
    fn a_missing_plugin_asked_for_a_verb_answers_in_json() {
        let env = Env::new().with("CNI_COMMAND", "VERSION");
        let inv = parse(&argv(&["/opt/cni/bin/vxlan"]), &env);
        assert!(matches!(inv, Invocation::Missing(ref n) if n == "vxlan"));
        let mut out = Vec::new();
        let code = run(
            &argv(&["/opt/cni/bin/vxlan"]),
            &env,
            &mut &b""[..],
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(code, 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], 999);
        assert!(v["msg"].as_str().unwrap().contains("\"vxlan\""));
    }

    #[test]
    fn install_flags() {
        let Invocation::Install(a) = parse_args(&[
            "cni-plugins",
            "install",
            "--dest",
            "/d",
            "--backup-dir=/b",
            "--conflist",
            "/c/10-x.conflist",
            "--net-dir",
            "/n",
            "--force",
        ]) else {
            panic!("not install");
        };
        assert_eq!(a.dest, Path::new("/d"));
        assert_eq!(a.backup.as_deref(), Some(Path::new("/b")));
        assert_eq!(a.conflist.as_deref(), Some(Path::new("/c/10-x.conflist")));
        assert_eq!(a.net_dir.as_deref(), Some(Path::new("/n")));
        assert!(a.force && !a.rollback);
        for bad in [
            &["cni-plugins", "install"][..],
            &["cni-plugins", "install", "--dest"],
            &["cni-plugins", "install", "--dest", "/d", "--force"],
            &["cni-plugins", "install", "--dest", "/d", "--conflist", "/c"],
            &["cni-plugins", "install", "--dest", "/d", "--rollback=1"],
            &["cni-plugins", "install", "--dest", "/d", "--what"],
            &[
                "cni-plugins",
                "install",
                "--dest",
                "/d",
                "--rollback",
                "--conflist",
                "/c",
                "--net-dir",
                "/n",
            ],
        ] {
            assert!(
                matches!(parse_args(bad), Invocation::Usage(_)),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn version_through_a_plugin_name_is_the_plugins_answer() {
        let env = Env::new().with("CNI_COMMAND", "VERSION");
        let mut out = Vec::new();
        let code = run(
            &argv(&["cni-plugins", "bridge"]),
            &env,
            &mut &br#"{"cniVersion":"1.0.0"}"#[..],
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(
            v["supportedVersions"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
    }
}
