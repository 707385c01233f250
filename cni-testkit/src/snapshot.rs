//! State snapshots of a namespace and their differences, so a test can assert "nothing left
//! behind" in one line.
//!
//! A [`Snapshot`] is a sorted list of [`Item`]s: links (name, kind, master, up, MTU),
//! addresses, routes of every table but `local`, the nftables ruleset (`nft -s list
//! ruleset`, one item per rule, chain, set and table; read over netlink when `nft` is not
//! installed), `iptables-save` / `ip6tables-save` (one item per chain and rule), chosen
//! sysctls, and the files under chosen directories (with their contents). The firewall part
//! never silently goes missing: what cannot be read fails the snapshot under CI and warns
//! elsewhere (see [`SnapshotOptions::firewall`]).
//!
//! Volatile things are normalised away: packet counters, interface indices (links are named),
//! IPv6 link-local addresses and routes (the kernel adds them asynchronously), and, on request,
//! the random part of `veth` names.
//!
//! ```no_run
//! use cni_testkit::{Snapshot, TempNetns, assert_unchanged};
//!
//! # fn main() -> cni_testkit::Result<()> {
//! let node = TempNetns::new("node")?;
//! let before = Snapshot::of(&node)?;
//! // ... ADD then DEL ...
//! assert_unchanged!(before, &node);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_linux::netlink::{Handle, Link, Route};
use cni_linux::netns::NetNs;

use crate::error::{Error, Result};
use crate::netns::TempNetns;
use crate::process;

/// Timeout for the listing programs.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Files larger than this are recorded by size only.
const MAX_FILE: u64 = 64 * 1024;

/// What an [`Item`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A network interface.
    Link,
    /// An address on an interface.
    Addr,
    /// A route.
    Route,
    /// A line of the nftables ruleset.
    Nft,
    /// A chain or rule of `iptables-save` / `ip6tables-save`.
    Iptables,
    /// A sysctl value.
    Sysctl,
    /// A file or directory and its content.
    File,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Kind::Link => "link",
            Kind::Addr => "addr",
            Kind::Route => "route",
            Kind::Nft => "nft",
            Kind::Iptables => "iptables",
            Kind::Sysctl => "sysctl",
            Kind::File => "file",
        })
    }
}

/// One piece of state, as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// What it is.
    pub kind: Kind,
    /// Its normalised text, e.g. `eth0 kind=veth master=cni0 up mtu=1500`.
    pub text: String,
}

impl Item {
    /// An item.
    pub fn new(kind: Kind, text: impl Into<String>) -> Self {
        Item {
            kind,
            text: text.into(),
        }
    }
}

/// Whether `i` is host-local's bookkeeping rather than a reservation: a directory entry (the
/// network directory appears with the first ADD), `lock`, `last_reserved_ip.<n>` (the cursor
/// moves on even when an address is given back) or our host-local's index. For diffs that
/// must show no reservation change; temporary files are *not* bookkeeping: none may be left.
pub fn host_local_bookkeeping(i: &Item) -> bool {
    if i.kind != Kind::File {
        return false;
    }
    let path = i.text.split(" = ").next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    path.ends_with('/')
        || name == "lock"
        || name == ".cni-rs-host-local.index"
        || name
            .strip_prefix("last_reserved_ip.")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {}", self.kind, self.text)
    }
}

/// What a snapshot records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Record the nftables ruleset and iptables-save output (default: true). nf_tables
    /// (also iptables-nft's tables) is read over netlink when `nft` is missing; legacy
    /// iptables tables without `iptables-save` cannot be read: then the snapshot fails under
    /// CI and warns on stderr elsewhere.
    pub firewall: bool,
    /// Directories whose files (recursively) are recorded with their contents.
    pub dirs: Vec<PathBuf>,
    /// Sysctls read inside the namespace (dotted keys).
    pub sysctls: Vec<String>,
    /// Keep IPv6 link-local addresses and routes (default: false; the kernel adds them
    /// asynchronously when links come up).
    pub keep_link_local: bool,
    /// Write `vethXXXXXXXX` names (8 hex digits, the reference's random host veth names) as
    /// `veth*` (default: false).
    pub normalize_veth_names: bool,
    /// Keep firewall state that has no effect (default: false): empty tables, base chains
    /// with an accept policy and no rules, and the declarations of built-in iptables chains
    /// with an `ACCEPT` policy. iptables-nft creates these as a side effect of merely
    /// listing a table.
    pub keep_inert_firewall: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            firewall: true,
            dirs: Vec::new(),
            sysctls: Vec::new(),
            keep_link_local: false,
            normalize_veth_names: false,
            keep_inert_firewall: false,
        }
    }
}

