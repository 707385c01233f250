//! Named namespaces and running code inside them, against the real kernel.

mod common;

use std::path::Path;

use cni_linux::netns::{self, NetNs, NetnsError};
use common::{TestNs, require_root};

#[test]
fn create_and_delete_named_namespace() {
    if !require_root() {
        return;
    }
    let name = format!("cnil-create-{}", std::process::id());
    let ns = NetNs::create_named(&name).unwrap();
    let path = Path::new("/run/netns").join(&name);
    assert_eq!(ns.path(), path);
    assert!(path.exists());
    assert!(netns::is_netns(&path).unwrap());

    let here = NetNs::current().unwrap();
    assert!(!ns.is_same(&here), "a new namespace, not ours");
    let reopened = NetNs::open(&path).unwrap();
    assert!(reopened.is_same(&ns));

    // The name is taken now.
    let again = NetNs::create_named(&name).unwrap_err();
    assert!(
        matches!(again, NetnsError::AlreadyExists { .. }),
        "{again:?}"
    );

    NetNs::delete_named(&name).unwrap();
    assert!(!path.exists(), "mount point removed");
    // Deleting what is gone is fine, and opening it says "not found".
    NetNs::delete_named(&name).unwrap();
    assert!(NetNs::open(&path).unwrap_err().is_not_found());
    // Our open handle keeps the namespace itself alive and usable.
    let inode = ns
        .run(|| NetNs::current().map(|c| c.inode()))
        .unwrap()
        .unwrap();
    assert_eq!(inode, ns.inode());
}

#[test]
fn create_at_custom_path() {
    if !require_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("cnil-nsdir-{}", std::process::id()));
    let path = dir.join("ns1");
    let ns = NetNs::create_at(&path).unwrap();
    assert!(netns::is_netns(&path).unwrap());
    assert!(!ns.is_same(&NetNs::current().unwrap()));
    NetNs::delete_at(&path).unwrap();
    assert!(!path.exists());
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn parallel_create_and_delete() {
    if !require_root() {
        return;
    }
    let inodes: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let t = TestNs::new("par");
                    let ino = t.ns.inode();
                    let path = t.path();
                    drop(t);
                    assert!(!path.exists(), "{path:?} removed on drop");
                    ino
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = inodes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), inodes.len(), "every namespace is distinct");
}

#[test]
fn run_executes_inside_and_leaves_caller_alone() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("run");
    let before = NetNs::current().unwrap();
    let caller_thread = std::thread::current().id();

    let (inode, thread) =
        t.ns.run(|| {
            let inside = NetNs::current().unwrap();
            (inside.inode(), std::thread::current().id())
        })
        .unwrap();
    assert_eq!(inode, t.ns.inode(), "closure ran in the namespace");
    assert_eq!(thread, caller_thread, "on the calling thread");

    let after = NetNs::current().unwrap();
    assert!(after.is_same(&before), "caller's namespace unchanged");
    assert!(!after.is_same(&t.ns));

    // The closure may borrow from the caller.
    let mut seen = Vec::new();
    t.ns.run(|| seen.push(1)).unwrap();
    assert_eq!(seen, [1]);

    // Nested: inside another namespace, then the same one again (no setns), each level back
    // where it was.
    let other = TestNs::new("run-nested");
    let levels =
        t.ns.run(|| {
            let outer = NetNs::current().unwrap().inode();
            let (inner, same) = other
                .ns
                .run(|| {
                    let inner = NetNs::current().unwrap().inode();
                    let same = other.ns.run(|| NetNs::current().unwrap().inode()).unwrap();
                    (inner, same)
                })
                .unwrap();
            (outer, inner, same, NetNs::current().unwrap().inode())
        })
        .unwrap();
    let (o, i) = (t.ns.inode(), other.ns.inode());
    assert_eq!(levels, (o, i, i, o));
    assert!(NetNs::current().unwrap().is_same(&before));
}

#[test]
fn run_propagates_panics() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("panic");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.ns.run(|| panic!("boom inside")).unwrap();
    }));
    let payload = result.unwrap_err();
    let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert_eq!(msg, "boom inside");
    assert!(!NetNs::current().unwrap().is_same(&t.ns));
}

#[test]
fn is_netns_classifies_paths() {
    assert!(netns::is_netns("/proc/self/ns/net").unwrap());
    assert!(!netns::is_netns("/etc/passwd").unwrap());
    assert!(
        netns::is_netns("/no/such/netns")
            .unwrap_err()
            .is_not_found()
    );
}
