//! Escape attempts against every path-taking operation, under both resolvers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use airlock_agent::{Content, EntryKind, ErrorKind, Op, Reply, RunSpec, SpawnSpec, TextEdit};
use common::*;

/// Paths that leave the workspace, each through a different route.
fn escapes(f: &Fixture) -> Vec<String> {
    vec![
        "../outside/secret".into(),
        "src/../../outside/secret".into(),
        "/etc/passwd".into(),
        f.outside.join("secret").to_str().unwrap().into(),
        format!("{}/../outside/secret", f.root()),
        "link_out/secret".into(),
        "link_rel/secret".into(),
        "src/deep_rel/secret".into(),
    ]
}

/// Directories outside the workspace, used as parents or cwd.
fn escape_dirs() -> Vec<String> {
    vec![
        "..".into(),
        "../outside".into(),
        "/etc".into(),
        "/".into(),
        "link_out".into(),
        "link_rel".into(),
        "src/deep_rel".into(),
    ]
}

fn for_both(test: impl Fn(&Fixture, &mut Agent)) {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        f.escape_links();
        let mut agent = Agent::one(&f, resolver);
        test(&f, &mut agent);
        f.assert_outside_untouched();
    }
}

#[test]
fn reads_cannot_escape() {
    for_both(|f, a| {
        for p in escapes(f) {
            let msg = a.err_kind(read(&p), ErrorKind::Escape);
            assert!(
                msg.contains(&f.root()),
                "message should name the root: {msg}"
            );
            assert!(msg.contains(&p), "message should name the path: {msg}");
        }
        // The file symlink to outside, read directly.
        a.err_kind(read("file_link"), ErrorKind::Escape);
        a.err_kind(
            Op::Read {
                path: "link_out/secret".into(),
                offset: Some(2),
                limit: Some(4),
            },
            ErrorKind::Escape,
        );
    });
}

#[test]
fn writes_cannot_escape() {
    for_both(|f, a| {
        for p in escapes(f) {
            a.err_kind(write(&p, "pwned"), ErrorKind::Escape);
            a.err_kind(
                Op::Write {
                    path: p.clone(),
                    content: text("pwned"),
                    create_dirs: true,
                },
                ErrorKind::Escape,
            );
        }
        for d in escape_dirs() {
            a.err_kind(write(&format!("{d}/new.txt"), "pwned"), ErrorKind::Escape);
            a.err_kind(
                Op::Write {
                    path: format!("{d}/sub/new.txt"),
                    content: text("pwned"),
                    create_dirs: true,
                },
                ErrorKind::Escape,
            );
        }
        // Writing onto the file symlink replaces the link itself, never the outside file.
        a.ok(write("file_link", "replaced"));
        assert!(!f.ws.join("file_link").is_symlink());
        assert_eq!(
            std::fs::read_to_string(f.ws.join("file_link")).unwrap(),
            "replaced"
        );
    });
}

#[test]
fn edits_cannot_escape() {
    for_both(|f, a| {
        let edit = |p: &str| Op::Edit {
            path: p.into(),
            edits: vec![TextEdit {
                old: "SECRET".into(),
                new: "pwned".into(),
                replace_all: false,
            }],
            dry_run: false,
        };
        for p in escapes(f) {
            a.err_kind(edit(&p), ErrorKind::Escape);
        }
        // Not followed: the symlink is refused as such.
        let e = a.err(edit("file_link"));
        assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
        assert!(e.message.contains("symlink"), "{}", e.message);
    });
}

