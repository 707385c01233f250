//! The firewall state as read from `iptables-save`, parsed into tables, chains and rules.

use super::rule::{Rule, split_args};
use crate::firewall::IpFamily;

/// `iptables-save` output that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse iptables-save output line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One chain and its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// Chain name.
    pub name: String,
    /// Policy of a built-in chain (`ACCEPT`, `DROP`); `None` for user-defined chains.
    pub policy: Option<String>,
    /// The rules, as `iptables-save` printed them (already canonical).
    pub rules: Vec<Rule>,
}

/// One table (`nat`, `filter`, ...) with its chains in `iptables-save` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    /// Table name.
    pub name: String,
    /// Chains, built-in first, as printed.
    pub chains: Vec<ChainState>,
}

/// Parsed `iptables-save` / `ip6tables-save` output for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesState {
    /// Which binary produced it.
    pub family: IpFamily,
    /// Tables in the order printed.
    pub tables: Vec<TableState>,
}

impl IptablesState {
    /// Parses the text printed by `iptables-save [-t TABLE]`.
    pub fn parse(family: IpFamily, text: &str) -> Result<IptablesState, ParseError> {
        let mut tables: Vec<TableState> = Vec::new();
        let mut open = false;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim_end();
            let perr = |reason: &str| ParseError {
                line: line_no,
                reason: reason.to_owned(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('*') {
                if open {
                    return Err(perr("table started before COMMIT"));
                }
                tables.push(TableState {
                    name: name.to_owned(),
                    chains: Vec::new(),
                });
                open = true;
                continue;
            }
            if line == "COMMIT" {
                if !open {
                    return Err(perr("COMMIT outside a table"));
                }
                open = false;
                continue;
            }
            let Some(table) = tables.last_mut().filter(|_| open) else {
                return Err(perr("line outside a table"));
            };
            if let Some(decl) = line.strip_prefix(':') {
                let mut parts = decl.split_whitespace();
                let name = parts.next().ok_or_else(|| perr("chain without a name"))?;
                let policy = parts.next().ok_or_else(|| perr("chain without a policy"))?;
                table.chains.push(ChainState {
                    name: name.to_owned(),
                    policy: (policy != "-").then(|| policy.to_owned()),
                    rules: Vec::new(),
                });
                continue;
            }
            let args = split_args(line).map_err(|e| perr(&e))?;
            match args.as_slice() {
                [flag, chain, rest @ ..] if flag == "-A" => {
                    let rule = Rule::from_saved(rest.to_vec());
                    match table.chains.iter_mut().find(|c| &c.name == chain) {
                        Some(c) => c.rules.push(rule),
                        None => table.chains.push(ChainState {
                            name: chain.clone(),
                            policy: None,
                            rules: vec![rule],
                        }),
                    }
                }
                _ => return Err(perr("expected -A, :CHAIN, *TABLE or COMMIT")),
            }
        }
        if open {
            return Err(ParseError {
                line: text.lines().count(),
                reason: "missing COMMIT".to_owned(),
            });
        }
        Ok(IptablesState { family, tables })
    }

    /// The table called `name`, if it was dumped.
    pub fn table(&self, name: &str) -> Option<&TableState> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub(crate) fn table_mut(&mut self, name: &str) -> Option<&mut TableState> {
        self.tables.iter_mut().find(|t| t.name == name)
    }
}

impl TableState {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&ChainState> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub(crate) fn chain_mut(&mut self, name: &str) -> Option<&mut ChainState> {
        self.chains.iter_mut().find(|c| c.name == name)
    }

    /// Whether the chain exists.
    pub fn has_chain(&self, name: &str) -> bool {
        self.chain(name).is_some()
    }

    /// Whether `chain` contains `rule` (compared in canonical token form).
    pub fn contains_rule(&self, chain: &str, rule: &Rule) -> bool {
        self.chain(chain).is_some_and(|c| c.rules.contains(rule))
    }

    /// Every `(chain, rule)` whose target (`-j`/`-g`) is `target`.
    pub fn rules_jumping_to<'a>(
        &'a self,
        target: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Rule)> + 'a {
        self.chains.iter().flat_map(move |c| {
            c.rules
                .iter()
                .filter(move |r| r.target() == Some(target))
                .map(move |r| (c.name.as_str(), r))
        })
    }

    /// Every `(chain, rule)` whose comment equals `comment`.
    pub fn rules_with_comment<'a>(
        &'a self,
        comment: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Rule)> + 'a {
        self.chains.iter().flat_map(move |c| {
            c.rules
                .iter()
                .filter(move |r| r.comment() == Some(comment))
                .map(move |r| (c.name.as_str(), r))
        })
    }
}
