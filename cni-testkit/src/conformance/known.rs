//! Who the plugin is, and the upstream issues that explain a reference plugin's FAILs.
//!
//! The identity only selects an *explanation* printed under a FAIL; it never changes a
//! check's outcome. Every judgement comes from the plugin's behaviour.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

/// What the plugin binary is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Implementation {
    /// A Go binary (the reference plugins are).
    Go,
    /// Anything else.
    Other,
}

/// The plugin under test, as far as the suite can tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginIdentity {
    /// The plugin's name: from its about text (`CNI host-local plugin …`), else its file
    /// name.
    pub name: String,
    /// The language of the binary.
    pub implementation: Implementation,
    /// Its about text (stderr when run without `CNI_COMMAND`), first line.
    pub about: String,
}

impl PluginIdentity {
    /// Identify the binary at `path` from its contents and about text.
    pub fn detect(path: &Path, about: &str) -> Self {
        let about = about.lines().next().unwrap_or("").trim().to_string();
        let name = about
            .strip_prefix("CNI ")
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|n| !n.is_empty() && *n != "protocol")
            .map(str::to_string)
            .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let implementation = if is_go_binary(path) {
            Implementation::Go
        } else {
            Implementation::Other
        };
        PluginIdentity {
            name,
            implementation,
            about,
        }
    }
}

/// Whether the file carries Go's build-info magic (`\xff Go buildinf:`).
pub fn is_go_binary(path: &Path) -> bool {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    // The magic sits at the start of the .go.buildinfo section; reading the whole file is
    // fine for plugin-sized binaries, but cap it.
    let mut buf = Vec::new();
    if f.by_ref()
        .take(256 * 1024 * 1024)
        .read_to_end(&mut buf)
        .is_err()
    {
        return false;
    }
    buf.windows(MAGIC.len()).any(|w| w == MAGIC)
}

/// An upstream issue that explains why a plugin fails a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KnownIssue {
    /// Which implementation it applies to.
    pub implementation: Implementation,
    /// The plugin name it applies to.
    pub plugin: &'static str,
    /// The check it explains: a check name, or a prefix ending in `/` for every version.
    pub check: &'static str,
    /// Where it is tracked upstream.
    pub upstream: &'static str,
    /// What goes wrong.
    pub summary: &'static str,
}

/// Known failures of the Go reference plugins (containernetworking/plugins).
pub const KNOWN_ISSUES: &[KnownIssue] = &[
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "host-local",
        check: "gc/",
        upstream: "containernetworking/plugins#1047 (PR #1289)",
        summary: "host-local has no GC: the skel answers success and no reservation is released",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "bridge",
        check: "del-netns-empty/",
        upstream: "containernetworking/plugins#810",
        summary: "DEL with an empty CNI_NETNS only runs IPAM DEL, so the ipMasq rules of the attachment leak",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "bridge",
        check: "del-netns-gone/",
        upstream: "containernetworking/plugins#810",
        summary: "when the netns is gone DEL only runs IPAM DEL (the container addresses are unknown), so the ipMasq rules leak",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "bridge",
        check: "gc/",
        upstream: "containernetworking/plugins#1013",
        summary: "bridge has no GC: ipMasq rules of stale attachments are not removed",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "bridge",
        check: "status/",
        upstream: "containernetworking/plugins#1013",
        summary: "bridge before v1.5 has no STATUS",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "portmap",
        check: "check/",
        upstream: "containernetworking/plugins#819",
        summary: "CHECK looks for ip6tables rules even for an IPv4-only container and fails (fixed after v1.2.0)",
    },
    KnownIssue {
        implementation: Implementation::Go,
        plugin: "portmap",
        check: "gc/",
        upstream: "containernetworking/plugins#1047",
        summary: "portmap has no GC (FIXME in main.go): rules of stale attachments stay",
    },
];

/// The known issue explaining a FAIL of `check` by `plugin`, if any.
pub fn known_issue(plugin: &PluginIdentity, check: &str) -> Option<&'static KnownIssue> {
    KNOWN_ISSUES.iter().find(|k| {
        k.implementation == plugin.implementation
            && k.plugin == plugin.name
            && (k.check == check || (k.check.ends_with('/') && check.starts_with(k.check)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_about_text() {
        let id = PluginIdentity::detect(
            Path::new("/nonexistent/x"),
            "CNI host-local plugin version unknown\nCNI protocol versions supported: 0.1.0",
        );
        assert_eq!(id.name, "host-local");
        assert_eq!(id.implementation, Implementation::Other);
        assert_eq!(id.about, "CNI host-local plugin version unknown");
        let id = PluginIdentity::detect(Path::new("/opt/cni/bin/mine"), "");
        assert_eq!(id.name, "mine");
    }

    #[test]
    fn known_issues_match_by_implementation_name_and_check() {
        let go = PluginIdentity {
            name: "bridge".into(),
            implementation: Implementation::Go,
            about: String::new(),
        };
        assert_eq!(
            known_issue(&go, "del-netns-empty/1.0.0").unwrap().upstream,
            "containernetworking/plugins#810"
        );
        assert!(known_issue(&go, "add/1.0.0").is_none());
        let ours = PluginIdentity {
            implementation: Implementation::Other,
            ..go
        };
        assert!(known_issue(&ours, "del-netns-empty/1.0.0").is_none());
    }

    #[test]
    fn go_binaries_are_recognised() {
        let go = Path::new("/usr/lib/cni/host-local");
        if go.exists() {
            assert!(is_go_binary(go));
        }
        assert!(!is_go_binary(Path::new("/bin/sh")) || !Path::new("/bin/sh").exists());
    }
}
