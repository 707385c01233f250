//! The verbs, callable in-process with any [`Pod`] and [`Store`].

use cni_types::{Attachment, CniResult};

use crate::backup::{Saved, Store};
use crate::config::{Plan, TuningConf};
use crate::error::{CheckError, TuningError};
use crate::pod::{Attr, LinkState, Pod};

/// ADD: writes the sysctls, saves the original link attributes, then sets MAC, promiscuous
/// mode, MTU, all-multicast mode and queue length (the reference's order), and returns
/// `prevResult` with the new MAC on the container interface. When a step fails, what was
/// done is undone (link attributes, saved file, sysctls) before the error is returned.
pub fn add(
    conf: &TuningConf,
    plan: &Plan,
    att: &Attachment,
    pod: &mut dyn Pod,
    store: &Store,
) -> Result<CniResult, TuningError> {
    let mut result = conf
        .prev_result
        .clone()
        .ok_or(TuningError::MissingPrevResult)?;
    let writes: Vec<(String, String)> = plan
        .sysctls
        .iter()
        .map(|s| (s.path.clone(), s.value.clone()))
        .collect();
    let old_sysctls = match pod.write_sysctls(&writes) {
        Ok(old) => old,
        Err((old, e)) => {
            undo_sysctls(pod, &old);
            return Err(e.into());
        }
    };
    if plan.changes_link()
        && let Err(e) = tune_link(conf, plan, att, pod, store)
    {
        undo_sysctls(pod, &old_sysctls);
        return Err(e);
    }
    if let Some((_, text)) = &plan.mac {
        for iface in &mut result.interfaces {
            if iface.name == att.ifname {
                iface.mac = text.clone();
            }
        }
    }
    Ok(result)
}

fn undo_sysctls(pod: &mut dyn Pod, old: &[(String, String)]) {
    let back: Vec<(String, String)> = old.iter().rev().cloned().collect();
    let _ = pod.write_sysctls(&back);
}

/// The link part of ADD: save, then change; on failure restore and drop the file.
fn tune_link(
    conf: &TuningConf,
    plan: &Plan,
    att: &Attachment,
    pod: &mut dyn Pod,
    store: &Store,
) -> Result<(), TuningError> {
    let link = pod
        .link(&att.ifname)?
        .ok_or_else(|| TuningError::NoLink(att.ifname.clone()))?;
    let saved = originals(plan, &link);
    store.save(&conf.name, att, &saved)?;
    let mut changes = Vec::new();
    if let Some((mac, _)) = plan.mac {
        changes.push(Attr::Mac(mac));
    }
    if plan.promisc {
        changes.push(Attr::Promisc(true));
    }
    if let Some(mtu) = plan.mtu {
        changes.push(Attr::Mtu(mtu));
    }
    if let Some(on) = plan.allmulti {
        changes.push(Attr::Allmulti(on));
    }
    if let Some(q) = plan.txqlen {
        changes.push(Attr::TxQLen(q));
    }
    for (i, attr) in changes.iter().enumerate() {
        if let Err(source) = pod.set(link.index, *attr) {
            for done in changes[..i].iter().rev() {
                let _ = pod.set(link.index, original_of(*done, &link));
            }
            let _ = store.remove(&conf.name, att);
            return Err(TuningError::Netlink {
                what: format!("failed to set {} of {:?}", attr.describe(), att.ifname),
                source,
            });
        }
    }
    Ok(())
}

/// The reference's `createBackup`: the current value of each attribute ADD changes.
fn originals(plan: &Plan, link: &LinkState) -> Saved {
    Saved {
        mac: match (&plan.mac, link.mac) {
            (Some(_), Some(m)) => cni_linux::netlink::mac::format(&m),
            _ => String::new(),
        },
        promisc: plan.promisc.then_some(link.promisc),
        mtu: if plan.mtu.is_some() { link.mtu } else { 0 },
        allmulti: plan.allmulti.map(|_| link.allmulti),
        txqlen: plan.txqlen.map(|_| link.txqlen),
    }
}

fn original_of(attr: Attr, link: &LinkState) -> Attr {
    match attr {
        Attr::Mac(m) => Attr::Mac(link.mac.unwrap_or(m)),
        Attr::Promisc(_) => Attr::Promisc(link.promisc),
        Attr::Mtu(_) => Attr::Mtu(link.mtu),
        Attr::Allmulti(_) => Attr::Allmulti(link.allmulti),
        Attr::TxQLen(_) => Attr::TxQLen(link.txqlen),
    }
}

