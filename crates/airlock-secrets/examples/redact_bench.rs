//! Redaction cost: a 1 MiB tool result, 10 secrets with all their encoded forms; prints p50/p99
//! of `redact`, of a stream in 64 KiB chunks, and of building the redactor. Run with `--release`.

use std::time::{Duration, Instant};

use airlock_secrets::{generate_decoy, DecoyKind, Redactor};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const SIZE: usize = 1024 * 1024;
const RUNS: usize = 200;

fn main() -> Result<(), airlock_secrets::Error> {
    let kinds = [
        DecoyKind::GitHubToken,
        DecoyKind::OpenAiKey,
        DecoyKind::AwsSecretAccessKey,
        DecoyKind::Password,
        DecoyKind::SlackToken,
    ];
    let mut secrets = Vec::new();
    for i in 0..10 {
        secrets.push((
            format!("SECRET_{i}"),
            generate_decoy(kinds[i % kinds.len()])?,
        ));
    }
    // One with characters that have URL and JSON forms.
    secrets[9].1 = "p@ss w/rd \"quoted\" é".to_string();

    let build = time(20, || {
        std::hint::black_box(Redactor::new(secrets.iter().cloned()));
    });
    let r = Redactor::new(secrets.iter().cloned());

    // Log-like text with every secret, its base64 and hex form showing up now and then.
    let mut text = String::with_capacity(SIZE + 4096);
    let mut n = 0usize;
    while text.len() < SIZE {
        text.push_str("2024-05-01T12:00:00Z INFO worker[3]: processed request id=");
        text.push_str(&format!(
            "{n:08x} in 12ms, status=200 path=/api/v1/items?page={n}\n"
        ));
        if n.is_multiple_of(997) {
            let (_, value) = &secrets[n % secrets.len()];
            text.push_str(&format!(
                "env: TOKEN={value} b64={}\n",
                STANDARD.encode(value)
            ));
            let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!("dump: {hex}\n"));
        }
        n += 1;
    }
    let mut cut = SIZE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);

    let markers = r.redact(&text).matches("[redacted:").count();
    let whole = time(RUNS, || {
        std::hint::black_box(r.redact(&text));
    });
    // Worst case for the prefilter: a base64 blob (random bytes), where every character could
    // begin an encoded form.
    let mut blob_bytes = Vec::with_capacity(SIZE);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while blob_bytes.len() < SIZE * 3 / 4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        blob_bytes.extend_from_slice(&x.to_le_bytes());
    }
    let blob = STANDARD.encode(&blob_bytes);
    let base64_blob = time(RUNS / 4, || {
        std::hint::black_box(r.redact(&blob));
    });
    let shapes_only = Redactor::default();
    let shapes = time(RUNS, || {
        std::hint::black_box(shapes_only.redact(&text));
    });
    let stream = time(RUNS / 4, || {
        let mut s = r.stream();
        let mut out = 0;
        let mut pos = 0;
        while pos < text.len() {
            let mut end = (pos + 64 * 1024).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            out += s.push(&text[pos..end]).len();
            pos = end;
        }
        out += s.finish().len();
        std::hint::black_box(out);
    });

    println!(
        "{} secrets, {} literal patterns (values and encoded forms), {} KiB text, {markers} markers",
        secrets.len(),
        r.pattern_len(),
        text.len() / 1024
    );
    report("redact (1 MiB)", &whole);
    report("  of which token shapes alone", &shapes);
    report("stream (1 MiB in 64 KiB chunks)", &stream);
    report("redact (1 MiB of base64, worst case)", &base64_blob);
    report("build redactor", &build);
    Ok(())
}

/// Wall-clock and CPU times of `runs` calls, each sorted.
struct Times {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn time(runs: usize, mut f: impl FnMut()) -> Times {
    f(); // warm up
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (start, start_cpu) = (Instant::now(), thread_cpu());
        f();
        wall.push(start.elapsed());
        cpu.push(thread_cpu().saturating_sub(start_cpu));
    }
    wall.sort_unstable();
    cpu.sort_unstable();
    Times { wall, cpu }
}

/// CPU time of this thread: on a busy machine the wall clock also counts time spent waiting
/// for a core.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn report(what: &str, times: &Times) {
    let at = |v: &[Duration], q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).copied().unwrap_or_default().as_secs_f64() * 1e3
    };
    println!(
        "{what}: p50 {:.3} ms, p99 {:.3} ms (CPU time p50 {:.3} ms, p99 {:.3} ms)",
        at(&times.wall, 0.50),
        at(&times.wall, 0.99),
        at(&times.cpu, 0.50),
        at(&times.cpu, 0.99),
    );
}