impl SnapshotOptions {
    /// Without the firewall listings (faster; no `nft` / `iptables-save` processes).
    pub fn without_firewall(mut self) -> Self {
        self.firewall = false;
        self
    }

    /// Also record the files under `dir`.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Also record sysctl `key`.
    pub fn with_sysctl(mut self, key: impl Into<String>) -> Self {
        self.sysctls.push(key.into());
        self
    }

    /// Keep IPv6 link-local addresses and routes.
    pub fn keep_link_local(mut self) -> Self {
        self.keep_link_local = true;
        self
    }

    /// Write random veth names as `veth*`.
    pub fn normalize_veth_names(mut self) -> Self {
        self.normalize_veth_names = true;
        self
    }

    /// Keep firewall state that has no effect (see [`SnapshotOptions::keep_inert_firewall`]).
    pub fn keep_inert_firewall(mut self) -> Self {
        self.keep_inert_firewall = true;
        self
    }
}

/// The state of one namespace at one moment. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    options: SnapshotOptions,
    items: Vec<Item>,
    files: BTreeMap<PathBuf, Option<String>>,
}

impl Snapshot {
    /// Links, addresses, routes and the firewall of `ns`.
    pub fn of(ns: &TempNetns) -> Result<Snapshot> {
        Self::with(ns, SnapshotOptions::default())
    }

    /// The state of `ns` as `options` say.
    pub fn with(ns: &TempNetns, options: SnapshotOptions) -> Result<Snapshot> {
        Self::of_netns(ns.netns(), options)
    }

    /// The state of any namespace handle.
    pub fn of_netns(ns: &NetNs, options: SnapshotOptions) -> Result<Snapshot> {
        let mut nl = Handle::new_in(ns)?;
        let links = nl.links()?;
        let names = LinkNames::new(&links, &options);
        let mut items: Vec<Item> = links
            .iter()
            .map(|l| link_item(l, &names, &options))
            .collect();
        for a in nl.addrs(None, None)? {
            if !options.keep_link_local && is_link_local(&a.addr.addr()) {
                continue;
            }
            items.push(Item::new(
                Kind::Addr,
                format!("{} {}", names.of(Some(a.index)), a.addr),
            ));
        }
        for r in nl.routes(None, None)? {
            items.extend(route_item(&r, &names, &options));
        }
        if options.firewall {
            items.extend(firewall_items(ns, &options)?);
        }
        items.extend(sysctl_items(ns, &options)?);
        let mut files = BTreeMap::new();
        for dir in &options.dirs {
            walk(dir, &mut files)?;
        }
        items.extend(file_items(&files));
        items.sort();
        Ok(Snapshot {
            options,
            items,
            files,
        })
    }

    /// A snapshot made of given items and files (for tests of code that judges snapshots).
    pub fn from_parts(
        options: SnapshotOptions,
        mut items: Vec<Item>,
        files: BTreeMap<PathBuf, Option<String>>,
    ) -> Snapshot {
        items.sort();
        Snapshot {
            options,
            items,
            files,
        }
    }

    /// Take a new snapshot of `ns` with the same options.
    pub fn retake(&self, ns: &TempNetns) -> Result<Snapshot> {
        Self::with(ns, self.options.clone())
    }

    /// The options it was taken with.
    pub fn options(&self) -> &SnapshotOptions {
        &self.options
    }

