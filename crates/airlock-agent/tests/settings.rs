//! Workspace settings: hidden paths, protected paths and read-only roots, both resolvers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use airlock_agent::{ErrorKind, Op, Reply, RootSpec, RunSpec};
use common::*;

fn hidden_fixture() -> (Fixture, RootSpec) {
    let f = Fixture::new();
    f.write(".env", "API_KEY=hunter2\n");
    f.write("src/.env", "NESTED=hunter2\n");
    f.write("secrets/key.pem", "hunter2\n");
    f.write("config/prod/db.yml", "password: hunter2\n");
    f.write("config/dev/db.yml", "password: dev\n");
    f.symlink("secrets", "public");
    f.symlink(".env", "env_link");
    let mut spec = f.spec();
    spec.hide = vec![".env".into(), "secrets/".into(), "config/prod".into()];
    (f, spec)
}

#[test]
fn hidden_paths_are_refused() {
    for resolver in RESOLVERS {
        let (f, spec) = hidden_fixture();
        let mut a = Agent::start(vec![spec], resolver);
        for p in [
            ".env",
            "src/.env",
            "secrets/key.pem",
            "secrets",
            "config/prod/db.yml",
            "config/prod",
            // Reached through in-root symlinks: the real location decides.
            "public/key.pem",
            "env_link",
        ] {
            let m = a.err_kind(read(p), ErrorKind::Hidden);
            assert!(m.contains(p) && m.contains("hidden"), "{m}");
        }
        let abs = format!("{}/.env", f.root());
        a.err_kind(read(&abs), ErrorKind::Hidden);
        a.err_kind(write(".env", "x"), ErrorKind::Hidden);
        a.err_kind(write("src/.env", "x"), ErrorKind::Hidden);
        a.err_kind(write("public/new", "x"), ErrorKind::Hidden);
        a.err_kind(
            Op::Stat {
                path: ".env".into(),
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::List {
                path: "secrets".into(),
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::List {
                path: "public".into(),
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::Delete {
                path: ".env".into(),
                recursive: false,
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::Move {
                from: ".env".into(),
                to: "visible".into(),
                overwrite: false,
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::Move {
                from: "src/a.txt".into(),
                to: "secrets/a.txt".into(),
                overwrite: false,
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::Mkdir {
                path: "secrets/new".into(),
            },
            ErrorKind::Hidden,
        );
        a.err_kind(
            Op::Run(RunSpec {
                command: "ls".into(),
                cwd: Some("secrets".into()),
                timeout_ms: 5000,
                output_cap: 100,
                ..Default::default()
            }),
            ErrorKind::Hidden,
        );
        // A directory holding hidden entries cannot be deleted or moved wholesale.
        a.err_kind(
            Op::Delete {
                path: "src".into(),
                recursive: true,
            },
            ErrorKind::Hidden,
        );
        assert!(f.ws.join("src/.env").exists());
        assert!(f.ws.join("src/a.txt").exists());
        a.err_kind(
            Op::Move {
                from: "config".into(),
                to: "config2".into(),
                overwrite: false,
            },
            ErrorKind::Hidden,
        );
        // Visible neighbours still work.
        assert_eq!(a.read_text("config/dev/db.yml"), "password: dev\n");
        assert!(f.ws.join(".env").exists());
    }
}

#[test]
fn walkers_skip_hidden_entries() {
    for resolver in RESOLVERS {
        let (f, spec) = hidden_fixture();
        let mut a = Agent::start(vec![spec], resolver);
        let Reply::Entries { entries, .. } = a.ok(Op::Tree {
            path: "".into(),
            depth: 10,
            max_entries: None,
        }) else {
            panic!()
        };
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        for hidden in [
            ".env",
            "src/.env",
            "secrets",
            "secrets/key.pem",
            "config/prod",
        ] {
            assert!(!paths.contains(&hidden), "{hidden} listed: {paths:?}");
        }
        assert!(paths.contains(&"config/dev/db.yml"), "{paths:?}");
        let Reply::Entries { entries, .. } = a.ok(Op::List { path: "src".into() }) else {
            panic!()
        };
        assert!(entries.iter().all(|e| e.path != ".env"));
        let Reply::Matches { matches, .. } = a.ok(Op::Glob {
            path: "".into(),
            pattern: "**/*".into(),
            max_results: None,
        }) else {
            panic!()
        };
        let prefix = format!("{}/", f.root());
        let rels: Vec<&str> = matches
            .iter()
            .map(|m| m.strip_prefix(&prefix).unwrap())
            .collect();
        assert!(rels.contains(&"config/dev/db.yml"), "{rels:?}");
        assert!(
            rels.iter()
                .all(|m| !m.contains(".env") && !m.contains("secrets") && !m.contains("prod")),
            "{rels:?}"
        );
        let Reply::GrepMatches { matches, .. } = a.ok(Op::Grep {
            path: "".into(),
            regex: "hunter2".into(),
            glob: None,
            case_insensitive: false,
            max_results: None,
        }) else {
            panic!()
        };
        assert!(matches.is_empty(), "{matches:?}");
        // Grep started inside a listed dir sees patterns relative to the root.
        let Reply::GrepMatches { matches, .. } = a.ok(Op::Grep {
            path: "config".into(),
            regex: "password".into(),
            glob: None,
            case_insensitive: false,
            max_results: None,
        }) else {
            panic!()
        };
        let found: Vec<_> = matches.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(found, vec![format!("{}/config/dev/db.yml", f.root())]);
    }
}

#[test]
fn protected_paths_refuse_changes() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        f.write(".git/HEAD", "ref: main\n");
        f.write("Cargo.lock", "lock\n");
        f.write("pkg/.git/config", "x\n");
        f.write("pkg/code.rs", "code\n");
        let mut spec = f.spec();
        spec.protect = vec![".git".into(), "*.lock".into()];
        let mut a = Agent::start(vec![spec], resolver);
        // Reading is fine.
        assert_eq!(a.read_text(".git/HEAD"), "ref: main\n");
        for op in [
            write(".git/HEAD", "x"),
            write(".git/new", "x"),
            write("Cargo.lock", "x"),
            write("sub/other.lock", "x"),
            Op::Edit {
                path: "Cargo.lock".into(),
                edits: vec![airlock_agent::TextEdit {
                    old: "lock".into(),
                    new: "x".into(),
                    replace_all: false,
                }],
                dry_run: false,
            },
            Op::Delete {
                path: "Cargo.lock".into(),
                recursive: false,
            },
            Op::Delete {
                path: ".git".into(),
                recursive: true,
            },
            Op::Delete {
                path: "pkg".into(),
                recursive: true,
            },
            Op::Move {
                from: "Cargo.lock".into(),
                to: "x".into(),
                overwrite: false,
            },
            Op::Move {
                from: "src/a.txt".into(),
                to: "a.lock".into(),
                overwrite: false,
            },
            Op::Move {
                from: "src/a.txt".into(),
                to: ".git/a.txt".into(),
                overwrite: false,
            },
            Op::Move {
                from: "pkg".into(),
                to: "pkg2".into(),
                overwrite: false,
            },
            Op::Mkdir {
                path: ".git/hooks".into(),
            },
        ] {
            let m = a.err_kind(op, ErrorKind::ReadOnly);
            assert!(m.contains("protected"), "{m}");
        }
        assert_eq!(
            std::fs::read_to_string(f.ws.join("Cargo.lock")).unwrap(),
            "lock\n"
        );
        assert!(
            f.ws.join("pkg/code.rs").exists(),
            "partial recursive delete"
        );
        assert!(f.ws.join(".git/HEAD").exists());
        // Unprotected neighbours can change.
        a.ok(write("pkg/code.rs", "new"));
        a.ok(Op::Delete {
            path: "pkg/code.rs".into(),
            recursive: false,
        });
    }
}

#[test]
fn read_only_roots_refuse_writes_and_roots_are_addressed_by_path() {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let data = f.tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("table.csv"), "a,b\n").unwrap();
        let data_root = data.to_str().unwrap().to_string();
        let ro = RootSpec {
            name: "data".into(),
            path: data_root.clone(),
            read_only: true,
            hide: vec![],
            protect: vec![],
            case_insensitive: false,
        };
        let mut a = Agent::start(vec![f.spec(), ro], resolver);
        let Reply::Hello { roots, .. } = a.ok(Op::Hello) else {
            panic!()
        };
        assert_eq!(roots, vec![f.root(), data_root.clone()]);
        let file = format!("{data_root}/table.csv");
        assert_eq!(a.read_text(&file), "a,b\n");
        for op in [
            write(&file, "x"),
            write(&format!("{data_root}/new.csv"), "x"),
            Op::Mkdir {
                path: format!("{data_root}/dir"),
            },
            Op::Delete {
                path: file.clone(),
                recursive: false,
            },
            Op::Move {
                from: file.clone(),
                to: "stolen.csv".into(),
                overwrite: false,
            },
            Op::Move {
                from: "src/a.txt".into(),
                to: format!("{data_root}/a.txt"),
                overwrite: false,
            },
        ] {
            let m = a.err_kind(op, ErrorKind::ReadOnly);
            assert!(m.contains(&data_root) && m.contains("read-only"), "{m}");
        }
        assert_eq!(
            std::fs::read_to_string(data.join("table.csv")).unwrap(),
            "a,b\n"
        );
        // `..` from one root into a sibling root is still an escape of the first.
        a.err_kind(read("../data/table.csv"), ErrorKind::Escape);
        // A command may run with its cwd in a read-only root.
        let Reply::Ran(r) = a.ok(Op::Run(RunSpec {
            command: "cat table.csv".into(),
            cwd: Some(data_root.clone()),
            timeout_ms: 5000,
            output_cap: 100,
            ..Default::default()
        })) else {
            panic!()
        };
        assert_eq!(r.stdout, "a,b\n");
    }
}

/// A root whose filesystem is mounted read-only (not configured so): EROFS is reported as
/// a read-only workspace. Needs a private mount namespace (`unshare -m`, as root): fails without one.
#[test]
fn erofs_is_reported_as_read_only() {
    let can_unshare = std::process::Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        can_unshare,
        "this test needs `unshare -m` (util-linux, run as root) to mount a read-only filesystem"
    );
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let root = f.root();
        let script = format!(
            "mount --bind {root} {root} && mount -o remount,bind,ro {root} && exec \"$0\" serve --config \"$1\""
        );
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &script, BIN, &config_json(vec![f.spec()])]);
        let mut a = Agent::start_command(cmd, resolver);
        assert_eq!(a.read_text("src/a.txt"), "hello\nworld\n");
        for op in [
            write("src/a.txt", "x"),
            write("new.txt", "x"),
            Op::Mkdir { path: "d".into() },
            Op::Delete {
                path: "src/a.txt".into(),
                recursive: false,
            },
        ] {
            let m = a.err_kind(op, ErrorKind::ReadOnly);
            assert!(m.contains(&root) && m.contains("read-only"), "{m}");
        }
    }
}

#[test]
fn recursive_delete_of_a_tree_works_while_hide_patterns_are_set() {
    // The pre-check walks the tree before the delete walks it again: both must see every entry.
    for resolver in RESOLVERS {
        let f = Fixture::new();
        f.write("a/b/c/deep.txt", "x");
        f.write("a/moved.txt", "y");
        let mut spec = f.spec();
        spec.hide = vec![".env".into()];
        let mut a = Agent::start(vec![spec], resolver);
        a.ok(Op::Delete {
            path: "a".into(),
            recursive: true,
        });
        assert!(!std::path::Path::new(&format!("{}/a", f.root())).exists());
    }
}
