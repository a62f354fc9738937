//! Installers run no workspace code: pip, npm and cargo run in the installer container against
//! a workspace planted with every vector a hostile model can write, and no marker appears.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A registry that answers every request with 404 at once, on the host's address on Docker's
/// bridge (where installer containers reach it): installs fail fast after the installer read
/// whatever it reads, and its address in the output shows the allowlist flags were used.
fn empty_registry() -> String {
    let out = std::process::Command::new("docker")
        .args(["network", "inspect", "bridge", "-f"])
        .arg("{{(index .IPAM.Config 0).Gateway}}")
        .output()
        .unwrap();
    let gateway = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let listener = std::net::TcpListener::bind((gateway.as_str(), 0)).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    address.to_string()
}

/// `[runtime.package_registries]` naming only `registry` (host:port) for every manager.
fn registries(registry: &str) -> String {
    format!(
        "[runtime.package_registries]\npip = [\"http://{registry}/simple\"]\nnpm = [\"http://{registry}/\"]\ncargo = [\"local=http://{registry}/index\"]\n"
    )
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
}

/// An executable that leaves the marker `pwned-<name>` (then behaves like `then`).
fn plant_exe(root: &Path, rel: &str, name: &str, then: &str) {
    write(
        root,
        rel,
        &format!("#!/bin/sh\ntouch /workspaces/project/pwned-{name}\n{then}\n"),
    );
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Python that leaves the marker `pwned-<name>` when it is imported or run.
fn py_marker(name: &str) -> String {
    format!("open('/workspaces/project/pwned-{name}', 'w').close()\n")
}

/// Plants every vector into the workspace `root`.
fn plant(root: &Path) {
    // A workspace venv whose interpreter, pip and start-up files are the model's.
    write(
        root,
        ".venv/pyvenv.cfg",
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
    );
    for exe in ["python", "python3", "python3.11"] {
        plant_exe(
            root,
            &format!(".venv/bin/{exe}"),
            "venv-python",
            "exec /usr/bin/python3 \"$@\"",
        );
    }
    plant_exe(root, ".venv/bin/pip", "venv-pip", "exit 1");
    let site = ".venv/lib/python3.11/site-packages";
    write(
        root,
        &format!("{site}/evil.pth"),
        &format!("import os; {}", py_marker("pth")),
    );
    write(
        root,
        &format!("{site}/keyring/__init__.py"),
        &py_marker("pth"),
    );
    // Modules the image's python would import from the working directory or a user site.
    write(root, "sitecustomize.py", &py_marker("sitecustomize"));
    write(root, "usercustomize.py", &py_marker("usercustomize"));
    write(root, "pip/__init__.py", &py_marker("pip-module"));
    write(root, "pip/__main__.py", &py_marker("pip-module"));
    // pip configuration pointing at a local source distribution whose setup.py leaves a marker.
    let sdist = root.join("wheels");
    let src = tempfile::tempdir().unwrap();
    write(
        src.path(),
        "airlock_marker-1.0/setup.py",
        &format!(
            "{}from setuptools import setup\nsetup(name='airlock_marker', version='1.0')\n",
            py_marker("pip-conf-sdist")
        ),
    );
    write(
        src.path(),
        "airlock_marker-1.0/PKG-INFO",
        "Metadata-Version: 2.1\nName: airlock_marker\nVersion: 1.0\n",
    );
    std::fs::create_dir_all(&sdist).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(sdist.join("airlock_marker-1.0.tar.gz"))
        .arg("-C")
        .arg(src.path())
        .arg("airlock_marker-1.0")
        .status()
        .unwrap();
    assert!(tar.success());
    let pip_conf = "[global]\nno-index = true\nfind-links = /workspaces/project/wheels\n";
    for at in [
        "pip.conf",
        ".venv/pip.conf",
        ".config/pip/pip.conf",
        ".pip/pip.conf",
    ] {
        write(root, at, pip_conf);
    }
    // npm: a project config naming the model's git and script shell, and lifecycle scripts.
    plant_exe(root, "evil/npm-git", "npm-git", "exit 1");
    plant_exe(root, "evil/npm-script-shell", "npm-script-shell", "exit 1");
    write(
        root,
        ".npmrc",
        "git=/workspaces/project/evil/npm-git\nscript-shell=/workspaces/project/evil/npm-script-shell\nignore-scripts=false\n",
    );
    write(
        root,
        "package.json",
        r#"{"name": "w", "version": "1.0.0",
            "dependencies": {"gitdep": "git+https://example.invalid/x.git"},
            "scripts": {"preinstall": "touch /workspaces/project/pwned-npm-lifecycle",
                        "install": "touch /workspaces/project/pwned-npm-lifecycle",
                        "postinstall": "touch /workspaces/project/pwned-npm-lifecycle"}}"#,
    );
    // cargo: a project config (both file names) with the model's rustc, wrapper and runner.
    plant_exe(root, "evil/cargo-rustc", "cargo-rustc", "exit 1");
    plant_exe(
        root,
        "evil/cargo-rustc-wrapper",
        "cargo-rustc-wrapper",
        "exit 1",
    );
    plant_exe(root, "evil/cargo-runner", "cargo-runner", "exit 1");
    let cargo_config = r#"[build]
rustc = "/workspaces/project/evil/cargo-rustc"
rustc-wrapper = "/workspaces/project/evil/cargo-rustc-wrapper"
[target.x86_64-unknown-linux-gnu]
runner = "/workspaces/project/evil/cargo-runner"
[alias]
fetch = "run"
add = "run"
[net]
git-fetch-with-cli = true
"#;
    write(root, ".cargo/config.toml", cargo_config);
    write(root, ".cargo/config", cargo_config);
    write(
        root,
        "Cargo.toml",
        "[package]\nname = \"w\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n\n[dependencies]\n",
    );
    write(
        root,
        "build.rs",
        "fn main() { std::fs::write(\"/workspaces/project/pwned-cargo-build-rs\", \"\").ok(); }\n",
    );
    write(root, "src/main.rs", "fn main() {}\n");
    give_to_sandbox(root);
}