    /// Every item, sorted.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Files recorded: path → content (`None` for a directory; files over 64 KiB as a size
    /// note).
    pub fn files(&self) -> &BTreeMap<PathBuf, Option<String>> {
        &self.files
    }

    /// Items whose text contains `needle`.
    pub fn mentioning(&self, needle: &str) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| i.text.contains(needle))
            .collect()
    }

    /// Whether it has an item of `kind` whose text contains `needle`.
    pub fn has(&self, kind: Kind, needle: &str) -> bool {
        self.items
            .iter()
            .any(|i| i.kind == kind && i.text.contains(needle))
    }

    /// What changed from `self` to `later` (a multiset difference).
    pub fn diff(&self, later: &Snapshot) -> Diff {
        Diff::between(&self.items, &later.items)
    }

    /// This snapshot without the items of `diff.removed` and with those of `diff.added`: what
    /// the state should be after the changes `diff` describes.
    pub fn apply(&self, diff: &Diff) -> Snapshot {
        let mut items = multiset_minus(&self.items, &diff.removed);
        items.extend(diff.added.iter().cloned());
        items.sort();
        Snapshot {
            options: self.options.clone(),
            items,
            files: self.files.clone(),
        }
    }
}

/// Interface names by index, as a snapshot writes them.
struct LinkNames(HashMap<u32, String>);

impl LinkNames {
    fn new(links: &[Link], options: &SnapshotOptions) -> LinkNames {
        LinkNames(
            links
                .iter()
                .map(|l| (l.index, name(&l.name, options)))
                .collect(),
        )
    }

    /// The name of interface `i` (`if<i>` when unknown, `-` for none).
    fn of(&self, i: Option<u32>) -> String {
        match i {
            Some(i) => self.0.get(&i).cloned().unwrap_or_else(|| format!("if{i}")),
            None => "-".to_string(),
        }
    }
}

/// `name [kind=K] [master=M] up|down mtu=N`.
fn link_item(l: &Link, names: &LinkNames, options: &SnapshotOptions) -> Item {
    let mut t = name(&l.name, options);
    if let Some(k) = &l.kind {
        t.push_str(&format!(" kind={k}"));
    }
    if l.master.is_some() {
        t.push_str(&format!(" master={}", names.of(l.master)));
    }
    t.push_str(if l.up { " up" } else { " down" });
    t.push_str(&format!(" mtu={}", l.mtu));
    Item::new(Kind::Link, t)
}

/// `main|table=T [kind] dst [via G] [dev D] [scope=S] [metric=M] [src=A] [mtu=M] [advmss=M]`;
/// none for the local table (derived from the addresses) and, unless kept, link-local and
/// multicast routes.
fn route_item(r: &Route, names: &LinkNames, options: &SnapshotOptions) -> Option<Item> {
    let table = r.table.unwrap_or(254);
    if table == 255 {
        return None; // local table: derived from the addresses
    }
    if !options.keep_link_local && (is_link_local(&r.dst.addr()) || r.dst.addr().is_multicast()) {
        return None;
    }
    let mut t = match table {
        254 => "main".to_string(),
        t => format!("table={t}"),
    };
    if let Some(k) = r.kind
        && !matches!(k, cni_linux::netlink::RouteKind::Unicast)
    {
        t.push_str(&format!(" {k:?}").to_lowercase());
    }
    t.push_str(&format!(" {}", r.dst));
    if let Some(gw) = r.gw {
        t.push_str(&format!(" via {gw}"));
    }
    if r.oif.is_some() {
        t.push_str(&format!(" dev {}", names.of(r.oif)));
    }
    if let Some(s) = r.scope {
        t.push_str(&format!(" scope={}", u8::from(s)));
    }
    if let Some(p) = r.priority {
        t.push_str(&format!(" metric={p}"));
    }
    if let Some(src) = r.src {
        t.push_str(&format!(" src={src}"));
    }
    if let Some(m) = r.mtu {
        t.push_str(&format!(" mtu={m}"));
    }
    if let Some(m) = r.advmss {
        t.push_str(&format!(" advmss={m}"));
    }
    Some(Item::new(Kind::Route, t))
}

