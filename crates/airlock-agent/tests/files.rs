//! Every file operation's happy path and main error, under both resolvers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use airlock_agent::{Content, EntryKind, ErrorKind, Op, Outcome, Reply, TextEdit};
use base64::Engine as _;
use common::*;
use std::os::unix::fs::PermissionsExt;

fn for_both(test: impl Fn(&Fixture, &mut Agent)) {
    for resolver in RESOLVERS {
        let f = Fixture::new();
        let mut agent = Agent::one(&f, resolver);
        test(&f, &mut agent);
    }
}

fn edit(path: &str, edits: &[(&str, &str, bool)], dry_run: bool) -> Op {
    Op::Edit {
        path: path.into(),
        edits: edits
            .iter()
            .map(|(old, new, all)| TextEdit {
                old: (*old).into(),
                new: (*new).into(),
                replace_all: *all,
            })
            .collect(),
        dry_run,
    }
}

#[test]
fn read_text_window_binary_and_errors() {
    for_both(|f, a| {
        let root = f.root();
        // Relative and absolute addressing reach the same file.
        assert_eq!(a.read_text("src/a.txt"), "hello\nworld\n");
        assert_eq!(a.read_text(&format!("{root}/src/a.txt")), "hello\nworld\n");
        assert_eq!(a.read_text("./src/../src/a.txt"), "hello\nworld\n");
        let Reply::Read {
            path,
            content,
            size,
            truncated,
        } = a.ok(Op::Read {
            path: "src/a.txt".into(),
            offset: Some(6),
            limit: Some(3),
        })
        else {
            panic!()
        };
        assert_eq!(path, format!("{root}/src/a.txt"));
        assert_eq!(content, Content::Text("wor".into()));
        assert_eq!(size, 12);
        assert!(truncated);
        let Reply::Read {
            truncated, content, ..
        } = a.ok(Op::Read {
            path: "src/a.txt".into(),
            offset: Some(6),
            limit: None,
        })
        else {
            panic!()
        };
        assert!(!truncated);
        assert_eq!(content, Content::Text("world\n".into()));
        // Binary content comes back as base64.
        let bin = [0u8, 159, 146, 150, 255, 1, 2];
        std::fs::write(f.ws.join("bin"), bin).unwrap();
        let Reply::Read { content, .. } = a.ok(read("bin")) else {
            panic!()
        };
        assert_eq!(
            content,
            Content::Base64(base64::engine::general_purpose::STANDARD.encode(bin))
        );
        // A window that cuts a multi-byte character stays text, ending before it.
        std::fs::write(f.ws.join("utf"), "aé€b").unwrap();
        let Reply::Read {
            content, truncated, ..
        } = a.ok(Op::Read {
            path: "utf".into(),
            offset: None,
            limit: Some(4),
        })
        else {
            panic!()
        };
        assert_eq!(content, Content::Text("aé".into()));
        assert!(truncated);
        // Errors.
        let m = a.err_kind(read("src/missing.txt"), ErrorKind::NotFound);
        assert!(m.contains("src/missing.txt"), "{m}");
        a.err_kind(read("src"), ErrorKind::IsADirectory);
        a.err_kind(read("src/a.txt/x"), ErrorKind::NotADirectory);
    });
}

