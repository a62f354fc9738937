//! Benchmark for the audit log: group-commit insert rate (1 and 16 threads, both
//! durabilities), bulk load, full-text search latency over a large log, and verify time.
//!
//! ```text
//! cargo run --release -p airlock-audit --example audit_bench -- [--rows 1000000] [--inserts 4000] [--dir PATH]
//! ```

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_audit::{
    AuditConfig, AuditKey, AuditLog, Completion, DecidedBy, Decision, Durability, Intent, Outcome,
    Query,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

struct Args {
    rows: u64,
    inserts: u64,
    chunk: u64,
    dir: Option<String>,
}

fn args() -> BoxResult<Args> {
    let mut a = Args {
        rows: 1_000_000,
        inserts: 4_000,
        chunk: 250_000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = val()?.parse()?,
            "--inserts" => a.inserts = val()?.parse()?,
            "--chunk" => a.chunk = val()?.parse()?,
            "--dir" => a.dir = Some(val()?),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

/// xorshift64*: fast, deterministic, good enough for test data.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A synthetic vocabulary; index 0 is the most frequent word (skewed sampling).
fn vocabulary(n: usize) -> Vec<String> {
    const SYL: &[&str] = &[
        "ka", "lo", "mi", "ne", "tor", "ash", "vel", "qui", "zen", "rud", "pa", "sim", "bex",
        "dor", "fy", "gul", "hap", "jin", "kro", "lum",
    ];
    (0..n)
        .map(|i| {
            let mut w = String::new();
            let mut x = i + 1;
            while x > 0 {
                w.push_str(SYL[x % SYL.len()]);
                x /= SYL.len();
            }
            w
        })
        .collect()
}

fn skewed<'a>(rng: &mut Rng, vocab: &'a [String]) -> &'a str {
    let u = rng.unit();
    let idx = ((u * u * u) * vocab.len() as f64) as usize;
    &vocab[idx.min(vocab.len() - 1)]
}

const TOOLS: &[&str] = &[
    "shell",
    "read_file",
    "write_file",
    "list_dir",
    "package_install",
    "grep",
    "git",
];
const CLIENTS: &[&str] = &["claude-desktop", "cursor", "vscode", "zed"];

fn make_call(rng: &mut Rng, vocab: &[String], id: u64) -> (Intent, Completion) {
    let call_id = format!("bench-{id:012}");
    let tool = TOOLS[rng.below(TOOLS.len())];
    let words: Vec<&str> = (0..6).map(|_| skewed(rng, vocab)).collect();
    let arguments = serde_json::json!({
        "cmd": format!("{tool} {} {} {}", words[0], words[1], words[2]),
        "path": format!("/home/user/{}/{}.txt", words[3], words[4]),
        "note": words[5],
    });
    let r = rng.below(100);
    let (decision, outcome) = match r {
        0..=2 => (Decision::Denied, Outcome::Denied),
        3..=12 => (Decision::Allowed, Outcome::Error),
        13 => (Decision::Allowed, Outcome::Timeout),
        _ => (Decision::Allowed, Outcome::Ok),
    };
    let intent = Intent {
        call_id: call_id.clone(),
        client: CLIENTS[rng.below(CLIENTS.len())].into(),
        session: format!("session-{}", rng.below(500)),
        tool: tool.into(),
        arguments,
        workspace: Some(format!("/Users/me/ws{}", rng.below(20))),
        container: Some(format!("airlock-{}", rng.below(50))),
        decision,
        decided_by: if r < 3 {
            DecidedBy::User
        } else {
            DecidedBy::Rule
        },
    };
    let mut done = Completion::new(call_id, outcome);
    done.exit_code = Some(if outcome == Outcome::Ok { 0 } else { 1 });
    done.bytes_in = rng.below(10_000) as u64;
    done.bytes_out = rng.below(100_000) as u64;
    done.duration_ms = rng.below(5_000) as u64;
    if outcome == Outcome::Error {
        done.error = Some(format!(
            "failed: {} {}",
            skewed(rng, vocab),
            skewed(rng, vocab)
        ));
    }
    done.summary = Some(format!("{} lines, {}", rng.below(300), skewed(rng, vocab)));
    (intent, done)
}

fn small_intent(id: String) -> Intent {
    Intent {
        call_id: id,
        client: "bench".into(),
        session: "s".into(),
        tool: "shell".into(),
        arguments: serde_json::json!({"cmd": "echo hello world", "cwd": "/work"}),
        workspace: Some("/work".into()),
        container: Some("c1".into()),
        decision: Decision::Allowed,
        decided_by: DecidedBy::Rule,
    }
}

fn open(dir: &Path, name: &str, durability: Durability) -> BoxResult<AuditLog> {
    let config = AuditConfig::new(dir.join(name)).durability(durability);
    Ok(AuditLog::open(config, AuditKey::from_bytes([42; 32]))?)
}

/// Inserts/s for `threads` threads recording `total` intents between them.
fn insert_rate(dir: &Path, durability: Durability, threads: u64, total: u64) -> BoxResult<()> {
    let name = format!("ins-{durability:?}-{threads}.db");
    let log = Arc::new(open(dir, &name, durability)?);
    let per = total / threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || -> Result<(), airlock_audit::Error> {
                for i in 0..per {
                    log.record_intent(small_intent(format!("t{t}-{i}")))?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "insert thread panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = log.stats();
    println!(
        "insert  {:<6} {:>2} thread(s): {:>8.0} intents/s  ({} intents, {} commits, {:.1} per commit)",
        format!("{durability:?}"),
        threads,
        (per * threads) as f64 / secs,
        per * threads,
        stats.commits,
        stats.entries as f64 / stats.commits.max(1) as f64
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn measure(log: &AuditLog, label: &str, queries: &[Query]) -> BoxResult<()> {
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    for q in queries {
        let t = Instant::now();
        let page = log.search(q)?;
        times.push(t.elapsed());
        hits += page.calls.len();
    }
    times.sort_unstable();
    println!(
        "search  {label:<34} n={:<4} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms  (avg {:.0} hits/page)",
        queries.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        hits as f64 / queries.len().max(1) as f64
    );
    Ok(())
}

fn main() -> BoxResult<()> {
    let a = args()?;
    let tmp;
    let dir: &Path = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Path::new(d)
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path()
        }
    };
    println!("audit_bench in {}", dir.display());

    for durability in [Durability::Normal, Durability::Full] {
        insert_rate(dir, durability, 1, a.inserts)?;
        insert_rate(dir, durability, 16, a.inserts * 4)?;
    }

    // Bulk load.
    let log = open(dir, "big.db", Durability::Normal)?;
    let vocab = Arc::new(vocabulary(20_000));
    let start = Instant::now();
    let mut loaded = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while loaded < a.rows {
        let n = a.chunk.min(a.rows - loaded);
        let vocab = vocab.clone();
        let mut rng = Rng(seed);
        let first = loaded;
        let calls = (0..n).map(move |i| make_call(&mut rng, &vocab, first + i));
        loaded += log.append_bulk(calls)?;
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    let secs = start.elapsed().as_secs_f64();
    let counts = log.counts()?;
    let size: u64 = ["big.db", "big.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "bulk    {} calls ({} entries) in {:.1} s: {:.0} calls/s; db+wal {:.0} MiB",
        counts.calls,
        counts.entries,
        secs,
        loaded as f64 / secs,
        size as f64 / (1024.0 * 1024.0)
    );

    // Search latency.
    let mut rng = Rng(7);
    let n = 200;
    let page = 50;
    let pick = |rng: &mut Rng, lo: usize, hi: usize| vocab[lo + rng.below(hi - lo)].clone();
    let common: Vec<Query> = (0..n)
        .map(|_| Query::new().text(pick(&mut rng, 0, 50)).limit(page))
        .collect();
    let medium: Vec<Query> = (0..n)
        .map(|_| Query::new().text(pick(&mut rng, 500, 3000)).limit(page))
        .collect();
    let rare: Vec<Query> = (0..n)
        .map(|_| {
            Query::new()
                .text(pick(&mut rng, 10_000, 20_000))
                .limit(page)
        })
        .collect();
    let two: Vec<Query> = (0..n)
        .map(|_| {
            let t = format!("{} {}", pick(&mut rng, 0, 200), pick(&mut rng, 0, 200));
            Query::new().text(t).limit(page)
        })
        .collect();
    let prefix: Vec<Query> = (0..n)
        .map(|_| {
            let w = pick(&mut rng, 0, 2000);
            let stem: String = w.chars().take(4).collect();
            Query::new().text(format!("{stem}*")).limit(page)
        })
        .collect();
    let text_filter: Vec<Query> = (0..n)
        .map(|_| {
            Query::new()
                .text(pick(&mut rng, 0, 500))
                .tool(TOOLS[rng.below(TOOLS.len())])
                .outcome(Outcome::Error)
                .limit(page)
        })
        .collect();
    let filters: Vec<Query> = (0..n)
        .map(|_| {
            let mut q = Query::new()
                .client(CLIENTS[rng.below(CLIENTS.len())])
                .limit(page);
            if rng.below(2) == 0 {
                q = q.outcome(Outcome::Denied);
            }
            q
        })
        .collect();
    let last = log.last_seq()?;
    let deep: Vec<Query> = (0..n)
        .map(|_| {
            Query::new()
                .text(pick(&mut rng, 0, 100))
                .before_seq(1 + rng.next() % last.max(1))
                .limit(page)
        })
        .collect();
    measure(&log, "common word", &common)?;
    measure(&log, "medium word", &medium)?;
    measure(&log, "rare word", &rare)?;
    measure(&log, "two words (AND)", &two)?;
    measure(&log, "prefix (4 chars*)", &prefix)?;
    measure(&log, "word + tool + outcome=error", &text_filter)?;
    measure(&log, "filters only (client [+denied])", &filters)?;
    measure(&log, "common word, random deep page", &deep)?;
    let all: Vec<Query> = (0..n).map(|_| Query::new().limit(page)).collect();
    measure(&log, "tail (no filter)", &all)?;

    let t = Instant::now();
    let report = log.verify(&AuditKey::from_bytes([42; 32]))?;
    println!("verify  {report} in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}
