//! Change capture and undo (`scan`, `fetch`, `restore`) under both resolvers: hashes, hidden and
//! excluded entries, the hash cache, conflicts, whole-tree restores, and symlinks never followed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use airlock_agent::{
    Content, EntryKind, ErrorKind, Op, PathState, Reply, RestoreStep, RootSpec, ScanEntry,
    FETCH_MAX_BYTES,
};
use common::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Runs `test` once per resolver, on a fresh fixture whose root spec `spec` may adjust.
fn each_resolver(spec: impl Fn(&Fixture, &mut RootSpec), test: impl Fn(&Fixture, &mut Agent)) {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let mut root = f.spec();
        spec(&f, &mut root);
        let mut agent = Agent::start(vec![root], resolver);
        test(&f, &mut agent);
    }
}

/// [`each_resolver`] with the fixture's root spec as it is.
fn on_both(test: impl Fn(&Fixture, &mut Agent)) {
    each_resolver(|_, _| {}, test);
}

fn sha(bytes: impl AsRef<[u8]>) -> String {
    Sha256::digest(bytes.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scan_op(f: &Fixture, exclude: &[&str]) -> Op {
    Op::Scan {
        root: f.root(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        paths: vec![],
    }
}

fn scan(a: &mut Agent, f: &Fixture, exclude: &[&str]) -> Vec<ScanEntry> {
    match a.ok(scan_op(f, exclude)) {
        Reply::Scanned { root, entries } => {
            assert_eq!(root, f.root());
            entries
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn by_path(entries: &[ScanEntry]) -> HashMap<String, ScanEntry> {
    entries
        .iter()
        .map(|e| (e.path.clone(), e.clone()))
        .collect()
}

fn paths(entries: &[ScanEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

fn fetch(path: &str, hash: &str) -> Op {
    Op::Fetch {
        path: path.into(),
        hash: hash.into(),
    }
}

fn restore(steps: Vec<RestoreStep>, force: bool, dry_run: bool) -> Op {
    Op::Restore {
        steps,
        force,
        dry_run,
    }
}

/// Restores and returns (conflict paths, applied).
fn restored(
    a: &mut Agent,
    steps: Vec<RestoreStep>,
    force: bool,
    dry_run: bool,
) -> (Vec<String>, u32) {
    match a.ok(restore(steps, force, dry_run)) {
        Reply::Restored { conflicts, applied } => {
            (conflicts.into_iter().map(|c| c.path).collect(), applied)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn step(path: &str, expect: PathState, restore: PathState) -> RestoreStep {
    RestoreStep {
        path: path.into(),
        expect,
        restore,
        content: None,
    }
}

/// A step that puts `data` back as a file with `mode`.
fn file_step(path: &str, expect: PathState, data: &[u8], mode: u32) -> RestoreStep {
    RestoreStep {
        content: Some(Content::from_bytes(data.to_vec())),
        ..step(path, expect, file(data, mode))
    }
}

fn file(data: &[u8], mode: u32) -> PathState {
    PathState::File {
        hash: sha(data),
        mode,
    }
}

/// The state a scan entry describes.
fn state_of(e: &ScanEntry) -> PathState {
    match e.kind {
        EntryKind::File => PathState::File {
            hash: e.hash.clone().unwrap(),
            mode: e.mode,
        },
        EntryKind::Dir => PathState::Dir { mode: e.mode },
        EntryKind::Symlink => PathState::Symlink {
            target: e.target.clone().unwrap(),
        },
        EntryKind::Other => panic!("no state for {e:?}"),
    }
}

fn chmod(path: impl AsRef<std::path::Path>, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: impl AsRef<std::path::Path>) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn scan_lists_files_dirs_and_symlinks_with_hashes() {
    on_both(|f, a| {
        let bin = [0u8, 159, 146, 150, 255];
        std::fs::create_dir_all(f.ws.join("src/sub")).unwrap();
        std::fs::write(f.ws.join("src/sub/b.bin"), bin).unwrap();
        chmod(f.ws.join("src/sub/b.bin"), 0o640);
        f.write("empty", "");
        f.write("d/z", "zz");
        chmod(f.ws.join("d"), 0o750);
        f.symlink("src/a.txt", "link");
        f.symlink(f.outside.join("secret"), "out");
        let fifo = std::process::Command::new("mkfifo")
            .arg(f.ws.join("pipe"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let entries = scan(a, f, &[]);
        // Parents first, each directory's entries by name, the root itself not listed.
        assert_eq!(
            paths(&entries),
            [
                "d",
                "d/z",
                "empty",
                "link",
                "out",
                "pipe",
                "src",
                "src/a.txt",
                "src/sub",
                "src/sub/b.bin"
            ]
        );
        let e = by_path(&entries);
        for (path, data) in [
            ("src/a.txt", &b"hello\nworld\n"[..]),
            ("src/sub/b.bin", &bin[..]),
            ("empty", b""),
            ("d/z", b"zz"),
        ] {
            let entry = &e[path];
            assert_eq!(entry.kind, EntryKind::File, "{path}");
            assert_eq!(entry.hash.as_deref(), Some(sha(data).as_str()), "{path}");
            assert_eq!(entry.size, data.len() as u64, "{path}");
            let meta = std::fs::symlink_metadata(f.ws.join(path)).unwrap();
            assert_eq!(entry.mode, meta.mode() & 0o7777, "{path}");
            assert_eq!(entry.ino, meta.ino(), "{path}");
            assert_eq!(
                entry.mtime_ns,
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
                "{path}"
            );
            assert_eq!(
                entry.ctime_ns,
                meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                "{path}"
            );
            assert!(!entry.hidden && !entry.excluded && entry.target.is_none());
        }
        assert_eq!(e["src/sub/b.bin"].mode, 0o640);
        assert_eq!(e["d"].kind, EntryKind::Dir);
        assert_eq!(e["d"].mode, 0o750);
        assert_eq!(e["d"].hash, None);
        assert_eq!(e["link"].kind, EntryKind::Symlink);
        assert_eq!(e["link"].target.as_deref(), Some("src/a.txt"));
        assert_eq!(e["link"].hash, None);
        let out = &e["out"];
        assert_eq!(out.kind, EntryKind::Symlink);
        assert_eq!(
            out.target.as_deref(),
            Some(f.outside.join("secret").to_str().unwrap())
        );
        assert_eq!(out.hash, None);
        // A FIFO is listed and never opened (opening it would block).
        assert_eq!(e["pipe"].kind, EntryKind::Other);
        assert_eq!(e["pipe"].hash, None);
        f.assert_outside_untouched();
    });
}

#[test]
fn scan_lists_hidden_names_unread_and_does_not_enter_excluded_directories() {
    each_resolver(
        |_, spec| spec.hide = vec![".env".into(), "secrets/".into()],
        |f, a| {
            for path in [
                ".env",
                "src/.env",
                "secrets/key.pem",
                "node_modules/pkg/index.js",
                "src/node_modules/y.js",
                "lib/node_modules",
                ".git/objects/ab/cdef",
                "sub/.git/objects/x",
            ] {
                f.write(path, "x");
            }
            f.write(".git/HEAD", "ref: refs/heads/main\n");
            let entries = scan(a, f, &["node_modules", ".git/objects"]);
            let e = by_path(&entries);
            for hidden in [".env", "src/.env", "secrets"] {
                assert!(e[hidden].hidden, "{hidden}");
                assert_eq!(e[hidden].hash, None, "{hidden}");
            }
            assert_eq!(e["secrets"].kind, EntryKind::Dir);
            for excluded in ["node_modules", "src/node_modules", ".git/objects"] {
                assert!(e[excluded].excluded, "{excluded}");
                assert_eq!(e[excluded].kind, EntryKind::Dir);
            }
            for below in [
                "secrets/key.pem",
                "node_modules/pkg",
                "node_modules/pkg/index.js",
                "src/node_modules/y.js",
                ".git/objects/ab",
            ] {
                assert!(!e.contains_key(below), "{below} listed");
            }
            assert!(!e[".git"].excluded);
            assert_eq!(
                e[".git/HEAD"].hash.as_deref(),
                Some(sha("ref: refs/heads/main\n").as_str())
            );
            // Only directories are excluded; a pattern with a slash is anchored at the root.
            assert!(!e["lib/node_modules"].excluded);
            assert!(e["lib/node_modules"].hash.is_some());
            assert!(e["sub/.git/objects/x"].hash.is_some());
            let m = a.err_kind(scan_op(f, &["a["]), ErrorKind::Invalid);
            assert!(m.contains("a["), "{m}");
        },
    );
}

#[test]
fn scan_is_refused_for_anything_but_a_read_write_root() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let ro = f.read_only_root();
        let on = |root: String| Op::Scan {
            root,
            exclude: vec![],
            paths: vec![],
        };
        let mut a = Agent::start(vec![f.spec(), ro.clone()], resolver);
        let m = a.err_kind(on(ro.path), ErrorKind::ReadOnly);
        assert!(m.contains("read-only"), "{m}");
        for not_root in [
            "src".to_string(),
            format!("{}/src", f.root()),
            "/elsewhere".into(),
            f.outside.to_str().unwrap().into(),
        ] {
            let m = a.err_kind(on(not_root.clone()), ErrorKind::Invalid);
            assert!(m.contains("not a workspace root"), "{m}");
        }
        // A trailing slash names the root all the same.
        let Reply::Scanned { root, .. } = a.ok(on(format!("{}/", f.root()))) else {
            panic!()
        };
        assert_eq!(root, f.root());
    }
}

#[test]
fn rescan_reads_a_changed_file_even_when_its_mtime_is_set_back() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, RESOLVERS[0]);
    f.write("a.txt", "aaaa");
    f.write("b.txt", "bbbb");
    // Old enough for the agent to trust their stat values next time (see `RACY_NS`).
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let first = by_path(&scan(&mut a, &f, &[]));
    assert_eq!(first["a.txt"].hash.as_deref(), Some(sha("aaaa").as_str()));
    let path = f.ws.join("a.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "AAAA").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let second = by_path(&scan(&mut a, &f, &[]));
    let (before, after) = (&first["a.txt"], &second["a.txt"]);
    assert_eq!(after.mtime_ns, before.mtime_ns, "mtime was set back");
    assert_eq!((after.size, after.ino), (before.size, before.ino));
    assert_ne!(after.ctime_ns, before.ctime_ns);
    assert_eq!(after.hash.as_deref(), Some(sha("AAAA").as_str()));
    assert_eq!(second["b.txt"], first["b.txt"]);
    // A file replaced by another (a new inode) and one removed and made again.
    std::fs::remove_file(f.ws.join("b.txt")).unwrap();
    f.write("b.txt", "BBBB");
    let third = by_path(&scan(&mut a, &f, &[]));
    assert_eq!(third["b.txt"].hash.as_deref(), Some(sha("BBBB").as_str()));
    assert_eq!(third["a.txt"].hash.as_deref(), Some(sha("AAAA").as_str()));
}

#[test]
fn fetch_returns_scanned_content_and_refuses_anything_else() {
    each_resolver(
        |_, spec| spec.hide = vec![".env".into()],
        |f, a| {
            f.write(".env", "K=v");
            std::fs::write(f.ws.join("bin"), [0u8, 255, 1]).unwrap();
            let e = by_path(&scan(a, f, &[]));
            let hash = e["src/a.txt"].hash.clone().unwrap();
            let Reply::Read {
                path,
                content,
                size,
                truncated,
            } = a.ok(fetch("src/a.txt", &hash))
            else {
                panic!()
            };
            assert_eq!(path, format!("{}/src/a.txt", f.root()));
            assert_eq!(content, Content::Text("hello\nworld\n".into()));
            assert_eq!((size, truncated), (12, false));
            let Reply::Read { content, .. } = a.ok(fetch(
                &format!("{}/bin", f.root()),
                e["bin"].hash.as_ref().unwrap(),
            )) else {
                panic!()
            };
            assert_eq!(content.to_bytes().unwrap(), vec![0u8, 255, 1]);
            f.write("src/a.txt", "hello\nWORLD\n");
            let m = a.err_kind(fetch("src/a.txt", &hash), ErrorKind::Invalid);
            assert!(m.contains("changed since it was scanned"), "{m}");
            let m = a.err_kind(fetch("src", &hash), ErrorKind::Invalid);
            assert!(m.contains("not a regular file"), "{m}");
            a.err_kind(fetch("missing", &hash), ErrorKind::NotFound);
            a.err_kind(fetch(".env", &sha("K=v")), ErrorKind::Hidden);
            a.err_kind(fetch("../outside/secret", &sha(SECRET)), ErrorKind::Escape);
            let big = std::fs::File::create(f.ws.join("big")).unwrap();
            big.set_len(FETCH_MAX_BYTES + 1).unwrap();
            let m = a.err_kind(fetch("big", &hash), ErrorKind::Invalid);
            assert!(m.contains("too large to keep"), "{m}");
        },
    );
}

#[test]
fn symlinks_to_an_outside_secret_are_never_read_fetched_or_written_through() {
    on_both(|f, a| {
        f.symlink(f.outside.join("secret"), "id_rsa");
        f.symlink(&f.outside, "dirlink");
        f.symlink("id_rsa", "chain");
        let e = by_path(&scan(a, f, &[]));
        assert_eq!(e["id_rsa"].kind, EntryKind::Symlink);
        assert_eq!(e["id_rsa"].hash, None);
        assert!(!e.contains_key("dirlink/secret"));
        for path in ["id_rsa", "chain", "dirlink/secret"] {
            let err = a.err(fetch(path, &sha(SECRET)));
            assert!(!err.message.contains(SECRET), "{path}: {}", err.message);
        }
        // Behind a symlinked directory nothing is there (no link is followed to look) …
        let outside_file = file(SECRET.as_bytes(), 0o644);
        let behind = file_step("dirlink/secret", outside_file.clone(), b"pwned", 0o644);
        let (conflicts, _) = restored(a, vec![behind.clone()], false, true);
        assert_eq!(conflicts, ["dirlink/secret"]);
        let absent = file_step("dirlink/secret", PathState::Absent, b"pwned", 0o644);
        assert_eq!(restored(a, vec![absent.clone()], false, true), (vec![], 0));
        // … and nothing is written through it, forced or not.
        a.err(restore(vec![absent], false, false));
        a.err(restore(vec![behind], true, false));
        f.assert_outside_untouched();
        // Restoring a file over the link replaces the link itself.
        let expect = PathState::Symlink {
            target: f.outside.join("secret").to_str().unwrap().into(),
        };
        let over = file_step("id_rsa", expect, b"my key\n", 0o600);
        assert_eq!(restored(a, vec![over], false, false), (vec![], 1));
        let meta = std::fs::symlink_metadata(f.ws.join("id_rsa")).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(f.ws.join("id_rsa")).unwrap(), b"my key\n");
        f.assert_outside_untouched();
    });
}

#[test]
fn restore_reports_conflicts_refuses_them_without_force_and_applies_with_it() {
    on_both(|f, a| {
        // Captured: v1. The workload wrote v2 (what undo expects), then someone wrote v3.
        f.write("a.txt", "v3");
        f.write("b.txt", "unchanged since the capture");
        let undo = || {
            vec![
                file_step("a.txt", file(b"v2", 0o644), b"v1", 0o644),
                file_step(
                    "c.txt",
                    PathState::Absent,
                    b"deleted by the workload",
                    0o644,
                ),
            ]
        };
        let Reply::Restored { conflicts, applied } = a.ok(restore(undo(), false, true)) else {
            panic!()
        };
        assert_eq!(applied, 0);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].path, "a.txt");
        assert_eq!(conflicts[0].expected, file(b"v2", 0o644));
        assert_eq!(conflicts[0].found, file(b"v3", 0o644));
        // Without force nothing changes, not even the step without a conflict.
        assert_eq!(restored(a, undo(), false, false), (vec!["a.txt".into()], 0));
        assert_eq!(std::fs::read_to_string(f.ws.join("a.txt")).unwrap(), "v3");
        assert!(!f.ws.join("c.txt").exists());
        // Forced: applied, the conflict still reported.
        assert_eq!(restored(a, undo(), true, false), (vec!["a.txt".into()], 2));
        assert_eq!(std::fs::read_to_string(f.ws.join("a.txt")).unwrap(), "v1");
        assert_eq!(
            std::fs::read_to_string(f.ws.join("c.txt")).unwrap(),
            "deleted by the workload"
        );
        // Already in the restore state: counted, nothing needed.
        assert_eq!(restored(a, undo(), true, false).1, 2);
        // A mode-only change needs no content.
        chmod(f.ws.join("b.txt"), 0o600);
        let data = b"unchanged since the capture";
        let mode_only = step("b.txt", file(data, 0o600), file(data, 0o644));
        assert_eq!(restored(a, vec![mode_only], false, false), (vec![], 1));
        assert_eq!(mode_of(f.ws.join("b.txt")), 0o644);
        // Content that does not match its hash, or missing content: refused up front.
        let mut lying = file_step("a.txt", file(b"v1", 0o644), b"v0", 0o644);
        lying.restore = file(b"other", 0o644);
        let good = file_step("d.txt", PathState::Absent, b"d", 0o644);
        let m = a.err_kind(
            restore(vec![good.clone(), lying], false, false),
            ErrorKind::Invalid,
        );
        assert!(m.contains("hash"), "{m}");
        assert!(!f.ws.join("d.txt").exists());
        let mut missing = good;
        missing.content = None;
        let m = a.err_kind(restore(vec![missing], false, false), ErrorKind::Invalid);
        assert!(m.contains("no content"), "{m}");
    });
}

#[test]
fn restore_rebuilds_a_deleted_tree_byte_identical_with_modes() {
    on_both(|f, a| {
        f.write("proj/bin/run.sh", "#!/bin/sh\necho hi\n");
        chmod(f.ws.join("proj/bin/run.sh"), 0o755);
        chmod(f.ws.join("proj/bin"), 0o750);
        std::fs::write(f.ws.join("proj/data.bin"), [0u8, 1, 2, 255, 254]).unwrap();
        chmod(f.ws.join("proj/data.bin"), 0o600);
        f.write("proj/empty", "");
        f.write("proj/ro/keep.txt", "kept");
        chmod(f.ws.join("proj/ro/keep.txt"), 0o444);
        chmod(f.ws.join("proj/ro"), 0o555);
        f.write("proj/deep/a/b/c.txt", "deep");
        chmod(f.ws.join("proj/deep/a"), 0o2775);
        f.symlink("bin/run.sh", "proj/link");
        f.symlink(f.outside.join("secret"), "proj/out");
        let before: Vec<ScanEntry> = scan(a, f, &[])
            .into_iter()
            .filter(|e| e.path == "proj" || e.path.starts_with("proj/"))
            .collect();
        assert_eq!(before.len(), 13, "{:?}", paths(&before));
        let mut steps = Vec::new();
        for e in &before {
            let mut s = step(&e.path, PathState::Absent, state_of(e));
            if e.kind == EntryKind::File {
                let Reply::Read { content, .. } = a.ok(fetch(&e.path, e.hash.as_ref().unwrap()))
                else {
                    panic!()
                };
                s.content = Some(content);
            }
            steps.push(s);
        }
        chmod(f.ws.join("proj/ro"), 0o755);
        std::fs::remove_dir_all(f.ws.join("proj")).unwrap();
        let n = steps.len() as u32;
        assert_eq!(restored(a, steps, false, false), (vec![], n));
        let after: Vec<ScanEntry> = scan(a, f, &[])
            .into_iter()
            .filter(|e| e.path == "proj" || e.path.starts_with("proj/"))
            .collect();
        let key = |e: &ScanEntry| {
            (
                e.path.clone(),
                e.kind,
                e.mode,
                e.size,
                e.hash.clone(),
                e.target.clone(),
            )
        };
        assert_eq!(
            after.iter().map(key).collect::<Vec<_>>(),
            before.iter().map(key).collect::<Vec<_>>()
        );
        assert_eq!(
            std::fs::read(f.ws.join("proj/data.bin")).unwrap(),
            [0u8, 1, 2, 255, 254]
        );
        assert_eq!(mode_of(f.ws.join("proj/ro")), 0o555);
        let leftovers: Vec<_> = after
            .iter()
            .filter(|e| e.path.contains("airlock"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        f.assert_outside_untouched();
    });
}

#[test]
fn restore_absent_removes_what_the_workload_made() {
    on_both(|f, a| {
        f.write("new.txt", "made");
        f.write("newdir/x.txt", "x");
        std::fs::create_dir(f.ws.join("newdir/sub")).unwrap();
        f.symlink("new.txt", "link");
        let e = by_path(&scan(a, f, &[]));
        let gone = |p: &str| step(p, state_of(&e[p]), PathState::Absent);
        // Children before their directory, as the engine orders them.
        let steps = ["newdir/sub", "newdir/x.txt", "newdir", "new.txt", "link"]
            .map(gone)
            .to_vec();
        assert_eq!(restored(a, steps.clone(), false, false), (vec![], 5));
        for p in ["new.txt", "newdir", "link"] {
            assert!(std::fs::symlink_metadata(f.ws.join(p)).is_err(), "{p}");
        }
        // Run again, every path is a conflict (gone already); forced, nothing is left to do.
        let all: Vec<String> = steps.iter().map(|s| s.path.clone()).collect();
        assert_eq!(restored(a, steps.clone(), false, false), (all.clone(), 0));
        assert_eq!(restored(a, steps, true, false), (all, 5));
        // A directory still holding entries the capture does not know: only with force.
        f.write("extra/unknown.txt", "?");
        let extra = step("extra", PathState::Dir { mode: 0o755 }, PathState::Absent);
        let m = a.err_kind(
            restore(vec![extra.clone()], false, false),
            ErrorKind::Invalid,
        );
        assert!(m.contains("force"), "{m}");
        assert!(f.ws.join("extra/unknown.txt").exists());
        assert_eq!(restored(a, vec![extra], true, false), (vec![], 1));
        assert!(!f.ws.join("extra").exists());
        // The root itself is not a step.
        let root = step(&f.root(), PathState::Absent, PathState::Absent);
        a.err_kind(restore(vec![root], true, false), ErrorKind::Invalid);
    });
}

#[test]
fn restore_is_refused_in_read_only_roots_and_on_hidden_or_protected_paths() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let ro = f.read_only_root();
        let data = std::path::PathBuf::from(&ro.path);
        let mut spec = f.spec();
        spec.protect = vec![".git".into()];
        spec.hide = vec![".env".into()];
        let mut a = Agent::start(vec![spec, ro], resolver);
        let ok = file_step("fine.txt", PathState::Absent, b"fine", 0o644);
        let in_ro = format!("{}/x.txt", data.display());
        for (bad, kind) in [
            (
                file_step(&in_ro, PathState::Absent, b"x", 0o644),
                ErrorKind::ReadOnly,
            ),
            (
                file_step(".git/config", PathState::Absent, b"x", 0o644),
                ErrorKind::ReadOnly,
            ),
            (
                step(".git", PathState::Absent, PathState::Dir { mode: 0o755 }),
                ErrorKind::ReadOnly,
            ),
            (
                file_step(".env", PathState::Absent, b"x", 0o644),
                ErrorKind::Hidden,
            ),
        ] {
            // Refused as a whole, before the good step is applied; even as a dry run.
            a.err_kind(restore(vec![ok.clone(), bad.clone()], true, false), kind);
            a.err_kind(restore(vec![bad], false, true), kind);
        }
        assert!(!f.ws.join("fine.txt").exists());
        assert!(!f.ws.join(".git").exists());
        assert!(!f.ws.join(".env").exists());
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    }
}

#[test]
fn restore_turns_a_symlink_back_into_the_directory_it_replaced() {
    on_both(|f, a| {
        let before = by_path(&scan(a, f, &[]));
        std::fs::remove_dir_all(f.ws.join("src")).unwrap();
        f.symlink(&f.outside, "src");
        let link = PathState::Symlink {
            target: f.outside.to_str().unwrap().into(),
        };
        let steps = vec![
            step("src", link, state_of(&before["src"])),
            file_step("src/a.txt", PathState::Absent, b"hello\nworld\n", 0o644),
        ];
        // Below the link nothing counts as there: no conflict.
        assert_eq!(restored(a, steps.clone(), false, true), (vec![], 0));
        assert_eq!(restored(a, steps, false, false), (vec![], 2));
        assert!(std::fs::symlink_metadata(f.ws.join("src"))
            .unwrap()
            .is_dir());
        assert_eq!(a.read_text("src/a.txt"), "hello\nworld\n");
        f.assert_outside_untouched();
        // And a symlink is put back as a symlink, over a file.
        f.write("l", "a file now");
        let back = step(
            "l",
            file(b"a file now", 0o644),
            PathState::Symlink {
                target: "src/a.txt".into(),
            },
        );
        assert_eq!(restored(a, vec![back], false, false), (vec![], 1));
        assert_eq!(
            std::fs::read_link(f.ws.join("l")).unwrap(),
            std::path::Path::new("src/a.txt")
        );
    });
}

#[test]
fn swapping_a_file_for_a_symlink_never_reaches_the_outside_secret() {
    const ROUNDS: usize = 150;
    const MIN_SWAPS: usize = 2000;
    on_both(|f, a| {
        let ws = f.ws.clone();
        let secret = f.outside.join("secret");
        let done = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let swapper = {
            let (done, swaps) = (done.clone(), swaps.clone());
            std::thread::spawn(move || {
                let (x, link, plain) = (ws.join("x"), ws.join(".swap-l"), ws.join(".swap-f"));
                while swaps.load(Ordering::Relaxed) < MIN_SWAPS || !done.load(Ordering::Relaxed) {
                    std::os::unix::fs::symlink(&secret, &link).unwrap();
                    std::fs::rename(&link, &x).unwrap();
                    std::fs::write(&plain, "plain").unwrap();
                    std::fs::rename(&plain, &x).unwrap();
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let ours = b"restored content";
        let mut fetched = 0;
        for round in 0..ROUNDS {
            let put = file_step("x", PathState::Absent, ours, 0o644);
            let _ = a.call(restore(vec![put], true, false));
            match a.call(fetch("x", &sha(ours))) {
                Ok(Reply::Read { content, .. }) => {
                    assert_eq!(content.to_bytes().unwrap(), ours);
                    fetched += 1;
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => assert!(!e.message.contains(SECRET), "{}", e.message),
            }
            if round % 10 == 0 {
                for e in scan(a, f, &[]) {
                    assert_ne!(e.hash, Some(sha(SECRET)), "{e:?}");
                }
            }
        }
        done.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(swaps.load(Ordering::Relaxed) >= MIN_SWAPS);
        eprintln!("{fetched} of {ROUNDS} fetches got the restored content mid-swap");
        f.assert_outside_untouched();
        assert_eq!(f.leftovers(), Vec::<String>::new());
    });
}

#[test]
fn a_scan_of_some_paths_lists_their_way_and_what_is_below_them_only() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        f.write("a/b/c.txt", "c");
        f.write("a/b/d/e.txt", "e");
        f.write("a/other.txt", "not on the way");
        f.write("z.txt", "z");
        std::os::unix::fs::symlink(&f.outside, f.ws.join("link")).unwrap();
        let mut a = Agent::start(vec![f.spec()], resolver);
        let paths: Vec<String> = ["a/b", "a/b/c.txt", "missing/x", "link/secret", "z.txt"]
            .map(String::from)
            .to_vec();
        let entries = match a.ok(Op::Scan {
            root: f.root(),
            exclude: vec![],
            paths,
        }) {
            Reply::Scanned { entries, .. } => entries,
            other => panic!("{other:?}"),
        };
        let mut listed: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        listed.sort();
        // Each path once; the way to a path without its other entries; a symlink on the way is
        // described, never entered.
        assert_eq!(
            listed,
            [
                "a",
                "a/b",
                "a/b/c.txt",
                "a/b/d",
                "a/b/d/e.txt",
                "link",
                "z.txt"
            ],
            "{resolver}"
        );
        let c = entries.iter().find(|e| e.path == "a/b/c.txt").unwrap();
        assert_eq!(c.hash.as_deref(), Some(sha(b"c").as_str()));
        let link = entries.iter().find(|e| e.path == "link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
    }
}
