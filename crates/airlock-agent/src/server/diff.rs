//! A small line-based unified diff (LCS over the changed middle) for `edit` replies.
//! Work is capped: beyond the cap the changed middle is shown as one removal and one addition.

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Largest LCS table (cells) worth computing.
const MAX_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Del(usize),
    Ins(usize),
}

/// A unified diff from `old` to `new`, with `a/` and `b/` headers naming `path`.
/// Empty when nothing changed.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = script(&a, &b);
    let mut out = format!("--- a{path}\n+++ b{path}\n");
    if !path.starts_with('/') {
        out = format!("--- a/{path}\n+++ b/{path}\n");
    }
    let changes: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut i = 0;
    while i < changes.len() {
        let first = changes[i];
        let mut last = first;
        while i + 1 < changes.len() && changes[i + 1] - last <= 2 * CONTEXT + 1 {
            i += 1;
            last = changes[i];
        }
        i += 1;
        let lo = first.saturating_sub(CONTEXT);
        let hi = (last + CONTEXT + 1).min(ops.len());
        hunk(&mut out, &ops[lo..hi], &a, &b);
    }
    out
}

fn hunk(out: &mut String, ops: &[Op], a: &[&str], b: &[&str]) {
    // Where the hunk starts in each file: the first line it touches, or the line it follows.
    let mut a_start = None;
    let mut b_start = None;
    let (mut a_len, mut b_len) = (0usize, 0usize);
    for op in ops {
        match *op {
            Op::Same(i, j) => {
                a_start.get_or_insert(i);
                b_start.get_or_insert(j);
                a_len += 1;
                b_len += 1;
            }
            Op::Del(i) => {
                a_start.get_or_insert(i);
                a_len += 1;
            }
            Op::Ins(j) => {
                b_start.get_or_insert(j);
                b_len += 1;
            }
        }
    }
    // A hunk without any line of one side only happens when that side is empty.
    let a_first = a_start.unwrap_or(0);
    let b_first = b_start.unwrap_or(0);
    let a_shown = if a_len == 0 { a_first } else { a_first + 1 };
    let b_shown = if b_len == 0 { b_first } else { b_first + 1 };
    out.push_str(&format!("@@ -{a_shown},{a_len} +{b_shown},{b_len} @@\n"));
    for op in ops {
        let (sign, line) = match *op {
            Op::Same(i, _) => (' ', a[i]),
            Op::Del(i) => ('-', a[i]),
            Op::Ins(j) => ('+', b[j]),
        };
        out.push(sign);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// The edit script from `a` to `b`: common prefix and suffix, LCS in between.
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let mut pre = 0;
    while pre < a.len() && pre < b.len() && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < a.len() - pre && suf < b.len() - pre && a[a.len() - 1 - suf] == b[b.len() - 1 - suf]
    {
        suf += 1;
    }
    let mut ops: Vec<Op> = (0..pre).map(|i| Op::Same(i, i)).collect();
    let am = &a[pre..a.len() - suf];
    let bm = &b[pre..b.len() - suf];
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) <= MAX_CELLS && n > 0 && m > 0 {
        // lcs[i][j] = LCS length of am[i..] and bm[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push(Op::Same(pre + i, pre + j));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                ops.push(Op::Del(pre + i));
                i += 1;
            } else {
                ops.push(Op::Ins(pre + j));
                j += 1;
            }
        }
    } else {
        ops.extend((0..n).map(|i| Op::Del(pre + i)));
        ops.extend((0..m).map(|j| Op::Ins(pre + j)));
    }
    ops.extend((0..suf).map(|k| Op::Same(a.len() - suf + k, b.len() - suf + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn one_line_change_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let d = unified("/w/x.txt", old, new);
        assert_eq!(
            d,
            "--- a/w/x.txt\n+++ b/w/x.txt\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("2\n", "two\n").replace("19\n", "nineteen\n");
        let d = unified("f", &old, &new);
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("-2\n+two\n"));
        assert!(d.contains("-19\n+nineteen\n"));
    }

    #[test]
    fn new_content_in_empty_file_and_missing_newline() {
        let d = unified("f", "", "x\ny");
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn unchanged_is_empty() {
        assert_eq!(unified("f", "same\n", "same\n"), "");
    }
}