/// `key = value` for each sysctl asked for, `(absent)` when the kernel has no such key.
fn sysctl_items(ns: &NetNs, options: &SnapshotOptions) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for key in &options.sysctls {
        let v = match cni_linux::sysctl::get_in(ns, key) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => "(absent)".to_string(),
            Err(e) => return Err(e.into()),
        };
        items.push(Item::new(Kind::Sysctl, format!("{key} = {v}")));
    }
    Ok(items)
}

/// `path = "content"` for a file, `path/` for a directory.
fn file_items(files: &BTreeMap<PathBuf, Option<String>>) -> impl Iterator<Item = Item> + '_ {
    files.iter().map(|(path, content)| {
        let t = match content {
            None => format!("{}/", path.display()),
            Some(c) => format!("{} = {:?}", path.display(), c),
        };
        Item::new(Kind::File, t)
    })
}

fn name(n: &str, options: &SnapshotOptions) -> String {
    if options.normalize_veth_names
        && n.len() == 12
        && n.starts_with("veth")
        && n[4..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        "veth*".to_string()
    } else {
        n.to_string()
    }
}

fn is_link_local(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        std::net::IpAddr::V4(_) => false,
    }
}

/// The firewall part of a snapshot. It never silently goes missing:
///
/// - nf_tables (nftables, and iptables-nft, whose tables are nf_tables tables): `nft -s list
///   ruleset` when `nft` is installed (readable), else read over netlink
///   ([`nf_tables_items`]), which needs no tool;
/// - `iptables-save` / `ip6tables-save` where installed, for readable iptables diffs. Without
///   them, iptables-nft rules are still seen through nf_tables; legacy (x_tables) tables are
///   not, so when the namespace has any ([`legacy_xtables`]) the snapshot is blind there.
///
/// Blind means: an error under CI, a loud warning on stderr elsewhere.
fn firewall_items(ns: &NetNs, options: &SnapshotOptions) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let nft_lines = match list_if_installed("nft", &["-s", "list", "ruleset"], ns)? {
        Some(text) => parse_nft(&text),
        None => match nf_tables_items(ns) {
            Ok(lines) => lines,
            Err(e) => {
                blind(&format!(
                    "`nft` is not installed and nf_tables cannot be read over netlink ({})",
                    cni_types::error::chain_message(&e)
                ))?;
                Vec::new()
            }
        },
    };
    let nft_lines = if options.keep_inert_firewall {
        nft_lines
    } else {
        drop_inert_nft(nft_lines)
    };
    items.extend(nft_lines.into_iter().map(|t| Item::new(Kind::Nft, t)));
    for (prog, fam, proc_file) in [
        ("iptables-save", "v4", "ip_tables_names"),
        ("ip6tables-save", "v6", "ip6_tables_names"),
    ] {
        match list_if_installed(prog, &[], ns)? {
            Some(text) => items.extend(
                parse_iptables_save(fam, &text)
                    .into_iter()
                    .filter(|t| options.keep_inert_firewall || !is_inert_builtin(t))
                    .map(|t| Item::new(Kind::Iptables, t)),
            ),
            None => {
                let legacy = legacy_xtables(ns, proc_file)?;
                if !legacy.is_empty() {
                    blind(&format!(
                        "`{prog}` is not installed and the namespace has legacy iptables tables \
                         ({}) that only it can list",
                        legacy.join(", ")
                    ))?;
                }
            }
        }
    }
    Ok(items)
}

/// A part of the firewall cannot be read: fails under CI, warns loudly elsewhere.
fn blind(why: &str) -> Result<()> {
    let msg = format!("snapshot cannot see the firewall: {why}; leak checks would miss rules");
    if crate::privilege::in_ci() {
        return Err(Error::Invalid {
            what: "snapshot",
            reason: format!("{msg} (and CI is set)"),
        });
    }
    eprintln!("WARNING: {msg}. Install nftables and iptables.");
    Ok(())
}