#[test]
fn write_atomic_creates_replaces_and_keeps_mode() {
    for_both(|f, a| {
        let Reply::Written { created, bytes, .. } = a.ok(write("new.txt", "abc")) else {
            panic!()
        };
        assert!(created);
        assert_eq!(bytes, 3);
        assert_eq!(
            std::fs::read_to_string(f.ws.join("new.txt")).unwrap(),
            "abc"
        );
        std::fs::set_permissions(f.ws.join("new.txt"), std::fs::Permissions::from_mode(0o751))
            .unwrap();
        let Reply::Written { created, .. } = a.ok(write("new.txt", "second")) else {
            panic!()
        };
        assert!(!created);
        let meta = std::fs::metadata(f.ws.join("new.txt")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o751);
        assert_eq!(
            std::fs::read_to_string(f.ws.join("new.txt")).unwrap(),
            "second"
        );
        // Setuid/setgid do not survive a rewrite; the other bits do.
        std::fs::set_permissions(
            f.ws.join("new.txt"),
            std::fs::Permissions::from_mode(0o6755),
        )
        .unwrap();
        a.ok(write("new.txt", "third"));
        let meta = std::fs::metadata(f.ws.join("new.txt")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        // Base64 content.
        a.ok(Op::Write {
            path: "b.bin".into(),
            content: Content::Base64(
                base64::engine::general_purpose::STANDARD.encode([0u8, 1, 255]),
            ),
            create_dirs: false,
        });
        assert_eq!(
            std::fs::read(f.ws.join("b.bin")).unwrap(),
            vec![0u8, 1, 255]
        );
        a.err_kind(
            Op::Write {
                path: "bad.bin".into(),
                content: Content::Base64("***".into()),
                create_dirs: false,
            },
            ErrorKind::Invalid,
        );
        // Missing parents: refused unless create_dirs.
        let m = a.err_kind(write("x/y/z.txt", "deep"), ErrorKind::NotFound);
        assert!(m.contains("directory") && m.contains("x/y/z.txt"), "{m}");
        a.ok(Op::Write {
            path: "x/y/z.txt".into(),
            content: text("deep"),
            create_dirs: true,
        });
        assert_eq!(
            std::fs::read_to_string(f.ws.join("x/y/z.txt")).unwrap(),
            "deep"
        );
        a.err_kind(write("src", "onto a dir"), ErrorKind::IsADirectory);
        a.err_kind(write("", "the root"), ErrorKind::Invalid);
        // No temp files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&f.ws)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("airlock"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    });
}

#[test]
fn edit_replaces_exactly_once_with_diff_and_dry_run() {
    for_both(|f, a| {
        f.write("e.txt", "one\ntwo\ntwo\nthree\n");
        let m = a.err_kind(
            edit("e.txt", &[("two", "2", false)], false),
            ErrorKind::Invalid,
        );
        assert!(m.contains("occurs 2 times"), "{m}");
        let m = a.err_kind(
            edit("e.txt", &[("four", "4", false)], false),
            ErrorKind::Invalid,
        );
        assert!(m.contains("not found"), "{m}");
        // A failing later edit applies nothing.
        a.err_kind(
            edit("e.txt", &[("one", "1", false), ("nope", "x", false)], false),
            ErrorKind::Invalid,
        );
        assert_eq!(
            std::fs::read_to_string(f.ws.join("e.txt")).unwrap(),
            "one\ntwo\ntwo\nthree\n"
        );
        // Dry run: a diff, nothing written.
        let Reply::Edited {
            diff,
            replacements,
            applied,
            ..
        } = a.ok(edit("e.txt", &[("one", "ONE", false)], true))
        else {
            panic!()
        };
        assert!(!applied);
        assert_eq!(replacements, 1);
        assert!(diff.contains("-one\n+ONE\n"), "{diff}");
        assert!(diff.starts_with("--- a/"), "{diff}");
        assert_eq!(
            std::fs::read_to_string(f.ws.join("e.txt")).unwrap(),
            "one\ntwo\ntwo\nthree\n"
        );
        // Applied, in order, with replace_all.
        let Reply::Edited {
            diff,
            replacements,
            applied,
            ..
        } = a.ok(edit(
            "e.txt",
            &[
                ("one", "ONE", false),
                ("two", "2", true),
                ("ONE\n2", "first\n2", false),
            ],
            false,
        ))
        else {
            panic!()
        };
        assert!(applied);
        assert_eq!(replacements, 4);
        assert_eq!(
            std::fs::read_to_string(f.ws.join("e.txt")).unwrap(),
            "first\n2\n2\nthree\n"
        );
        assert!(
            diff.contains("-one\n-two\n-two\n+first\n+2\n+2\n"),
            "{diff}"
        );
        a.err_kind(
            edit("missing.txt", &[("a", "b", false)], false),
            ErrorKind::NotFound,
        );
        std::fs::write(f.ws.join("bin"), [0xffu8, 0xfe]).unwrap();
        a.err_kind(edit("bin", &[("a", "b", false)], false), ErrorKind::Invalid);
    });
}

#[test]
fn list_tree_glob_grep() {
    for_both(|f, a| {
        f.write("src/lib.rs", "fn main() {}\n// TODO fix\n");
        f.write("src/deep/mod.rs", "pub fn todo() {}\n");
        f.write("README.md", "# Todo list\n");
        std::fs::write(f.ws.join("src/blob.bin"), b"TODO\0binary").unwrap();
        f.symlink("src", "srclink");
        let Reply::Entries {
            entries, truncated, ..
        } = a.ok(Op::List { path: "".into() })
        else {
            panic!()
        };
        assert!(!truncated);
        let names: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, vec!["README.md", "src", "srclink"]);
        assert_eq!(entries[1].kind, EntryKind::Dir);
        assert_eq!(entries[2].kind, EntryKind::Symlink);
        assert_eq!(entries[0].size, 12);
        a.err_kind(
            Op::List {
                path: "README.md".into(),
            },
            ErrorKind::NotADirectory,
        );
        a.err_kind(
            Op::List {
                path: "nope".into(),
            },
            ErrorKind::NotFound,
        );
        // Tree: depth and max_entries.
        let Reply::Entries { entries, .. } = a.ok(Op::Tree {
            path: "".into(),
            depth: 2,
            max_entries: None,
        }) else {
            panic!()
        };
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"src/deep"), "{paths:?}");
        assert!(!paths.contains(&"src/deep/mod.rs"), "{paths:?}");
        assert!(
            !paths.iter().any(|p| p.starts_with("srclink/")),
            "{paths:?}"
        );
        let Reply::Entries {
            entries, truncated, ..
        } = a.ok(Op::Tree {
            path: "".into(),
            depth: 10,
            max_entries: Some(3),
        })
        else {
            panic!()
        };
        assert_eq!(entries.len(), 3);
        assert!(truncated);
        // Glob: a slash-less pattern matches names at any depth; with a slash, the path.
        let Reply::Matches { matches, .. } = a.ok(Op::Glob {
            path: "".into(),
            pattern: "*.rs".into(),
            max_results: None,
        }) else {
            panic!()
        };
        let root = f.root();
        assert_eq!(
            matches,
            vec![
                format!("{root}/src/deep/mod.rs"),
                format!("{root}/src/lib.rs")
            ]
        );
        let Reply::Matches { matches, .. } = a.ok(Op::Glob {
            path: "src".into(),
            pattern: "deep/*.rs".into(),
            max_results: None,
        }) else {
            panic!()
        };
        assert_eq!(matches, vec![format!("{root}/src/deep/mod.rs")]);
        let Reply::Matches {
            matches, truncated, ..
        } = a.ok(Op::Glob {
            path: "".into(),
            pattern: "**".into(),
            max_results: Some(2),
        })
        else {
            panic!()
        };
        assert_eq!(matches.len(), 2);
        assert!(truncated);
        a.err_kind(
            Op::Glob {
                path: "".into(),
                pattern: "[".into(),
                max_results: None,
            },
            ErrorKind::Invalid,
        );
        // Grep: case, glob filter, binary files skipped, limits.
        let grep = |regex: &str, glob: Option<&str>, ci: bool, max: Option<u32>| Op::Grep {
            path: "".into(),
            regex: regex.into(),
            glob: glob.map(Into::into),
            case_insensitive: ci,
            max_results: max,
        };
        let Reply::GrepMatches {
            matches, truncated, ..
        } = a.ok(grep("TODO", None, false, None))
        else {
            panic!()
        };
        assert!(!truncated);
        assert_eq!(matches.len(), 1, "{matches:?}");
        assert_eq!(matches[0].path, format!("{root}/src/lib.rs"));
        assert_eq!(matches[0].line, 2);
        assert_eq!(matches[0].text, "// TODO fix");
        let Reply::GrepMatches { matches, .. } = a.ok(grep("todo", None, true, None)) else {
            panic!()
        };
        let found: Vec<_> = matches
            .iter()
            .map(|m| m.path.strip_prefix(&format!("{root}/")).unwrap())
            .collect();
        assert_eq!(found, vec!["README.md", "src/deep/mod.rs", "src/lib.rs"]);
        let Reply::GrepMatches { matches, .. } = a.ok(grep("todo", Some("*.rs"), true, None))
        else {
            panic!()
        };
        assert_eq!(matches.len(), 2);
        let Reply::GrepMatches {
            matches, truncated, ..
        } = a.ok(grep("todo", None, true, Some(1)))
        else {
            panic!()
        };
        assert_eq!(matches.len(), 1);
        assert!(truncated);
        a.err_kind(grep("(", None, false, None), ErrorKind::Invalid);
        // Long lines are clipped (at 1024 characters: the engine redacts the line with that
        // much context, then shows 500).
        f.write("long.txt", &format!("needle{}\n", "x".repeat(5000)));
        let Reply::GrepMatches { matches, .. } = a.ok(grep("needle", None, false, None)) else {
            panic!()
        };
        assert!(
            matches[0].text.chars().count() <= 1025,
            "{}",
            matches[0].text.len()
        );
        // A single file can be searched too.
        let Reply::GrepMatches { matches, .. } = a.ok(Op::Grep {
            path: "src/lib.rs".into(),
            regex: "fn".into(),
            glob: None,
            case_insensitive: false,
            max_results: None,
        }) else {
            panic!()
        };
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].path, format!("{root}/src/lib.rs"));
    });
}

