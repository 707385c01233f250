//! iptables backend: plans for `iptables-restore`, the `iptables-save` model, and apply.
//!
//! # Model
//!
//! An [`IptablesPlan`] is a pure value: the chains one table of one family must have, and a
//! list of idempotent operations ([`IptablesOp`]). Plugins build plans and golden-test their
//! [`Display`](std::fmt::Display) text without root.
//!
//! [`apply`] turns plans into kernel state with at most two processes per family: one
//! `iptables-save` (parsed into an [`IptablesState`]) and, if anything must change, one
//! `iptables-restore --noflush -w` fed the minimal script computed by [`restore_script`].
//! Where `iptables-save` resolves to `xtables-nft-multi` (iptables-nft), the state of the
//! chains the plans touch is read straight from nf_tables over netlink instead, and no
//! `iptables-save` runs: the rules' expressions are decoded back to the tokens `iptables-save`
//! prints (module `nft`: the header matches, tcp/udp ports, `comment`, `multiport`,
//! `addrtype`, `conntrack --ctstate`, `mark`, the verdicts and `MASQUERADE`/`MARK`/`DNAT`, in
//! the forms our plans and the reference plugins write). A needed rule in any other form makes
//! that call fall back to `iptables-save`; iptables-legacy always uses it. [`save`] does the
//! same for a whole table.
//!
//! Where the state came from nf_tables, the changes are also written without a process when
//! they can be written exactly: every rule to add encodes as iptables-nft 1.8.9 encodes it
//! (module `encode`, the inverse of the decoder, proven byte for byte against `iptables` by
//! `tests/firewall_iptables_nft_write.rs`), the table and the built-in chains involved exist
//! already and every jump target is a known chain. Then the very decisions of the restore
//! script become one nf_tables batch per family (`NEWCHAIN` for `-N`, `NEWRULE` appended for
//! `-A` or at the head for `-I 1`, `DELRULE` by handle for `-D`, of the chain for `-F`,
//! `DELCHAIN` for `-X`) whose begin carries the generation id read with the state, so the
//! kernel refuses it if anything changed in between; `apply` then reads again and retries.
//! Anything else (a missing table or built-in chain, which iptables-nft creates its own way,
//! a rule form not proven, iptables-legacy) goes through `iptables-restore` as before.
//! [`ApplyReport::netlink`] tells which way was taken.
//!
//! Chains are created with `-N` only when they do not exist (never with a `:CHAIN` line, which
//! would flush an existing chain and make the kernel wait out the deletions); rules are
//! appended to existing chains. So when another process changes the table between the two
//! steps the restore fails as a whole and `apply` re-reads the state and retries once.
//!
//! Rules are compared in the canonical form documented in [`Rule`], which is what
//! `iptables-save` prints and what `iptables -C` of the reference plugins matches.

mod encode;
mod nft;
mod rule;
mod state;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub use rule::{Rule, RuleError};
pub use state::{ChainState, IptablesState, ParseError, TableState};

use super::{IpFamily, READ_LIMIT, read_capped};