/// The legacy (x_tables) iptables tables in use in `ns` (`/proc/net/<file>`, per namespace);
/// empty when the module is not loaded.
fn legacy_xtables(ns: &NetNs, file: &str) -> Result<Vec<String>> {
    let path = format!("/proc/thread-self/net/{file}");
    let read = ns.run(|| fs::read_to_string(&path))?;
    match read {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("read {path}"))(e)),
    }
}

/// Every nf_tables table of `ns`, read over netlink (no `nft` needed), as items in the shape
/// [`parse_nft`] gives: `table ip nat`, `table ip nat / chain X`, `table ip nat / chain X: type
/// nat hook 4 priority 100; policy accept;` for a base chain, one line per rule (its
/// expressions, `; `-separated, counters dropped, and its comment), `table ip nat / set S`
/// with one line per element (key and value in hex). Kernel handles are left out.
pub fn nf_tables_items(ns: &NetNs) -> Result<Vec<String>> {
    use cni_linux::firewall::nftables;
    let listed = ns.run(|| -> std::result::Result<_, nftables::NftError> {
        let mut out = Vec::new();
        for (family, name) in nftables::list_tables()? {
            // A table deleted between the two requests is simply not there.
            if let Some(t) = nftables::list_table(family, &name)? {
                out.push(t);
            }
        }
        Ok(out)
    })?;
    let tables = listed.map_err(Error::Nftables)?;
    Ok(tables.iter().flat_map(render_table).collect())
}

fn render_table(t: &cni_linux::firewall::nftables::TableListing) -> Vec<String> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let comment = |c: &Option<String>| match c {
        Some(c) => format!(" comment {c:?}"),
        None => String::new(),
    };
    let table = format!("table {} {}", t.family, t.name);
    let mut out = vec![format!("{table}{}", comment(&t.comment))];
    for c in &t.chains {
        let path = format!("{table} / chain {}", c.name);
        out.push(format!("{path}{}", comment(&c.comment)));
        if let Some((hook, prio)) = c.hook {
            let policy = match c.policy {
                Some(0) => "drop",
                _ => "accept",
            };
            out.push(format!(
                "{path}: type {} hook {hook} priority {prio}; policy {policy};",
                c.chain_type.as_deref().unwrap_or("?")
            ));
        }
        for r in &c.rules {
            let exprs = strip_counters(&r.exprs.join("; "));
            out.push(format!("{path}: {exprs}{}", comment(&r.comment)));
        }
    }
    for set in &t.sets {
        let path = format!("{table} / set {}", set.name);
        out.push(format!(
            "{path} flags={:#x} key={}/{} data={:?}/{:?}{}",
            set.flags,
            set.key_type,
            set.key_len,
            set.data_type,
            set.data_len,
            comment(&set.comment)
        ));
        for e in &set.elements {
            let data = match &e.data {
                Some(cni_linux::firewall::nftables::ElementData::Value(v)) => {
                    format!(" : {}", hex(v))
                }
                Some(cni_linux::firewall::nftables::ElementData::Verdict(v)) => {
                    format!(" : {v:?}")
                }
                None => String::new(),
            };
            out.push(format!(
                "{path}: element {}{data}{}",
                hex(&e.key),
                comment(&e.comment)
            ));
        }
    }
    out
}

/// Run a listing program inside `ns`; `None` when it is not installed.
fn list_if_installed(prog: &str, args: &[&str], ns: &NetNs) -> Result<Option<String>> {
    match process::run_ok(prog, args, Some(ns), LIST_TIMEOUT) {
        Ok(out) => Ok(Some(out.stdout_text())),
        Err(Error::Spawn { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Option<String>>) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read directory {}", dir.display()))(e)),
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        if meta.is_dir() {
            out.insert(path.clone(), None);
            walk(&path, out)?;
        } else if meta.len() > MAX_FILE {
            out.insert(path, Some(format!("({} bytes)", meta.len())));
        } else {
            let content = fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned());
            if let Ok(c) = content {
                out.insert(path, Some(c));
            }
        }
    }
    Ok(())
}