#[test]
fn listing_ops_cannot_escape() {
    for_both(|f, a| {
        for d in escape_dirs() {
            a.err_kind(Op::List { path: d.clone() }, ErrorKind::Escape);
            a.err_kind(
                Op::Tree {
                    path: d.clone(),
                    depth: 3,
                    max_entries: None,
                },
                ErrorKind::Escape,
            );
            a.err_kind(
                Op::Glob {
                    path: d.clone(),
                    pattern: "*".into(),
                    max_results: None,
                },
                ErrorKind::Escape,
            );
            a.err_kind(
                Op::Grep {
                    path: d.clone(),
                    regex: "SECRET".into(),
                    glob: None,
                    case_insensitive: false,
                    max_results: None,
                },
                ErrorKind::Escape,
            );
        }
        for p in escapes(f) {
            a.err_kind(
                Op::Grep {
                    path: p,
                    regex: "SECRET".into(),
                    glob: None,
                    case_insensitive: false,
                    max_results: None,
                },
                ErrorKind::Escape,
            );
        }
        // Walkers list symlinks but never follow them.
        let Reply::Entries { entries, .. } = a.ok(Op::Tree {
            path: "".into(),
            depth: 10,
            max_entries: None,
        }) else {
            panic!()
        };
        assert!(
            entries.iter().all(|e| !e.path.contains("secret")),
            "{entries:?}"
        );
        let link = entries.iter().find(|e| e.path == "link_out").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(link.target.as_deref(), Some(f.outside.to_str().unwrap()));
        let Reply::Matches { matches, .. } = a.ok(Op::Glob {
            path: "".into(),
            pattern: "**/secret".into(),
            max_results: None,
        }) else {
            panic!()
        };
        assert!(matches.is_empty(), "{matches:?}");
        let Reply::GrepMatches { matches, .. } = a.ok(Op::Grep {
            path: "".into(),
            regex: "SECRET".into(),
            glob: None,
            case_insensitive: false,
            max_results: None,
        }) else {
            panic!()
        };
        assert!(matches.is_empty(), "{matches:?}");
    });
}

#[test]
fn moves_cannot_escape_either_way() {
    for_both(|f, a| {
        let mv = |from: &str, to: &str| Op::Move {
            from: from.into(),
            to: to.into(),
            overwrite: true,
        };
        for p in escapes(f) {
            // Outside to inside.
            a.err_kind(mv(&p, "stolen"), ErrorKind::Escape);
            // Inside to outside.
            a.err_kind(mv("src/a.txt", &p), ErrorKind::Escape);
        }
        for d in escape_dirs() {
            a.err_kind(mv("src/a.txt", &format!("{d}/a.txt")), ErrorKind::Escape);
        }
        assert!(f.ws.join("src/a.txt").exists());
        assert!(!f.ws.join("stolen").exists());
        // Moving the symlink itself stays inside and moves only the link.
        a.ok(mv("link_out", "src/moved_link"));
        assert!(f.ws.join("src/moved_link").is_symlink());
    });
}

#[test]
fn deletes_cannot_escape() {
    for_both(|f, a| {
        for p in escapes(f) {
            a.err_kind(
                Op::Delete {
                    path: p,
                    recursive: true,
                },
                ErrorKind::Escape,
            );
        }
        for d in escape_dirs() {
            a.err_kind(
                Op::Delete {
                    path: format!("{d}/secret"),
                    recursive: true,
                },
                ErrorKind::Escape,
            );
        }
        // A directory holding symlinks to outside: recursive delete removes the links only.
        std::fs::create_dir(f.ws.join("d")).unwrap();
        f.symlink(&f.outside, "d/out");
        f.symlink(f.outside.join("secret"), "d/secret_link");
        a.ok(Op::Delete {
            path: "d".into(),
            recursive: true,
        });
        assert!(!f.ws.join("d").exists());
        // Deleting the symlink to outside deletes only the link.
        a.ok(Op::Delete {
            path: "link_out".into(),
            recursive: true,
        });
        assert!(!f.ws.join("link_out").exists());
    });
}

