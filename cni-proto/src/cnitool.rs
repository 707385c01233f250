//! What the `cnitool` binary decides, as functions that tests can call: the default
//! container ID (the reference cnitool's, so ADD with one tool and DEL with the other find
//! the same attachment) and the parsing of GC's valid attachments.

use cni_types::{Attachment, validate};

/// The reference cnitool's container ID for the namespace at `netns` (an absolute path, as
/// the tool makes it): `cnitool-` and the first 10 bytes of `sha512(netns)` in hex (20
/// digits).
pub fn default_container_id(netns: &str) -> String {
    let digest = crate::sha512::digest(netns.as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("cnitool-{hex}")
}

/// `path` made absolute against `cwd` and cleaned lexically, as Go's `filepath.Abs` (which
/// the reference cnitool applies to the netns argument): no `.` or empty components, `..`
/// removes the one before it (never above `/`), no trailing slash. Symlinks are not
/// resolved.
pub fn absolute_path(path: &str, cwd: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// GC's valid attachments, one `<containerID>:<ifname>` per argument. An argument that is
/// not of that form (no `:`, or an ID or name the spec refuses) is an error naming it: GC
/// tears down every attachment not listed, so a typo must not be dropped silently.
pub fn parse_attachments(args: &[String]) -> Result<Vec<Attachment>, String> {
    args.iter()
        .map(|arg| {
            let bad = |why: String| format!("invalid attachment {arg:?}: {why}");
            let (cid, ifname) = arg
                .split_once(':')
                .ok_or_else(|| bad("expected <containerID>:<ifname>".into()))?;
            validate::validate_container_id(cid).map_err(|e| bad(e.msg))?;
            validate::validate_interface_name(ifname).map_err(|e| bad(e.msg))?;
            Ok(Attachment {
                container_id: cid.to_string(),
                ifname: ifname.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn default_container_id_is_the_reference_cnitools() {
        // Expected values computed once with coreutils:
        //   printf %s /var/run/netns/test | sha512sum | cut -c1-20
        //   printf %s /run/netns/a | sha512sum | cut -c1-20
        assert_eq!(
            default_container_id("/var/run/netns/test"),
            "cnitool-7b8a61d5d8e94d07cbe4"
        );
        assert_eq!(
            default_container_id("/run/netns/a"),
            "cnitool-a145bc1ace582bff43bd"
        );
        assert_eq!(default_container_id("/x").len(), "cnitool-".len() + 20);
    }

    #[test]
    fn default_container_id_matches_sha512sum() {
        // Independently, when coreutils is installed.
        let Ok(out) = std::process::Command::new("sh")
            .args(["-c", "printf %s /proc/1/ns/net | sha512sum"])
            .output()
        else {
            return;
        };
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            default_container_id("/proc/1/ns/net"),
            format!("cnitool-{}", &text[..20])
        );
    }

    #[test]
    fn netns_paths_are_made_absolute_like_go_filepath_abs() {
        let cases = [
            ("/run/netns/a", "/w", "/run/netns/a"),
            ("netns/a", "/w/d", "/w/d/netns/a"),
            ("./a/../b//c/", "/w", "/w/b/c"),
            ("../../../../x", "/w/d", "/x"),
            (".", "/w", "/w"),
            ("/", "/w", "/"),
        ];
        for (path, cwd, want) in cases {
            assert_eq!(absolute_path(path, cwd), want, "{path} in {cwd}");
        }
        // So the ID is the reference's for any spelling of the same path.
        assert_eq!(
            default_container_id(&absolute_path("../netns/./test/", "/var/run/x")),
            "cnitool-7b8a61d5d8e94d07cbe4"
        );
    }

    #[test]
    fn gc_arguments_must_be_attachments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_attachments(&args(&["c1:eth0", "c2:net1"])).unwrap(),
            [
                Attachment {
                    container_id: "c1".into(),
                    ifname: "eth0".into()
                },
                Attachment {
                    container_id: "c2".into(),
                    ifname: "net1".into()
                }
            ]
        );
        for bad in ["c1", "c1eth0", ":eth0", "c1:", "c1:eth0:x", "/x:eth0"] {
            let err = parse_attachments(&args(&["c0:eth0", bad])).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert_eq!(parse_attachments(&[]).unwrap(), []);
    }
}