/// `nft list ruleset` output as items: every block header with its path (`table ip nat`,
/// `table ip nat / chain POSTROUTING`) and every statement with the path of its block.
/// Comments and counter values are dropped.
pub fn parse_nft(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = strip_counters(raw.trim());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "}" {
            stack.pop();
            continue;
        }
        if let Some(head) = line.strip_suffix('{') {
            stack.push(head.trim().to_string());
            out.push(stack.join(" / "));
            continue;
        }
        if stack.is_empty() {
            out.push(line);
        } else {
            out.push(format!("{}: {line}", stack.join(" / ")));
        }
    }
    out
}

/// Remove `packets N bytes M` after `counter` (in case `-s` was not honoured).
fn strip_counters(line: &str) -> String {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "counter"
            && words.get(i + 1) == Some(&"packets")
            && words.get(i + 3) == Some(&"bytes")
        {
            words.drain(i + 1..(i + 5).min(words.len()));
        }
        i += 1;
    }
    words.join(" ")
}

/// Drop base chains with an accept policy and no rules, then tables left empty.
pub fn drop_inert_nft(lines: Vec<String>) -> Vec<String> {
    use std::collections::BTreeSet;
    let is_accept_spec = |l: &str| l.contains(" hook ") && l.trim_end().ends_with("policy accept;");
    // Chains are "table / chain"; their content lines are "table / chain: ...".
    let mut accepting_base: BTreeSet<&str> = BTreeSet::new();
    let mut with_rules: BTreeSet<&str> = BTreeSet::new();
    for l in &lines {
        if let Some((path, rest)) = l.split_once(": ")
            && path.contains(" / chain ")
        {
            if is_accept_spec(rest) {
                accepting_base.insert(path);
            } else {
                with_rules.insert(path);
            }
        }
    }
    let inert: BTreeSet<&str> = accepting_base.difference(&with_rules).copied().collect();
    let kept: Vec<&String> = lines
        .iter()
        .filter(|l| !inert.contains(l.split_once(": ").map_or(l.as_str(), |(p, _)| p)))
        .collect();
    let used_tables: BTreeSet<&str> = kept
        .iter()
        .filter_map(|l| l.split_once(" / ").map(|(t, _)| t))
        .collect();
    kept.into_iter()
        .filter(|l| l.contains(" / ") || l.contains(": ") || used_tables.contains(l.as_str()))
        .cloned()
        .collect()
}

/// A built-in iptables chain declared with an `ACCEPT` policy (`v4 nat :PREROUTING ACCEPT`).
fn is_inert_builtin(item: &str) -> bool {
    const BUILTIN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    let mut parts = item.split_whitespace();
    let (_fam, _table, chain, policy) = (parts.next(), parts.next(), parts.next(), parts.next());
    matches!((chain, policy), (Some(c), Some("ACCEPT")) if c.strip_prefix(':').is_some_and(|c| BUILTIN.contains(&c)))
}

/// `iptables-save` output as items: `<family> <table> :CHAIN POLICY` and `<family> <table>
/// -A ...`, without counters.
pub fn parse_iptables_save(family: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut table = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            continue;
        }
        let line = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
            Some((_, rest)) => rest.to_string(), // `-c` counters before a rule
            None => line.to_string(),
        };
        let line = if line.starts_with(':') {
            match line.rfind(" [") {
                Some(i) => line[..i].to_string(),
                None => line,
            }
        } else {
            line
        };
        out.push(format!("{family} {table} {line}"));
    }
    out
}

fn multiset_minus(a: &[Item], b: &[Item]) -> Vec<Item> {
    let mut counts: HashMap<&Item, usize> = HashMap::new();
    for i in b {
        *counts.entry(i).or_default() += 1;
    }
    let mut out = Vec::new();
    for i in a {
        match counts.get_mut(i) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(i.clone()),
        }
    }
    out
}

/// What changed between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Items only in the later snapshot.
    pub added: Vec<Item>,
    /// Items only in the earlier snapshot.
    pub removed: Vec<Item>,
}