fn markers(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("pwned-"))
        .collect()
}

/// One install per manager; returns each manager's output.
async fn install_each(server: &Server) -> Vec<(String, String)> {
    let client = server.client().await;
    let mut outputs = Vec::new();
    for (manager, package) in [
        ("pip", "airlock-marker"),
        ("npm", "left-pad"),
        ("cargo", "serde"),
    ] {
        let started = std::time::Instant::now();
        let r = call(
            &client,
            "install_packages",
            json!({"manager": manager, "packages": [package]}),
        )
        .await;
        eprintln!("{manager}: {:.1} s", started.elapsed().as_secs_f64());
        outputs.push((manager.to_string(), text(&r)));
    }
    client.cancel().await.unwrap();
    outputs
}

/// Each package manager, run on a workspace planted with every vector (a fake venv interpreter,
/// a `.pth` file, `sitecustomize.py` and a `pip` package at the root, `pip.conf` in every place
/// pip looks (pointing at a local sdist whose setup.py leaves a marker), `.npmrc` with `git=`
/// and `script-shell=`, lifecycle scripts, `.cargo/config*` with rustc, wrapper, runner and
/// aliases, a `build.rs`): no planted code runs, no workspace config is read, and each installer
/// got as far as resolving (pip and cargo asked the allowlisted registry).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn installers_run_no_workspace_code() {
    let registry = empty_registry();
    let env = TestEnv::with_image(&installer_test_image(), &registries(&registry));
    plant(&env.project);
    let server = Server::start(&env, &[]);
    let outputs = install_each(&server).await;
    let found = markers(&env.project);
    assert!(
        found.is_empty(),
        "workspace code ran in an installer: {found:?}\n{outputs:#?}"
    );
    // Each got as far as resolving: pip and cargo asked the allowlisted registry, npm spawned
    // the image's `git` for the package.json git dependency (not the `.npmrc` one).
    for ((manager, out), reached) in
        outputs
            .iter()
            .zip([registry.as_str(), "spawn git", registry.as_str()])
    {
        assert!(
            out.contains(reached),
            "{manager} did not get to {reached:?}:\n{out}"
        );
    }
    let (_, pip) = &outputs[0];
    assert!(
        !pip.contains("/workspaces/project/wheels"),
        "pip read a workspace pip.conf:\n{pip}"
    );
    let (_, cargo) = &outputs[2];
    assert!(
        !cargo.contains(".cargo/config") && !cargo.contains("git fetch"),
        "cargo read a workspace .cargo/config:\n{cargo}"
    );
}

/// The same workspace with `runtime.installers_read_project_config = true`: the planted
/// configuration is read — pip builds the sdist its `pip.conf` points at, npm runs the `.npmrc`
/// git, cargo reads `.cargo/config` — so the first test's vectors are live ones; lifecycle
/// scripts, the venv's interpreter and its start-up files still never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opting_in_reads_the_workspace_config_but_still_runs_no_scripts() {
    let env = TestEnv::with_image(
        &installer_test_image(),
        &format!(
            "installers_read_project_config = true\n{}",
            registries(&empty_registry())
        ),
    );
    plant(&env.project);
    let server = Server::start(&env, &[]);
    let outputs = install_each(&server).await;
    let found = markers(&env.project);
    let (_, pip) = &outputs[0];
    assert!(
        pip.contains("/workspaces/project/wheels"),
        "the opted-in pip.conf was not read:\n{pip}"
    );
    let (_, cargo) = &outputs[2];
    assert!(
        cargo.contains("/workspaces/project/.cargo/config"),
        "the opted-in .cargo/config was not read:\n{cargo}"
    );
    for live in ["pip-conf-sdist", "npm-git"] {
        assert!(
            found.iter().any(|m| m == &format!("pwned-{live}")),
            "the opted-in config vector {live} did not take effect: {found:?}\n{outputs:#?}"
        );
    }
    for never in [
        "venv-python",
        "venv-pip",
        "pth",
        "sitecustomize",
        "pip-module",
        "npm-lifecycle",
    ] {
        assert!(
            !found.iter().any(|m| m == &format!("pwned-{never}")),
            "{never} ran: {found:?}\n{outputs:#?}"
        );
    }
}