/// DEL: restores the saved attributes (MTU, MAC, promiscuous mode, all-multicast mode, queue
/// length, the reference's order) and removes the file. `pod` is `None` when the namespace
/// is gone (or `CNI_NETNS` empty): nothing can be restored any more and the file is removed
/// (the reference keeps it forever). When a restore fails the file is kept for another DEL
/// and [`TuningError::Many`] lists the failures (the reference's DEL reports success
/// then; [`TuningPlugin`](crate::TuningPlugin) does too).
pub fn del(
    conf: &TuningConf,
    att: &Attachment,
    pod: Option<&mut dyn Pod>,
    store: &Store,
) -> Result<(), TuningError> {
    let Some(saved) = store.load(att)? else {
        return store.remove(&conf.name, att);
    };
    let (Some(saved), Some(pod)) = (saved, pod) else {
        return store.remove(&conf.name, att);
    };
    let Some(link) = pod.link(&att.ifname)? else {
        return store.remove(&conf.name, att);
    };
    let mut restores = Vec::new();
    if saved.mtu != 0 {
        restores.push(Attr::Mtu(saved.mtu));
    }
    if !saved.mac.is_empty() {
        match crate::config::parse_mac(&saved.mac) {
            Some(m) => restores.push(Attr::Mac(m)),
            None => {
                return Err(TuningError::Many(vec![
                    crate::error::ConfigError::Mac(saved.mac.clone()).into(),
                ]));
            }
        }
    }
    if let Some(on) = saved.promisc {
        restores.push(Attr::Promisc(on));
    }
    if let Some(on) = saved.allmulti {
        restores.push(Attr::Allmulti(on));
    }
    if let Some(q) = saved.txqlen {
        restores.push(Attr::TxQLen(q));
    }
    let mut errors = Vec::new();
    for attr in restores {
        if let Err(source) = pod.set(link.index, attr) {
            errors.push(TuningError::Netlink {
                what: format!("failed to restore {}", attr.describe()),
                source,
            });
        }
    }
    if !errors.is_empty() {
        return Err(TuningError::Many(errors));
    }
    store.remove(&conf.name, att)
}

/// CHECK: the configured sysctls and attributes are in effect (the reference's comparisons
/// and messages; promiscuous mode must be off unless configured on). MAC addresses are
/// compared as addresses, not as text, so `C2-11-...` matches `c2:11:...`.
pub fn check(conf: &TuningConf, att: &Attachment, pod: &mut dyn Pod) -> Result<(), TuningError> {
    if conf.prev_result.is_none() {
        return Err(TuningError::MissingPrevResult);
    }
    let mut paths = Vec::new();
    for key in conf.sysctl.keys() {
        paths.push(crate::config::sysctl_path(key, &att.ifname)?);
    }
    let values = pod.read_sysctls(&paths);
    for ((want, path), got) in conf.sysctl.values().zip(&paths).zip(values) {
        let got = got?;
        if *want != got {
            return Err(CheckError::Sysctl {
                path: path.clone(),
                want: want.clone(),
                got,
            }
            .into());
        }
    }
    let ifname = att.ifname.clone();
    let link = pod
        .link(&ifname)?
        .ok_or_else(|| CheckError::NoLink(ifname.clone()))?;
    if let Some(want) = &conf.mac {
        let got = link
            .mac
            .map(|m| cni_linux::netlink::mac::format(&m))
            .unwrap_or_default();
        if crate::config::parse_mac(want) != link.mac {
            return Err(CheckError::Mac {
                ifname,
                want: want.clone(),
                got,
            }
            .into());
        }
    }
    if conf.promisc != link.promisc {
        return Err(CheckError::Promisc {
            ifname,
            want: conf.promisc,
            got: u8::from(link.promisc),
        }
        .into());
    }
    if conf.mtu != 0 && conf.mtu != i64::from(link.mtu) {
        return Err(CheckError::Mtu {
            ifname,
            want: u32::try_from(conf.mtu).unwrap_or(0),
            got: link.mtu,
        }
        .into());
    }
    if let Some(want) = conf.allmulti
        && want != link.allmulti
    {
        return Err(CheckError::Allmulti {
            ifname,
            want,
            got: link.allmulti,
        }
        .into());
    }
    if let Some(want) = conf.txqlen
        && want != i64::from(link.txqlen)
    {
        return Err(CheckError::TxQLen {
            ifname,
            want: u32::try_from(want).unwrap_or(0),
            got: link.txqlen,
        }
        .into());
    }
    Ok(())
}

/// GC (the reference has none): drops the saved originals this network wrote for
/// attachments not in `valid` (their namespaces are gone; nothing can be restored). Files
/// without this network's marker (other networks', a Go tuning's) are left alone.
pub fn gc(conf: &TuningConf, valid: &[Attachment], store: &Store) -> Result<(), TuningError> {
    let keep: Vec<String> = valid.iter().map(Store::stem).collect();
    let mut errors = Vec::new();
    for stem in store.marked(&conf.name)? {
        if !keep.contains(&stem)
            && let Err(e) = store.forget(&conf.name, &stem)
        {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(TuningError::Many(errors))
    }
}

#[cfg(test)]
mod tests;