impl Diff {
    /// The multiset difference from `before` to `after`.
    pub fn between(before: &[Item], after: &[Item]) -> Diff {
        let mut added = multiset_minus(after, before);
        let mut removed = multiset_minus(before, after);
        added.sort();
        removed.sort();
        Diff { added, removed }
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Changed items whose text contains `needle`.
    pub fn mentioning(&self, needle: &str) -> Vec<&Item> {
        self.added
            .iter()
            .chain(&self.removed)
            .filter(|i| i.text.contains(needle))
            .collect()
    }

    /// Only the changes `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&Item) -> bool) -> Diff {
        Diff {
            added: self.added.iter().filter(|i| keep(i)).cloned().collect(),
            removed: self.removed.iter().filter(|i| keep(i)).cloned().collect(),
        }
    }
}

impl fmt::Display for Diff {
    /// One line per change, `- ` removed and `+ ` added, grouped by kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(no changes)");
        }
        let mut lines: Vec<(&Item, char)> = self
            .removed
            .iter()
            .map(|i| (i, '-'))
            .chain(self.added.iter().map(|i| (i, '+')))
            .collect();
        lines.sort_by(|a, b| (a.0.kind, &a.0.text, a.1).cmp(&(b.0.kind, &b.0.text, b.1)));
        for (n, (item, sign)) in lines.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{sign} {item}")?;
        }
        Ok(())
    }
}