#[test]
fn move_delete_mkdir_stat() {
    for_both(|f, a| {
        f.write("m1.txt", "one");
        f.write("m2.txt", "two");
        let mv = |from: &str, to: &str, overwrite: bool| Op::Move {
            from: from.into(),
            to: to.into(),
            overwrite,
        };
        let m = a.err_kind(mv("m1.txt", "m2.txt", false), ErrorKind::AlreadyExists);
        assert!(m.contains("overwrite"), "{m}");
        assert_eq!(std::fs::read_to_string(f.ws.join("m2.txt")).unwrap(), "two");
        a.ok(mv("m1.txt", "m2.txt", true));
        assert_eq!(std::fs::read_to_string(f.ws.join("m2.txt")).unwrap(), "one");
        assert!(!f.ws.join("m1.txt").exists());
        a.ok(mv("m2.txt", "src/moved.txt", false));
        assert!(f.ws.join("src/moved.txt").exists());
        a.err_kind(mv("nope", "x", false), ErrorKind::NotFound);
        a.err_kind(mv("src", "src/inner", false), ErrorKind::Invalid);
        // mkdir with parents, idempotent; a file in the way is an error.
        let Reply::Done { path } = a.ok(Op::Mkdir {
            path: "a/b/c".into(),
        }) else {
            panic!()
        };
        assert_eq!(path, format!("{}/a/b/c", f.root()));
        assert!(f.ws.join("a/b/c").is_dir());
        a.ok(Op::Mkdir {
            path: "a/b/c".into(),
        });
        let e = a.err(Op::Mkdir {
            path: "src/a.txt/sub".into(),
        });
        assert_eq!(e.kind, ErrorKind::NotADirectory, "{e:?}");
        // delete: file, empty dir, non-empty dir needs recursive.
        a.ok(Op::Delete {
            path: "src/moved.txt".into(),
            recursive: false,
        });
        assert!(!f.ws.join("src/moved.txt").exists());
        let m = a.err_kind(
            Op::Delete {
                path: "a".into(),
                recursive: false,
            },
            ErrorKind::Invalid,
        );
        assert!(m.contains("recursive"), "{m}");
        a.ok(Op::Delete {
            path: "a/b/c".into(),
            recursive: false,
        });
        a.ok(Op::Delete {
            path: "a".into(),
            recursive: true,
        });
        assert!(!f.ws.join("a").exists());
        a.err_kind(
            Op::Delete {
                path: "a".into(),
                recursive: true,
            },
            ErrorKind::NotFound,
        );
        a.err_kind(
            Op::Delete {
                path: "".into(),
                recursive: true,
            },
            ErrorKind::Invalid,
        );
        // stat: files, dirs, the root, symlinks (not followed).
        let Reply::Stat(e) = a.ok(Op::Stat {
            path: "src/a.txt".into(),
        }) else {
            panic!()
        };
        assert_eq!(e.kind, EntryKind::File);
        assert_eq!(e.size, 12);
        assert_eq!(e.path, format!("{}/src/a.txt", f.root()));
        assert!(e.modified > 1_600_000_000);
        let Reply::Stat(e) = a.ok(Op::Stat { path: "".into() }) else {
            panic!()
        };
        assert_eq!(e.kind, EntryKind::Dir);
        f.symlink("src/a.txt", "alink");
        let Reply::Stat(e) = a.ok(Op::Stat {
            path: "alink".into(),
        }) else {
            panic!()
        };
        assert_eq!(e.kind, EntryKind::Symlink);
        assert_eq!(e.target.as_deref(), Some("src/a.txt"));
        a.err_kind(
            Op::Stat {
                path: "nope".into(),
            },
            ErrorKind::NotFound,
        );
        // In-root symlinks are followed for reads, `..` in their targets included.
        assert_eq!(a.read_text("alink"), "hello\nworld\n");
        f.symlink("../src/a.txt", "src/up");
        assert_eq!(a.read_text("src/up"), "hello\nworld\n");
        f.symlink("../src", "src/self_dir");
        assert_eq!(a.read_text("src/self_dir/self_dir/a.txt"), "hello\nworld\n");
        a.ok(write("src/self_dir/via_link.txt", "v"));
        assert_eq!(
            std::fs::read_to_string(f.ws.join("src/via_link.txt")).unwrap(),
            "v"
        );
        // A symlink loop is an error, not a hang.
        f.symlink("loop2", "loop1");
        f.symlink("loop1", "loop2");
        let m = a.err_kind(read("loop1"), ErrorKind::Io);
        assert!(m.contains("symbolic links"), "{m}");
    });
}

#[test]
fn malformed_lines_get_invalid_answers() {
    let f = Fixture::new();
    let mut a = Agent::one(&f, "openat2");
    a.send_raw("this is not json");
    a.send_raw(r#"{"id":77,"op":"no_such_op"}"#);
    a.send_raw(r#"{"id":78,"op":"read"}"#);
    for id in [0, 77, 78] {
        match a.wait(id) {
            Outcome::Err(e) => assert_eq!(e.kind, ErrorKind::Invalid),
            other => panic!("{other:?}"),
        }
    }
    // Still serving.
    assert_eq!(a.read_text("src/a.txt"), "hello\nworld\n");
}

#[test]
fn version_and_usage() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("airlock-agent "));
    let out = std::process::Command::new(BIN)
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config", "{not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--config",
            r#"{"roots":[{"name":"x","path":"/definitely/not/here","read_only":false}]}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));
}