/// Errors of the iptables backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IptablesError {
    /// A table or chain name that iptables cannot accept or that could break a script line.
    #[error("invalid iptables {what} name {name:?}")]
    InvalidName {
        /// `"table"` or `"chain"`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// The binary is not in `PATH`.
    #[error("{binary} not found in PATH")]
    NotFound {
        /// Binary name.
        binary: &'static str,
    },
    /// The process could not be started or talked to.
    #[error("failed to run {binary}")]
    Spawn {
        /// Binary path.
        binary: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The process exited unsuccessfully.
    #[error("{binary} failed ({status}): {stderr}")]
    Failed {
        /// Binary path.
        binary: String,
        /// Exit status text.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// The restore script that was fed to it (empty for save).
        script: String,
    },
    /// The output of a process could not be read, or was larger than we read (16 MiB).
    #[error("reading the output of {binary}")]
    Output {
        /// Binary path.
        binary: String,
        /// Cause (`FileTooLarge` past the limit).
        #[source]
        source: std::io::Error,
    },
    /// nf_tables could not be read (see [`read_nftables`]).
    #[error("reading iptables-nft's rules from nf_tables")]
    Nftables(#[source] Box<crate::firewall::nftables::NftError>),
    /// The output of `iptables-save` was not understood.
    #[error("unexpected iptables-save output")]
    Parse(#[from] ParseError),
}

/// One idempotent operation of an [`IptablesPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IptablesOp {
    /// Append `rule` to `chain` unless the chain already contains it (`-C` then `-A`).
    AppendUnique {
        /// Chain name.
        chain: String,
        /// Rule.
        rule: Rule,
    },
    /// Insert `rule` at the top of `chain` unless the chain already contains it anywhere.
    InsertUnique {
        /// Chain name.
        chain: String,
        /// Rule.
        rule: Rule,
    },
    /// Delete every copy of `rule` from `chain`; nothing if absent or the chain is missing.
    Delete {
        /// Chain name.
        chain: String,
        /// Rule.
        rule: Rule,
    },
    /// Delete every rule of `chain` whose comment equals `comment`.
    DeleteWithComment {
        /// Chain name.
        chain: String,
        /// Exact comment text.
        comment: String,
    },
    /// Delete every rule of the table (in any chain) that jumps or goes to `target`.
    DeleteJumpsTo {
        /// Target chain name.
        target: String,
        /// Where such rules are expected (e.g. `CNI-HOSTPORT-DNAT` for a `CNI-DN-` chain): a
        /// hint that changes what is read, never what is deleted. On iptables-nft, when the
        /// kernel's reference count of `target` is met by the jumps found in these chains,
        /// the rest of the table is not read; otherwise (a jump elsewhere, or no hint) it is.
        expected_in: Vec<String>,
    },
    /// Remove all rules from `chain` if it exists.
    Flush {
        /// Chain name.
        chain: String,
    },
    /// Flush and delete `chain` if it exists (the reference's `ClearAndDeleteChain`). Rules
    /// elsewhere that still jump to it make the kernel refuse: delete them first with
    /// [`IptablesOp::DeleteJumpsTo`].
    DeleteChain {
        /// Chain name.
        chain: String,
    },
}

/// Changes for one table of one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesPlan {
    /// `iptables` or `ip6tables`.
    pub family: IpFamily,
    /// Table name, e.g. `"nat"` or `"filter"`.
    pub table: String,
    /// User-defined chains created (empty) when missing, before the operations run.
    pub chains_to_ensure: Vec<String>,
    /// Operations, applied in order.
    pub ops: Vec<IptablesOp>,
}

impl IptablesPlan {
    /// An empty plan for `table` of `family`.
    pub fn new(family: IpFamily, table: impl Into<String>) -> IptablesPlan {
        IptablesPlan {
            family,
            table: table.into(),
            chains_to_ensure: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a chain to create when missing.
    pub fn ensure_chain(&mut self, chain: impl Into<String>) -> &mut Self {
        let chain = chain.into();
        if !self.chains_to_ensure.contains(&chain) {
            self.chains_to_ensure.push(chain);
        }
        self
    }

    /// Adds [`IptablesOp::AppendUnique`].
    pub fn append_unique(&mut self, chain: impl Into<String>, rule: Rule) -> &mut Self {
        self.push(IptablesOp::AppendUnique {
            chain: chain.into(),
            rule,
        })
    }

    /// Adds [`IptablesOp::InsertUnique`].
    pub fn insert_unique(&mut self, chain: impl Into<String>, rule: Rule) -> &mut Self {
        self.push(IptablesOp::InsertUnique {
            chain: chain.into(),
            rule,
        })
    }

    /// Adds [`IptablesOp::Delete`].
    pub fn delete(&mut self, chain: impl Into<String>, rule: Rule) -> &mut Self {
        self.push(IptablesOp::Delete {
            chain: chain.into(),
            rule,
        })
    }

    /// Adds [`IptablesOp::DeleteWithComment`].
    pub fn delete_with_comment(
        &mut self,
        chain: impl Into<String>,
        comment: impl Into<String>,
    ) -> &mut Self {
        self.push(IptablesOp::DeleteWithComment {
            chain: chain.into(),
            comment: comment.into(),
        })
    }

    /// Adds [`IptablesOp::DeleteJumpsTo`] with no hint of where the jumps are.
    pub fn delete_jumps_to(&mut self, target: impl Into<String>) -> &mut Self {
        self.push(IptablesOp::DeleteJumpsTo {
            target: target.into(),
            expected_in: Vec::new(),
        })
    }

    /// Adds [`IptablesOp::DeleteJumpsTo`], the jumps expected in `chains`: every jump to
    /// `target` is deleted all the same, wherever it is; on a node with many rules, reading
    /// only those chains is what the hint buys.
    pub fn delete_jumps_to_expected_in<I, S>(
        &mut self,
        target: impl Into<String>,
        chains: I,
    ) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push(IptablesOp::DeleteJumpsTo {
            target: target.into(),
            expected_in: chains.into_iter().map(Into::into).collect(),
        })
    }

    /// Adds [`IptablesOp::Flush`].
    pub fn flush(&mut self, chain: impl Into<String>) -> &mut Self {
        self.push(IptablesOp::Flush {
            chain: chain.into(),
        })
    }

    /// Adds [`IptablesOp::DeleteChain`].
    pub fn delete_chain(&mut self, chain: impl Into<String>) -> &mut Self {
        self.push(IptablesOp::DeleteChain {
            chain: chain.into(),
        })
    }

    /// Adds any operation.
    pub fn push(&mut self, op: IptablesOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Whether the plan does nothing.
    pub fn is_empty(&self) -> bool {
        self.chains_to_ensure.is_empty() && self.ops.is_empty()
    }

    fn validate(&self) -> Result<(), IptablesError> {
        check_name("table", &self.table)?;
        for c in &self.chains_to_ensure {
            check_name("chain", c)?;
        }
        for op in &self.ops {
            match op {
                IptablesOp::AppendUnique { chain, .. }
                | IptablesOp::InsertUnique { chain, .. }
                | IptablesOp::Delete { chain, .. }
                | IptablesOp::DeleteWithComment { chain, .. }
                | IptablesOp::Flush { chain }
                | IptablesOp::DeleteChain { chain } => check_name("chain", chain)?,
                IptablesOp::DeleteJumpsTo {
                    target,
                    expected_in,
                } => {
                    check_name("chain", target)?;
                    for c in expected_in {
                        check_name("chain", c)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A name iptables accepts for a table or chain (at most
/// [`MAX_CHAIN_LENGTH`](crate::firewall::names::MAX_CHAIN_LENGTH) bytes,
/// `XT_EXTENSION_MAXNAMELEN - 1`) that also stays one plain word in a restore script:
/// printable ASCII without quotes or backslashes, not starting like an option (`-`, `!`).
pub fn is_chain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::firewall::names::MAX_CHAIN_LENGTH
        && !name.starts_with(['-', '!'])
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'))
}

/// Refuses what [`is_chain_name`] refuses, so a name can never split a script line.
fn check_name(what: &'static str, name: &str) -> Result<(), IptablesError> {
    if is_chain_name(name) {
        Ok(())
    } else {
        Err(IptablesError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for IptablesPlan {
    /// A deterministic, line-per-operation dump for golden tests:
    ///
    /// ```text
    /// table ipv4 nat
    ///   chain CNI-abc
    ///   append-unique POSTROUTING -s 10.0.0.2/32 -m comment --comment "x y" -j CNI-abc
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table {} {}", self.family, self.table)?;
        for c in &self.chains_to_ensure {
            writeln!(f, "  chain {c}")?;
        }
        for op in &self.ops {
            match op {
                IptablesOp::AppendUnique { chain, rule } => {
                    writeln!(f, "  append-unique {chain} {rule}")?
                }
                IptablesOp::InsertUnique { chain, rule } => {
                    writeln!(f, "  insert-unique {chain} {rule}")?
                }
                IptablesOp::Delete { chain, rule } => writeln!(f, "  delete {chain} {rule}")?,
                IptablesOp::DeleteWithComment { chain, comment } => {
                    let mut q = String::new();
                    rule::push_quoted(&mut q, comment, true);
                    writeln!(f, "  delete-with-comment {chain} {q}")?
                }
                IptablesOp::DeleteJumpsTo {
                    target,
                    expected_in,
                } => {
                    write!(f, "  delete-jumps-to {target}")?;
                    if !expected_in.is_empty() {
                        write!(f, " (expected in {})", expected_in.join(" "))?;
                    }
                    writeln!(f)?
                }
                IptablesOp::Flush { chain } => writeln!(f, "  flush {chain}")?,
                IptablesOp::DeleteChain { chain } => writeln!(f, "  delete-chain {chain}")?,
            }
        }
        Ok(())
    }
}

/// Computes the `iptables-restore --noflush` input that brings `state` to what `plans`
/// require. Plans must all be for `state.family`. Returns an empty string when nothing needs
/// to change. Pure: no process, no kernel.
pub fn restore_script(
    plans: &[&IptablesPlan],
    state: &IptablesState,
) -> Result<String, IptablesError> {
    let mut sim = state.clone();
    let mut out = String::new();
    let tables: BTreeSet<&str> = plans.iter().map(|p| p.table.as_str()).collect();
    for table in tables {
        let mut body = String::new();
        if sim.table(table).is_none() {
            sim.tables.push(TableState {
                name: table.to_owned(),
                chains: Vec::new(),
            });
        }
        let Some(t) = sim.table_mut(table) else {
            continue;
        };
        for plan in plans.iter().filter(|p| p.table == table) {
            plan.validate()?;
            plan_into_script(plan, t, &mut body);
        }
        if !body.is_empty() {
            out.push('*');
            out.push_str(table);
            out.push('\n');
            out.push_str(&body);
            out.push_str("COMMIT\n");
        }
    }
    Ok(out)
}

fn chain_entry<'a>(t: &'a mut TableState, chain: &str) -> &'a mut ChainState {
    if t.chain(chain).is_none() {
        t.chains.push(ChainState {
            name: chain.to_owned(),
            policy: None,
            rules: Vec::new(),
        });
    }
    let idx = t.chains.iter().position(|c| c.name == chain).unwrap_or(0);
    &mut t.chains[idx]
}

fn plan_into_script(plan: &IptablesPlan, t: &mut TableState, body: &mut String) {
    use std::fmt::Write as _;
    for c in &plan.chains_to_ensure {
        if !t.has_chain(c) {
            let _ = writeln!(body, "-N {c}");
            chain_entry(t, c);
        }
    }
    for op in &plan.ops {
        match op {
            IptablesOp::AppendUnique { chain, rule } => {
                let c = chain_entry(t, chain);
                if !c.rules.contains(rule) {
                    let _ = writeln!(body, "-A {chain} {rule}");
                    c.rules.push(rule.clone());
                }
            }
            IptablesOp::InsertUnique { chain, rule } => {
                let c = chain_entry(t, chain);
                if !c.rules.contains(rule) {
                    let _ = writeln!(body, "-I {chain} 1 {rule}");
                    c.rules.insert(0, rule.clone());
                }
            }
            IptablesOp::Delete { chain, rule } => {
                if let Some(c) = t.chain_mut(chain) {
                    c.rules.retain(|r| {
                        if r == rule {
                            let _ = writeln!(body, "-D {chain} {rule}");
                            false
                        } else {
                            true
                        }
                    });
                }
            }
            IptablesOp::DeleteWithComment { chain, comment } => {
                // Compared as iptables stored it: a long comment is cut.
                let comment = rule::stored_comment(comment);
                if let Some(c) = t.chain_mut(chain) {
                    c.rules.retain(|r| {
                        if r.comment() == Some(comment) {
                            let _ = writeln!(body, "-D {chain} {r}");
                            false
                        } else {
                            true
                        }
                    });
                }
            }
            IptablesOp::DeleteJumpsTo { target, .. } => {
                for c in &mut t.chains {
                    let name = c.name.clone();
                    c.rules.retain(|r| {
                        if r.target() == Some(target.as_str()) {
                            let _ = writeln!(body, "-D {name} {r}");
                            false
                        } else {
                            true
                        }
                    });
                }
            }
            IptablesOp::Flush { chain } => {
                if let Some(c) = t.chain_mut(chain)
                    && !c.rules.is_empty()
                {
                    let _ = writeln!(body, "-F {chain}");
                    c.rules.clear();
                }
            }
            IptablesOp::DeleteChain { chain } => {
                if let Some(c) = t.chain_mut(chain) {
                    if !c.rules.is_empty() {
                        let _ = writeln!(body, "-F {chain}");
                    }
                    let _ = writeln!(body, "-X {chain}");
                    t.chains.retain(|c| &c.name != chain);
                }
            }
        }
    }
}

/// The `iptables-save`/`iptables-restore` pair for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// Path of `iptables-save` / `ip6tables-save`.
    pub save: PathBuf,
    /// Path of `iptables-restore` / `ip6tables-restore`.
    pub restore: PathBuf,
}

impl Binaries {
    /// Finds the binaries for `family` in `PATH` (no process is spawned).
    pub fn find(family: IpFamily) -> Result<Binaries, IptablesError> {
        let (save, restore) = match family {
            IpFamily::V4 => ("iptables-save", "iptables-restore"),
            IpFamily::V6 => ("ip6tables-save", "ip6tables-restore"),
        };
        let find = |binary: &'static str| {
            super::find_in_path(binary).ok_or(IptablesError::NotFound { binary })
        };
        Ok(Binaries {
            save: find(save)?,
            restore: find(restore)?,
        })
    }
}

/// Reads the current state of `table` (or all tables when `None`) in the calling thread's
/// network namespace: where iptables is iptables-nft, straight from nf_tables (no process)
/// when every rule of the table decodes exactly; otherwise with one `iptables-save`
/// (`ip6tables-save`) process.
pub fn save(family: IpFamily, table: Option<&str>) -> Result<IptablesState, IptablesError> {
    let bins = Binaries::find(family)?;
    if let Some(t) = table {
        check_name("table", t)?;
        let need = nft::Need {
            all: true,
            ..nft::Need::default()
        };
        if let Some(read) = read_nft(&bins, family, vec![(t, need)]) {
            return Ok(read.state);
        }
    }
    save_with(&bins, family, table)
}

/// The state of `table` of `family` read straight from nf_tables (no process), as
/// `iptables-save -t TABLE` would print it for iptables-nft; `Ok(None)` when a rule of it is
/// not a form this crate decodes exactly. An absent table reads as an empty state. For tests
/// and diagnostics: [`save`] and [`apply`] use it by themselves where iptables is iptables-nft.
pub fn read_nftables(
    family: IpFamily,
    table: &str,
) -> Result<Option<IptablesState>, IptablesError> {
    check_name("table", table)?;
    let need = nft::Need {
        all: true,
        ..nft::Need::default()
    };
    nft::read_state(family, &[(table, need)])
        .map(|r| r.map(|r| r.state))
        .map_err(|e| IptablesError::Nftables(Box::new(e)))
}

/// The state of `tables` read from nf_tables when iptables is iptables-nft; `None` when it is
/// not, or when nf_tables cannot be read or a needed rule does not decode exactly.
fn read_nft(
    bins: &Binaries,
    family: IpFamily,
    tables: Vec<(&str, nft::Need)>,
) -> Option<nft::NftState> {
    if !nft::is_iptables_nft(&bins.save) {
        return None;
    }
    nft::read_state(family, &tables).ok().flatten()
}

/// What `restore_script` reads of each table for `plans`: the chains they name, and the
/// jumps to the targets of [`IptablesOp::DeleteJumpsTo`] anywhere; and what the netlink
/// writer needs besides: whether the chains the rules to add jump to exist.
///
/// A chain that only [`IptablesPlan::chains_to_ensure`] names, or that only gets
/// [`IptablesOp::AppendUnique`]/[`IptablesOp::InsertUnique`] of jumps to chains the plans
/// ensure in that table, goes to [`nft::Need::jumps_only`] instead of `chains`: its rules
/// matter only if they jump to one of those targets, and none can unless the target exists
/// (the kernel refuses a jump to a missing chain). A jump to a name no plan ensures (maybe an
/// extension target this crate does not know) keeps the full read, as does every other op
/// on the chain.
fn needs<'a>(plans: &[&'a IptablesPlan]) -> Vec<(&'a str, nft::Need)> {
    let mut out: Vec<(&str, nft::Need)> = Vec::new();
    for p in plans {
        let idx = match out.iter().position(|(t, _)| *t == p.table) {
            Some(i) => i,
            None => {
                out.push((p.table.as_str(), nft::Need::default()));
                out.len() - 1
            }
        };
        let ensured = |name: &str| {
            plans
                .iter()
                .any(|q| q.table == p.table && q.chains_to_ensure.iter().any(|c| c == name))
        };
        let need = &mut out[idx].1;
        for c in &p.chains_to_ensure {
            need.jumps_only.entry(c.clone()).or_default();
        }
        for op in &p.ops {
            match op {
                IptablesOp::AppendUnique { chain, rule }
                | IptablesOp::InsertUnique { chain, rule } => {
                    match rule.target().and_then(encode::jump_target) {
                        Some(target) => {
                            need.exists.insert(target.to_owned());
                            if ensured(target) {
                                need.jumps_only
                                    .entry(chain.clone())
                                    .or_default()
                                    .insert(target.to_owned());
                            } else {
                                need.chains.insert(chain.clone());
                            }
                        }
                        None => {
                            need.chains.insert(chain.clone());
                        }
                    }
                }
                IptablesOp::Delete { chain, .. }
                | IptablesOp::DeleteWithComment { chain, .. }
                | IptablesOp::Flush { chain }
                | IptablesOp::DeleteChain { chain } => {
                    need.chains.insert(chain.clone());
                }
                IptablesOp::DeleteJumpsTo {
                    target,
                    expected_in,
                } => {
                    // Two ops on one target: a hint must hold for both, so the chains add up;
                    // one op without a hint reads the table.
                    let hints = need
                        .jumps_to
                        .entry(target.clone())
                        .or_insert_with(|| Some(BTreeSet::new()));
                    match (hints.as_mut(), expected_in.is_empty()) {
                        (Some(h), false) => h.extend(expected_in.iter().cloned()),
                        _ => *hints = None,
                    }
                }
            }
        }
    }
    for (_, need) in &mut out {
        let full = &need.chains;
        need.jumps_only.retain(|c, _| !full.contains(c));
    }
    out
}

fn save_with(
    bins: &Binaries,
    family: IpFamily,
    table: Option<&str>,
) -> Result<IptablesState, IptablesError> {
    let mut cmd = Command::new(&bins.save);
    if let Some(t) = table {
        check_name("table", t)?;
        cmd.arg("-t").arg(t);
    }
    let binary = bins.save.display().to_string();
    let spawn_err = |source| IptablesError::Spawn {
        binary: binary.clone(),
        source,
    };
    let mut child = crate::child::die_with_parent(&mut cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // stderr on a helper thread, so a child filling one pipe cannot block on it while we read
    // the other; each read stops past READ_LIMIT.
    let (stdout, stderr) = std::thread::scope(|s| {
        let err = s.spawn(|| read_stderr(stderr));
        let out = stdout.map_or(Ok(Vec::new()), |p| read_capped(p, READ_LIMIT));
        if out.is_err() {
            // Too much (or unreadable): the child may be blocked writing the rest.
            let _ = child.kill();
        }
        (out, err.join().unwrap_or_default())
    });
    let status = child.wait().map_err(spawn_err)?;
    let stdout = stdout.map_err(|source| IptablesError::Output {
        binary: binary.clone(),
        source,
    })?;
    if !status.success() {
        return Err(IptablesError::Failed {
            binary,
            status: status.to_string(),
            stderr,
            script: String::new(),
        });
    }
    Ok(IptablesState::parse(
        family,
        &String::from_utf8_lossy(&stdout),
    )?)
}

/// A child's stderr for an error message, trimmed; at most [`READ_LIMIT`] bytes are kept.
fn read_stderr(pipe: Option<impl std::io::Read>) -> String {
    let Some(pipe) = pipe else {
        return String::new();
    };
    match read_capped(pipe, READ_LIMIT) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(e) => format!("(stderr not read: {e})"),
    }
}

fn restore_with(bins: &Binaries, script: &str) -> Result<(), IptablesError> {
    let binary = bins.restore.display().to_string();
    let spawn_err = |source| IptablesError::Spawn {
        binary: binary.clone(),
        source,
    };
    // A restore that outlived a killed plugin would commit after the runtime's DEL looked.
    let mut child = crate::child::die_with_parent(&mut Command::new(&bins.restore))
        .args(["--noflush", "-w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let (stdin, stderr) = (child.stdin.take(), child.stderr.take());
    // Write on a helper thread so a child that fills its stderr pipe cannot deadlock us.
    let (stderr, written) = std::thread::scope(|s| {
        let writer = s.spawn(|| -> std::io::Result<()> {
            if let Some(mut stdin) = stdin {
                stdin.write_all(script.as_bytes())?;
            }
            Ok(())
        });
        let stderr = read_stderr(stderr);
        (stderr, writer.join().unwrap_or(Ok(())))
    });
    let status = child.wait().map_err(spawn_err)?;
    if !status.success() {
        return Err(IptablesError::Failed {
            binary,
            status: status.to_string(),
            stderr,
            script: script.to_owned(),
        });
    }
    written.map_err(spawn_err)?;
    Ok(())
}

/// What [`apply`] did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// The changes made, as the restore script that expresses them (one per family and
    /// attempt that changed something), whether `iptables-restore` ran it or it was
    /// committed over netlink (see `netlink`).
    pub scripts: Vec<String>,
    /// Processes spawned (`iptables-save`, `iptables-restore`).
    pub processes: usize,
    /// How many of `scripts` were committed as one nf_tables batch over netlink, without
    /// `iptables-restore` (iptables-nft only).
    pub netlink: usize,
    /// Rule dumps read from nf_tables (iptables-nft only): one per chain whose rules were
    /// read, one per table listed whole. A chain that only gets jumps to chains that do not
    /// exist yet needs none (see [`apply`]).
    pub rule_dumps: usize,
    /// Rules decoded from those dumps (iptables-nft only).
    pub rules_decoded: usize,
    /// Rules received in those dumps (iptables-nft only): a chain read for the jumps to
    /// chains whose references the kernel counts is read only up to the last of them.
    pub rules_read: usize,
}

/// Applies `plans` in the calling thread's network namespace: per family the state of the
/// tables involved (read from nf_tables with iptables-nft, else one `iptables-save`) and, if
/// needed, one kernel transaction: with iptables-nft, when every change can be written
/// exactly as iptables-nft writes it (module `encode`), one nf_tables batch over netlink that
/// the kernel refuses if the ruleset changed since the read (then the state is read again,
/// up to [`NETLINK_ATTEMPTS`] times); otherwise one `iptables-restore --noflush -w`. A failed
/// restore is retried from a fresh read (another process may have changed the table in
/// between), over netlink when that read allows it, up to [`RESTORE_ATTEMPTS`] restores in
/// all; the last error is returned.
///
/// With iptables-nft only the chains the plans touch are read, one by one. A chain that the
/// plans only ensure, or only append (insert) jumps to chains they ensure, is not dumped
/// while none of those targets exists (it cannot hold a jump to a missing chain), and
/// otherwise only its rules jumping to them are decoded: a pod's ADD does not read the
/// per-pod jumps of the shared chains ([`ApplyReport::rule_dumps`]).
pub fn apply(plans: &[IptablesPlan]) -> Result<ApplyReport, IptablesError> {
    let mut report = ApplyReport::default();
    for family in [IpFamily::V4, IpFamily::V6] {
        let fam_plans: Vec<&IptablesPlan> = plans
            .iter()
            .filter(|p| p.family == family && !p.is_empty())
            .collect();
        if fam_plans.is_empty() {
            continue;
        }
        for p in &fam_plans {
            p.validate()?;
        }
        let bins = Binaries::find(family)?;
        let tables: BTreeSet<&str> = fam_plans.iter().map(|p| p.table.as_str()).collect();
        let only_table = if tables.len() == 1 {
            tables.iter().next().copied()
        } else {
            None
        };
        let mut restores = 0;
        let mut skeleton_tried = false;
        let mut netlink_attempts = 0;
        // Set when the kernel refused a batch for another reason than a changed ruleset: the
        // rest goes through iptables-restore, which does it or says why not.
        let mut netlink_refused = false;
        loop {
            let read = read_nft(&bins, family, needs(&fam_plans));
            if let Some(read) = &read {
                report.rule_dumps += read.rule_dumps;
                report.rules_decoded += read.rules_decoded;
                report.rules_read += read.rules_read;
            }
            let saved;
            let state = match &read {
                Some(read) => &read.state,
                None => {
                    report.processes += 1;
                    saved = save_with(&bins, family, only_table)?;
                    &saved
                }
            };
            let script = restore_script(&fam_plans, state)?;
            if script.is_empty() {
                break;
            }
            // A table or built-in chain iptables-nft has not created yet: created first, alone,
            // by an iptables-restore that changes nothing else (`:CHAIN - [0:0]` with
            // `--noflush` creates a missing built-in chain and leaves an existing one, its
            // rules and its policy, as they are), then the rest over netlink from a fresh read.
            // Two restores computed from the same empty table would otherwise both write the
            // plans' rules, twice.
            if !netlink_refused
                && !skeleton_tried
                && let Some(read) = &read
                && let Some(skeleton) = encode::skeleton_script(&fam_plans, &tables, read)
            {
                skeleton_tried = true;
                report.processes += 1;
                if restore_with(&bins, &skeleton).is_ok() {
                    report.scripts.push(skeleton);
                    continue;
                }
            }
            // A plan the writer cannot encode from this read goes to iptables-restore; after a
            // restore that failed, the fresh read may well be encodable (another ADD created a
            // chain meanwhile).
            if !netlink_refused
                && let Some(read) = &read
                && let Some(msgs) = netlink_batch(&fam_plans, &tables, read)
            {
                netlink_attempts += 1;
                match encode::commit(&msgs, read.genid) {
                    Ok(()) => {
                        report.scripts.push(script);
                        report.netlink += 1;
                        break;
                    }
                    // The ruleset changed since the read: read again.
                    Err(e)
                        if e.errno() == Some(libc::ERESTART)
                            && netlink_attempts < NETLINK_ATTEMPTS =>
                    {
                        continue;
                    }
                    // Refused otherwise (nothing changed): iptables-restore from a fresh
                    // read, which does it or reports why not.
                    Err(_) => {
                        netlink_refused = true;
                        continue;
                    }
                }
            }
            restores += 1;
            report.processes += 1;
            match restore_with(&bins, &script) {
                Ok(()) => {
                    report.scripts.push(script);
                    break;
                }
                Err(e) if restores >= RESTORE_ATTEMPTS => return Err(e),
                // Most likely a concurrent change made a line of the script fail (a chain it
                // creates was created meanwhile): read again.
                Err(_) => continue,
            }
        }
    }
    Ok(report)
}

/// How many times [`apply`] runs `iptables-restore` for one family, each from a fresh read,
/// before it returns the last failure: a script computed before another process changed the
/// table can fail on a line (a chain created meanwhile), and on a fresh node where many ADDs
/// race to create the same chains that can happen twice in a row.
pub const RESTORE_ATTEMPTS: usize = 3;

/// How many times [`apply`] commits a netlink batch that the kernel refused because the
/// ruleset changed in between (each after a fresh read) before it hands the family to
/// `iptables-restore`.
pub const NETLINK_ATTEMPTS: usize = 8;

/// The messages of the one nf_tables batch that makes the changes of `plans` to `tables`;
/// `None` when some change cannot be made exactly over netlink.
fn netlink_batch(
    plans: &[&IptablesPlan],
    tables: &BTreeSet<&str>,
    read: &nft::NftState,
) -> Option<Vec<Vec<u8>>> {
    let mut msgs = Vec::new();
    for table in tables {
        let changes = encode::plan_changes(plans, table, read)?;
        msgs.extend(encode::messages(read.state.family, table, &changes));
    }
    Some(msgs)
}

#[cfg(test)]
mod tests;