/// Assert that a namespace is as a snapshot recorded it; panics with the readable diff.
///
/// `assert_unchanged!(before, &ns)` takes a new snapshot of `ns` with `before`'s options.
#[macro_export]
macro_rules! assert_unchanged {
    ($before:expr, $ns:expr) => {{
        let before: &$crate::Snapshot = &$before;
        let after = before
            .retake($ns)
            .unwrap_or_else(|e| panic!("snapshot failed: {e}"));
        let diff = before.diff(&after);
        if !diff.is_empty() {
            panic!("namespace state changed:\n{diff}");
        }
    }};
    ($before:expr, $ns:expr, $($arg:tt)+) => {{
        let before: &$crate::Snapshot = &$before;
        let after = before
            .retake($ns)
            .unwrap_or_else(|e| panic!("snapshot failed: {e}"));
        let diff = before.diff(&after);
        if !diff.is_empty() {
            panic!("{}: namespace state changed:\n{diff}", format_args!($($arg)+));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_ruleset_becomes_items() {
        let text = "# Warning: table ip nat is managed by iptables-nft, do not touch!\n\
table ip nat {\n\
\tchain POSTROUTING {\n\
\t\ttype nat hook postrouting priority srcnat; policy accept;\n\
\t\tip saddr 10.1.0.2 counter packets 3 bytes 180 jump CNI-abc\n\
\t}\n\
}\n\
table inet empty {\n\
}\n";
        assert_eq!(
            parse_nft(text),
            vec![
                "table ip nat",
                "table ip nat / chain POSTROUTING",
                "table ip nat / chain POSTROUTING: type nat hook postrouting priority srcnat; policy accept;",
                "table ip nat / chain POSTROUTING: ip saddr 10.1.0.2 counter jump CNI-abc",
                "table inet empty",
            ]
        );
    }

    #[test]
    fn inert_firewall_state_is_dropped() {
        let lines: Vec<String> = [
            "table ip6 nat",
            "table ip nat",
            "table ip nat / chain PREROUTING",
            "table ip nat / chain PREROUTING: type nat hook prerouting priority dstnat; policy accept;",
            "table ip nat / chain POSTROUTING",
            "table ip nat / chain POSTROUTING: type nat hook postrouting priority srcnat; policy accept;",
            "table ip nat / chain POSTROUTING: ip saddr 10.1.0.2 jump CNI-x",
            "table ip nat / chain CNI-x",
            "table ip filter",
            "table ip filter / chain INPUT",
            "table ip filter / chain INPUT: type filter hook input priority filter; policy drop;",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            drop_inert_nft(lines),
            vec![
                "table ip nat",
                "table ip nat / chain POSTROUTING",
                "table ip nat / chain POSTROUTING: type nat hook postrouting priority srcnat; policy accept;",
                "table ip nat / chain POSTROUTING: ip saddr 10.1.0.2 jump CNI-x",
                "table ip nat / chain CNI-x",
                "table ip filter",
                "table ip filter / chain INPUT",
                "table ip filter / chain INPUT: type filter hook input priority filter; policy drop;",
            ]
        );
        assert!(is_inert_builtin("v6 nat :INPUT ACCEPT"));
        assert!(!is_inert_builtin("v4 filter :FORWARD DROP"));
        assert!(!is_inert_builtin("v4 nat :CNI-x -"));
        assert!(!is_inert_builtin("v4 nat -A INPUT -j ACCEPT"));
    }

    #[test]
    fn iptables_save_becomes_items_without_counters() {
        let text = "# Generated by iptables-nft-save v1.8.9\n*nat\n:PREROUTING ACCEPT [0:0]\n:CNI-x - [0:0]\n\
-A POSTROUTING -s 10.1.0.2/32 -m comment --comment \"name: x\" -j CNI-x\n[5:300] -A CNI-x -j MASQUERADE\nCOMMIT\n";
        assert_eq!(
            parse_iptables_save("v4", text),
            vec![
                "v4 nat :PREROUTING ACCEPT",
                "v4 nat :CNI-x -",
                "v4 nat -A POSTROUTING -s 10.1.0.2/32 -m comment --comment \"name: x\" -j CNI-x",
                "v4 nat -A CNI-x -j MASQUERADE",
            ]
        );
    }

    #[test]
    fn diff_is_a_multiset_difference_and_reads_well() {
        let a = vec![
            Item::new(Kind::Link, "lo up"),
            Item::new(Kind::Link, "veth* up"),
            Item::new(Kind::Link, "veth* up"),
        ];
        let b = vec![
            Item::new(Kind::Link, "lo up"),
            Item::new(Kind::Link, "veth* up"),
            Item::new(Kind::File, "/d/x = \"c1\""),
        ];
        let d = Diff::between(&a, &b);
        assert_eq!(d.removed, vec![Item::new(Kind::Link, "veth* up")]);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.mentioning("c1").len(), 1);
        assert_eq!(
            d.to_string(),
            "- link     veth* up\n+ file     /d/x = \"c1\""
        );
        assert!(Diff::between(&a, &a).is_empty());
        assert_eq!(Diff::default().to_string(), "(no changes)");
    }

    #[test]
    fn veth_names_normalise_only_when_asked() {
        let o = SnapshotOptions::default();
        assert_eq!(name("veth1a2b3c4d", &o), "veth1a2b3c4d");
        let o = o.normalize_veth_names();
        assert_eq!(name("veth1a2b3c4d", &o), "veth*");
        assert_eq!(name("vethcni0", &o), "vethcni0");
        assert_eq!(name("eth0", &o), "eth0");
    }

    #[test]
    fn counters_are_stripped() {
        assert_eq!(
            strip_counters("ip saddr 1.2.3.4 counter packets 0 bytes 0 accept"),
            "ip saddr 1.2.3.4 counter accept"
        );
        assert_eq!(strip_counters("counter"), "counter");
    }

    #[test]
    fn host_local_bookkeeping_is_not_a_reservation() {
        let f = |t: &str| host_local_bookkeeping(&Item::new(Kind::File, t));
        assert!(f("/data/net/"));
        assert!(f("/data/net/lock = \"\""));
        assert!(f("/data/net/last_reserved_ip.0 = \"10.0.0.2\""));
        assert!(f("/data/net/.cni-rs-host-local.index = \"...\""));
        assert!(!f("/data/net/10.0.0.2 = \"c1\\r\\neth0\""));
        assert!(!f("/data/net/last_reserved_ip.0.tmp = \"10.0.0.2\""));
        assert!(!f("/data/net/.cni-rs-host-local.index.tmp = \"\""));
        assert!(!host_local_bookkeeping(&Item::new(Kind::Link, "lock")));
    }
}