#[test]
fn mkdir_cannot_escape() {
    for_both(|f, a| {
        for d in escape_dirs() {
            a.err_kind(
                Op::Mkdir {
                    path: format!("{d}/newdir/deeper"),
                },
                ErrorKind::Escape,
            );
        }
        a.err_kind(
            Op::Mkdir {
                path: f.outside.join("newdir").to_str().unwrap().into(),
            },
            ErrorKind::Escape,
        );
    });
}

#[test]
fn stat_cannot_escape_but_reports_links() {
    for_both(|f, a| {
        for p in escapes(f) {
            a.err_kind(Op::Stat { path: p }, ErrorKind::Escape);
        }
        // The link itself is in the workspace: stat describes it without following.
        let Reply::Stat(e) = a.ok(Op::Stat {
            path: "file_link".into(),
        }) else {
            panic!()
        };
        assert_eq!(e.kind, EntryKind::Symlink);
        assert_eq!(
            e.target.as_deref(),
            Some(f.outside.join("secret").to_str().unwrap())
        );
    });
}

#[test]
fn commands_cannot_start_outside() {
    for_both(|_f, a| {
        for d in escape_dirs() {
            a.err_kind(
                Op::Run(RunSpec {
                    command: "pwd".into(),
                    cwd: Some(d.clone()),
                    timeout_ms: 5000,
                    output_cap: 1000,
                    ..Default::default()
                }),
                ErrorKind::Escape,
            );
            a.err_kind(
                Op::Spawn(SpawnSpec {
                    command: "pwd".into(),
                    cwd: Some(d.clone()),
                    output_cap: 1000,
                    ..Default::default()
                }),
                ErrorKind::Escape,
            );
        }
    });
}

/// A thread keeps swapping `dir` between a real directory and a symlink to outside while
/// the agent reads `dir/file` and writes `dir/new`: nothing may ever reach outside.
#[test]
fn symlink_swap_race_never_escapes() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        std::fs::create_dir(f.ws.join("dir")).unwrap();
        std::fs::write(f.ws.join("dir/file"), "inside").unwrap();
        std::fs::write(f.outside.join("file"), SECRET).unwrap();
        let mut a = Agent::one(&f, resolver);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let stop = stop.clone();
            let ws = f.ws.clone();
            let outside = f.outside.clone();
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::rename(ws.join("dir"), ws.join("dir_real")).unwrap();
                    std::os::unix::fs::symlink(&outside, ws.join("dir")).unwrap();
                    std::thread::yield_now();
                    std::fs::remove_file(ws.join("dir")).unwrap();
                    std::fs::rename(ws.join("dir_real"), ws.join("dir")).unwrap();
                    std::thread::yield_now();
                    swaps += 1;
                }
                swaps
            })
        };
        let (mut inside, mut refused) = (0, 0);
        for i in 0..1500 {
            let id = a.send(read("dir/file"));
            let w = a.send(write(&format!("dir/new{i}"), "x"));
            match a.wait(id) {
                airlock_agent::Outcome::Ok(Reply::Read { content, .. }) => {
                    assert_eq!(
                        content,
                        Content::Text("inside".into()),
                        "{resolver}: read escaped"
                    );
                    inside += 1;
                }
                airlock_agent::Outcome::Ok(other) => panic!("{other:?}"),
                airlock_agent::Outcome::Err(e) => {
                    assert!(
                        matches!(e.kind, ErrorKind::Escape | ErrorKind::NotFound),
                        "{e:?}"
                    );
                    refused += 1;
                }
            }
            let _ = a.wait(w);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(swaps > 10, "the swapper barely ran ({swaps})");
        assert!(inside > 0, "{resolver}: no read succeeded");
        eprintln!("{resolver}: {inside} inside, {refused} refused, {swaps} swaps");
        assert_eq!(
            std::fs::read_to_string(f.outside.join("file")).unwrap(),
            SECRET
        );
        let outside: Vec<_> = std::fs::read_dir(&f.outside).unwrap().collect();
        assert_eq!(outside.len(), 2, "a write landed outside");
        drop(a);
    }
}
