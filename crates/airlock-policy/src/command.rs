//! What a command line amounts to once parsed: the programs it runs (wrappers, quotes and paths
//! seen through, `sh -c` bodies and shell input read too), what is dynamic, and what it writes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::path::{normalize_absolute, normalize_container_path};
use crate::shell::{self, overrides_programs, Stdin, Word};

/// How deeply scripts inside scripts (`sh -c`, `$(…)`, `eval`) are followed.
const MAX_DEPTH: usize = 8;

/// The shell language a script is read in. Commands run under the image's `/bin/sh` (dash or
/// busybox ash), so top-level commands are [`Dialect::Sh`]; `bash -c` bodies are [`Dialect::Bash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// POSIX `sh` as dash and busybox ash read it.
    Sh,
    /// GNU bash.
    Bash,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sh => "sh",
            Dialect::Bash => "bash",
        })
    }
}

/// Syntax that bash (and busybox ash with its bash extensions) reads differently from dash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "feature", rename_all = "snake_case")]
pub enum BashFeature {
    /// `{a,b}`, `{1..3}`: several words in bash, one in dash.
    BraceExpansion,
    /// `$'…'` quoting.
    AnsiCQuote,
    /// `$"…"` quoting.
    LocaleQuote,
    /// `[[ … ]]`.
    DoubleBracket,
    /// `((…))`.
    ArithmeticCommand,
    /// `<(…)`, `>(…)`.
    ProcessSubstitution,
    /// `a=(1 2)`.
    Array,
    /// `&>`, `|&`, `<<<`, `;&`: one operator in bash, two in dash.
    Operator { op: String },
}

impl fmt::Display for BashFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BashFeature::BraceExpansion => f.write_str("brace expansion `{a,b}`"),
            BashFeature::AnsiCQuote => f.write_str("`$'…'` quoting"),
            BashFeature::LocaleQuote => f.write_str("`$\"…\"` quoting"),
            BashFeature::DoubleBracket => f.write_str("`[[ … ]]`"),
            BashFeature::ArithmeticCommand => f.write_str("`((…))`"),
            BashFeature::ProcessSubstitution => f.write_str("process substitution `<(…)`"),
            BashFeature::Array => f.write_str("an array assignment"),
            BashFeature::Operator { op } => write!(f, "the operator `{op}`"),
        }
    }
}

/// A part of a command whose meaning is only known when it runs. A command with one is never
/// allowed by a command pattern; see [`Policy::decide`](crate::Policy::decide) for how deny and
/// ask rules treat it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dynamic {
    /// `$HOME`, `${x:-y}`, `$1`.
    Parameter { expansion: String },
    /// `$(…)` or backquotes.
    CommandSubstitution,
    /// `$((…))`.
    Arithmetic,
    /// `~`, `~user`.
    Tilde,
    /// A glob that may match files outside `/workspaces` (`/etc/*`, `../*`).
    Glob { word: String },
    /// Brace expansion in a bash script.
    BraceExpansion,
    /// Syntax dash and bash read differently; the command runs under `sh`.
    BashOnly { feature: BashFeature },
    /// `PATH=… cmd`, `LD_PRELOAD=…`: changes which program runs or what it loads.
    EnvOverride { name: String },
    /// A program runs a script only known at run time (`curl … | sh`, `sh -c "$x"`, `eval "$x"`).
    UnknownScript { program: String },
    /// The parser could not read the command.
    Unparsed { error: String },
    /// Too long or too deeply nested to read.
    TooComplex,
}

impl Dynamic {
    /// Does this hide which programs run at all (rather than one word's value)?
    pub(crate) fn hides_programs(&self) -> bool {
        matches!(
            self,
            Dynamic::UnknownScript { .. } | Dynamic::Unparsed { .. } | Dynamic::TooComplex
        )
    }
}

impl fmt::Display for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dynamic::Parameter { expansion } => {
                write!(f, "the variable `{expansion}`, only known when it runs")
            }
            Dynamic::CommandSubstitution => {
                f.write_str("a command substitution `$(…)`, only known when it runs")
            }
            Dynamic::Arithmetic => f.write_str("arithmetic `$((…))`, only known when it runs"),
            Dynamic::Tilde => f.write_str("`~`, a home directory only known when it runs"),
            Dynamic::Glob { word } => {
                write!(
                    f,
                    "the glob `{word}`, which may match files outside /workspaces"
                )
            }
            Dynamic::BraceExpansion => {
                f.write_str("brace expansion `{a,b}`, which becomes several words")
            }
            Dynamic::BashOnly { feature } => {
                write!(f, "{feature}, which sh and bash read differently")
            }
            Dynamic::EnvOverride { name } => {
                write!(f, "`{name}=…`, which changes what programs run or load")
            }
            Dynamic::UnknownScript { program } => {
                write!(f, "`{program}` running a script only known when it runs")
            }
            Dynamic::Unparsed { error } => write!(f, "text the shell parser cannot read ({error})"),
            Dynamic::TooComplex => f.write_str("text too long or too deeply nested to read"),
        }
    }
}

/// How a write reaches a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOp {
    /// `>`
    Write,
    /// `>>`
    Append,
    /// `>|`
    Clobber,
    /// `<>`
    ReadWrite,
    /// `>&file`
    Duplicate,
    /// `&>` (bash)
    WriteWithErrors,
    /// `&>>` (bash)
    AppendWithErrors,
    /// `tee FILE`
    Tee,
}

impl fmt::Display for WriteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteOp::Write => ">",
            WriteOp::Append => ">>",
            WriteOp::Clobber => ">|",
            WriteOp::ReadWrite => "<>",
            WriteOp::Duplicate => ">&",
            WriteOp::WriteWithErrors => "&>",
            WriteOp::AppendWithErrors => "&>>",
            WriteOp::Tee => "tee",
        })
    }
}

/// Where a write goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WriteTarget {
    /// A normalised absolute container path.
    Path { path: String },
    /// A relative path whose directory is unknown (no working directory, or after `cd`).
    Relative { path: String },
    /// A target only known at run time (`> "$out"`).
    Dynamic { word: String },
}

impl WriteTarget {
    /// The path, when known.
    pub fn path(&self) -> Option<&str> {
        match self {
            WriteTarget::Path { path } => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for WriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteTarget::Path { path } => write!(f, "`{path}`"),
            WriteTarget::Relative { path } => write!(f, "`{path}` (directory unknown)"),
            WriteTarget::Dynamic { word } => write!(f, "`{word}` (only known when it runs)"),
        }
    }
}

/// A file a command writes through a redirection or `tee`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileWrite {
    pub op: WriteOp,
    pub target: WriteTarget,
}

impl fmt::Display for FileWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.target)
    }
}

/// How a program runs other programs or code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Runs {
    /// An option whose value is a command or code: `find -exec`, `python3 -c`, `git -c`.
    Option { option: String },
    /// A subcommand that runs commands: `git config` (aliases), `git submodule foreach`.
    Subcommand { name: String },
    /// The command in its arguments: `xargs rm`, `sudo rm`, `ssh host rm`.
    Arguments,
    /// Program text in its arguments: `awk '{…}'`, `eval '…'`.
    Code,
    /// A script file: `sh build.sh`, `python3 x.py`, `. ./env.sh`.
    ScriptFile,
    /// Code read from standard input: `python3 < x.py`.
    Stdin,
}

/// A program that runs other programs, and how. An allow rule covers it only when its pattern
/// names the program (and the option or subcommand): `run_command(find * -exec *)` covers
/// `find . -exec ls {} ;`, `run_command(find *)` does not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunnerForm {
    pub program: String,
    pub runs: Runs,
}

impl fmt::Display for RunnerForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.program;
        match &self.runs {
            Runs::Option { option } => write!(f, "`{p} {option}` runs a command or code"),
            Runs::Subcommand { name } => write!(f, "`{p} {name}` can run commands"),
            Runs::Arguments => write!(f, "`{p}` runs the command in its arguments"),
            Runs::Code => write!(f, "`{p}` runs program text"),
            Runs::ScriptFile => write!(f, "`{p}` runs a script file"),
            Runs::Stdin => write!(f, "`{p}` runs code from its standard input"),
        }
    }
}

/// One way of spelling a simple command that rules are matched against. The analysis is made
/// once per call ([`Call`](crate::Call) keeps it); each simple command has views with its program
/// as written and as a bare name, once per wrapper layer (`timeout 5 make` and `make`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    /// Words joined by single spaces; dynamic parts as written.
    pub text: String,
    /// When a word is dynamic: the text before it. Any command starting so could be meant.
    pub prefix: Option<String>,
    /// May an allow rule match this spelling? (`/workspaces/p/ls` is not `ls`.)
    pub allow: bool,
}

/// A literal script a command runs (`sh -c '…'`, a shell's standard input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub script: Box<Script>,
    /// The form an allow rule may spell instead of covering the script (`sh -c`); `None` when
    /// the script must be covered (a shell's standard input, which no pattern can spell).
    pub form: Option<RunnerForm>,
}

/// One simple command, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// As written (words joined).
    pub source: String,
    /// The innermost program's name when it is literal (`touch` for `/usr/bin/touch`).
    pub program: Option<String>,
    /// Wrappers seen through (`timeout`, `nice` …).
    pub wrappers: Vec<String>,
    /// Spellings for allow and deny rules.
    pub views: Vec<View>,
    /// Inner commands of programs that run others (`xargs rm` → `rm …`): deny and ask only.
    pub deny_views: Vec<View>,
    /// Forms an allow rule must spell out.
    pub runs: Vec<RunnerForm>,
    /// Dynamic parts of its words and assignments.
    pub dynamic: Vec<Dynamic>,
    pub body: Option<Body>,
    /// Scripts it runs that allow rules need not cover (`$(…)` bodies — the command is dynamic
    /// anyway —, `eval` and `su -c` strings): deny and ask rules see them.
    pub nested: Vec<Script>,
    pub writes: Vec<FileWrite>,
    /// What reading its standard input as code means, for `write_process_input`.
    pub reads_stdin: Option<StdinReader>,
}

/// A program that treats its standard input as code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StdinReader {
    Shell(Dialect, String),
    Code(String),
}

/// A script, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    pub dialect: Dialect,
    pub commands: Vec<Invocation>,
    /// Writes of compound commands.
    pub writes: Vec<FileWrite>,
    /// Dynamic parts outside simple commands, and problems with the whole script.
    pub problems: Vec<Dynamic>,
    /// Substitutions outside simple commands.
    pub nested: Vec<Script>,
}

impl Script {
    /// Every invocation, nested scripts and bodies included, depth first.
    pub(crate) fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Invocation, usize)) {
        self.walk_at(0, f);
    }

    fn walk_at<'a>(&'a self, depth: usize, f: &mut dyn FnMut(&'a Invocation, usize)) {
        for inv in &self.commands {
            f(inv, depth);
            if let Some(body) = &inv.body {
                body.script.walk_at(depth + 1, f);
            }
            for n in &inv.nested {
                n.walk_at(depth + 1, f);
            }
        }
        for n in &self.nested {
            n.walk_at(depth + 1, f);
        }
    }

    /// Every script, this one first.
    pub(crate) fn scripts<'a>(&'a self, f: &mut dyn FnMut(&'a Script)) {
        f(self);
        for inv in &self.commands {
            if let Some(body) = &inv.body {
                body.script.scripts(f);
            }
            for n in &inv.nested {
                n.scripts(f);
            }
        }
        for n in &self.nested {
            n.scripts(f);
        }
    }

    /// Every write, nested ones included.
    pub(crate) fn all_writes(&self) -> Vec<&FileWrite> {
        let mut out = Vec::new();
        self.scripts(&mut |s| {
            out.extend(s.writes.iter());
            for inv in &s.commands {
                out.extend(inv.writes.iter());
            }
        });
        out
    }

    /// Every dynamic part, nested ones included, without repeats.
    pub(crate) fn all_dynamic(&self) -> Vec<&Dynamic> {
        let mut out: Vec<&Dynamic> = Vec::new();
        self.scripts(&mut |s| {
            for d in s
                .problems
                .iter()
                .chain(s.commands.iter().flat_map(|c| &c.dynamic))
            {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        });
        out
    }

    /// Every form of running other programs, nested ones included.
    pub(crate) fn all_runs(&self) -> Vec<&RunnerForm> {
        let mut out: Vec<&RunnerForm> = Vec::new();
        self.walk(&mut |inv, _| {
            for r in inv
                .runs
                .iter()
                .chain(inv.body.as_ref().and_then(|b| b.form.as_ref()))
            {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        });
        out
    }
}

/// A script's own standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input<'a> {
    /// Nothing given.
    Empty,
    /// This text (`run_command`'s `stdin`).
    Text(&'a str),
    /// Only known at run time (the script is in a pipeline, or reads a file).
    Unknown,
}

/// What the analysis needs to know besides the text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The directory the script starts in.
    pub cwd: Option<&'a str>,
    /// The script's standard input.
    pub stdin: Input<'a>,
    pub depth: usize,
}

/// Parse and normalise `text` as a `dialect` script.
pub(crate) fn analyze(text: &str, dialect: Dialect, ctx: Context<'_>) -> Script {
    let raw = shell::parse(text, dialect);
    normalize(&raw, dialect, ctx)
}

fn normalize(raw: &shell::Script, dialect: Dialect, ctx: Context<'_>) -> Script {
    // A `cd` anywhere (behind wrappers too), or a program that could be one (unknown, `eval`,
    // a sourced script), makes relative paths unknowable.
    let moves = raw.commands.iter().any(|c| {
        c.words.first().is_some_and(|w| !w.is_literal())
            || runs_one_of(&c.words, &["cd", "pushd", "popd", "eval", ".", "source"])
    });
    let ctx = Context {
        cwd: if moves { None } else { ctx.cwd },
        ..ctx
    };
    let mut script = Script {
        dialect,
        commands: Vec::new(),
        writes: raw
            .writes
            .iter()
            .filter_map(|r| write(r.op, &r.target, ctx.cwd))
            .collect(),
        problems: raw.problems.clone(),
        nested: Vec::new(),
    };
    for w in &raw.loose_words {
        for d in &w.dynamic {
            push_unique(&mut script.problems, d.clone());
        }
        for s in &w.substitutions {
            script.nested.push(nested(s, dialect, ctx));
        }
    }
    for w in raw.writes.iter().map(|r| &r.target) {
        for s in &w.substitutions {
            script.nested.push(nested(s, dialect, ctx));
        }
    }
    for c in &raw.commands {
        let inv = invocation(c, dialect, ctx);
        script.commands.push(inv);
    }
    if dialect == Dialect::Sh {
        let double_bracket = raw
            .commands
            .iter()
            .any(|c| c.words.first().is_some_and(|w| w.raw == "[["));
        if double_bracket {
            push_unique(
                &mut script.problems,
                Dynamic::BashOnly {
                    feature: BashFeature::DoubleBracket,
                },
            );
        }
    }
    script
}

/// Is the program of `words`, behind any wrappers, one of `names`? Wrapper options and values
/// (`-n 5`, `A=1`, a duration) are stepped over without knowing each wrapper's syntax.
fn runs_one_of(words: &[Word], names: &[&str]) -> bool {
    for w in words.iter().take(8) {
        let name = basename(&w.text);
        if names.contains(&name) {
            return true;
        }
        let steps_over = wrapper(name).is_some()
            || name.starts_with('-')
            || name.contains('=')
            || name.starts_with(|c: char| c.is_ascii_digit());
        if !steps_over {
            return false;
        }
    }
    false
}

fn nested(text: &str, dialect: Dialect, ctx: Context<'_>) -> Script {
    if ctx.depth >= MAX_DEPTH {
        return Script {
            dialect,
            commands: Vec::new(),
            writes: Vec::new(),
            problems: vec![Dynamic::TooComplex],
            nested: Vec::new(),
        };
    }
    analyze(
        text,
        dialect,
        Context {
            depth: ctx.depth + 1,
            ..ctx
        },
    )
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// `/usr/bin/touch` → `touch`.
pub(crate) fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Directories whose programs are the system's own: `/usr/bin/ls` may be allowed as `ls`.
fn is_system_program(program: &str) -> bool {
    const DIRS: &[&str] = &[
        "/bin/",
        "/usr/bin/",
        "/usr/local/bin/",
        "/sbin/",
        "/usr/sbin/",
        "/usr/local/sbin/",
    ];
    !program.contains('/')
        || DIRS.iter().any(|d| {
            program
                .strip_prefix(d)
                .is_some_and(|rest| !rest.contains('/'))
        })
}

/// Writes to these are no writes to files.
fn is_harmless_target(path: &str) -> bool {
    matches!(
        path,
        "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
    ) || path
        .strip_prefix("/dev/fd/")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Resolve a write target; `None` for harmless ones (`/dev/null`).
fn write(op: WriteOp, target: &Word, cwd: Option<&str>) -> Option<FileWrite> {
    let target = if !target.is_literal() || target.glob {
        WriteTarget::Dynamic {
            word: target.raw.clone(),
        }
    } else if target.text.starts_with('/') {
        match normalize_absolute(&target.text) {
            Ok(path) if is_harmless_target(&path) => return None,
            Ok(path) => WriteTarget::Path { path },
            Err(_) => WriteTarget::Dynamic {
                word: target.raw.clone(),
            },
        }
    } else {
        match cwd.map(|c| normalize_container_path(&target.text, c)) {
            Some(Ok(path)) if is_harmless_target(&path) => return None,
            Some(Ok(path)) => WriteTarget::Path { path },
            _ => WriteTarget::Relative {
                path: target.text.clone(),
            },
        }
    };
    Some(FileWrite { op, target })
}

/// Does a (literal) glob word stay inside `/workspaces`?
fn glob_stays_inside(word: &str, cwd: Option<&str>) -> bool {
    if word.split('/').any(|c| c == "..") {
        return false;
    }
    let absolute = if word.starts_with('/') {
        word.to_string()
    } else {
        match cwd {
            Some(c) => format!("{c}/{word}"),
            None => return false,
        }
    };
    absolute.starts_with("/workspaces/")
}

/// Wrappers: programs that run the command in their arguments with changed settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    Env,
    Command,
    Exec,
    Nice,
    Nohup,
    Timeout,
    Stdbuf,
    Time,
    Busybox,
    Setsid,
    Builtin,
}

fn wrapper(name: &str) -> Option<Wrapper> {
    Some(match name {
        "env" => Wrapper::Env,
        "command" => Wrapper::Command,
        "exec" => Wrapper::Exec,
        "nice" => Wrapper::Nice,
        "nohup" => Wrapper::Nohup,
        "timeout" => Wrapper::Timeout,
        "stdbuf" => Wrapper::Stdbuf,
        "time" => Wrapper::Time,
        "busybox" => Wrapper::Busybox,
        "setsid" => Wrapper::Setsid,
        "builtin" => Wrapper::Builtin,
        _ => return None,
    })
}

/// Shells whose scripts are parsed, and their dialect.
fn parsed_shell(name: &str) -> Option<Dialect> {
    match name {
        "sh" | "dash" | "ash" => Some(Dialect::Sh),
        "bash" | "rbash" => Some(Dialect::Bash),
        _ => None,
    }
}

/// Shells whose scripts are read as bash for deny rules only.
fn other_shell(name: &str) -> bool {
    matches!(
        name,
        "zsh" | "ksh" | "mksh" | "ksh93" | "yash" | "fish" | "csh" | "tcsh" | "posh"
    )
}

/// Programs that run the command given in their arguments.
const ARGUMENT_RUNNERS: &[&str] = &[
    "sudo", "doas", "su", "runuser", "ssh", "chroot", "unshare", "nsenter", "flock", "watch",
    "strace", "ltrace", "valgrind", "gdb", "script", "parallel", "setpriv", "ionice", "chrt",
    "taskset", "fakeroot", "xvfb-run", "entr", "firejail", "bwrap", "proot",
];

/// Words after the options of a program: `short_values` / `long_values` take a separate value.
/// Returns how many words are options (and their values). A dynamic word ends the options.
fn skip_options(args: &[Word], short_values: &[char], long_values: &[&str]) -> usize {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        if !w.is_literal() {
            break;
        }
        let t = w.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += if !long.contains('=') && long_values.contains(&long) {
                2
            } else {
                1
            };
            continue;
        }
        let mut chars = t.chars();
        match (chars.next(), chars.next()) {
            (Some('-'), Some(c)) => {
                i += if t.len() == 2 && short_values.contains(&c) {
                    2
                } else {
                    1
                };
            }
            _ => break,
        }
    }
    i.min(args.len())
}

fn words_text(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Is word `i` of a command dynamic for matching (a program word that is not literal or is a
/// glob; an argument that is not literal or globs outside `/workspaces`)?
fn is_dynamic_word(w: &Word, i: usize, cwd: Option<&str>) -> bool {
    !w.is_literal() || (w.glob && (i == 0 || !glob_stays_inside(&w.text, cwd)))
}

/// The view of `words` (program first), with `program` spelled as given.
fn view(program: &str, words: &[Word], allow: bool, cwd: Option<&str>) -> View {
    let texts: Vec<&str> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == 0 { program } else { w.text.as_str() })
        .collect();
    let prefix = words
        .iter()
        .enumerate()
        .position(|(i, w)| is_dynamic_word(w, i, cwd))
        .map(|i| {
            if i == 0 {
                // An unknown program could be any program.
                return String::new();
            }
            let w = &words[i];
            let literal = if w.is_literal() {
                w.text.split(['*', '?', '[']).next().unwrap_or_default()
            } else {
                w.literal_prefix.as_str()
            };
            format!("{} {literal}", texts[..i].join(" "))
        });
    View {
        text: texts.join(" "),
        prefix,
        allow,
    }
}

fn push_view(list: &mut Vec<View>, v: View) {
    if let Some(existing) = list
        .iter_mut()
        .find(|e| e.text == v.text && e.prefix == v.prefix)
    {
        existing.allow |= v.allow;
    } else {
        list.push(v);
    }
}

/// The views of one layer: program as written, and as a bare name.
fn layer_views(list: &mut Vec<View>, words: &[Word], cwd: Option<&str>) {
    let Some(first) = words.first() else { return };
    if is_dynamic_word(first, 0, cwd) {
        push_view(list, view(&first.text, words, false, cwd));
        return;
    }
    let written = first.text.as_str();
    push_view(list, view(written, words, true, cwd));
    let name = basename(written);
    if name != written {
        push_view(list, view(name, words, is_system_program(written), cwd));
    }
}

/// The command a runner runs (`xargs rm -f` → `rm -f …`, `find -exec sh -c …`), analysed like
/// any simple command; what it shows is for deny and ask rules only (the runner itself must
/// be spelled out by an allow rule). Its standard input is unknown.
fn inner(inv: &mut Invocation, words: Vec<Word>, dialect: Dialect, ctx: Context<'_>) {
    if words.is_empty() || ctx.depth >= MAX_DEPTH {
        return;
    }
    let command = shell::SimpleCommand {
        assignments: Vec::new(),
        words,
        writes: Vec::new(),
        stdin: Stdin::Pipe,
        other_words: Vec::new(),
    };
    let sub = invocation(
        &command,
        dialect,
        Context {
            depth: ctx.depth + 1,
            ..ctx
        },
    );
    for mut v in sub.views.into_iter().chain(sub.deny_views) {
        v.allow = false;
        push_view(&mut inv.deny_views, v);
    }
    for d in sub.dynamic.into_iter().filter(Dynamic::hides_programs) {
        push_unique(&mut inv.dynamic, d);
    }
    inv.nested.extend(sub.nested);
    if let Some(body) = sub.body {
        inv.nested.push(*body.script);
    }
    inv.runs.extend(sub.runs);
}

/// A word standing for arguments only known at run time (`{}` of `find -exec`, what `xargs`
/// reads), keeping the literal text before the placeholder.
fn runtime_word(text: &str, literal_prefix: &str) -> Word {
    Word {
        raw: text.to_string(),
        text: text.to_string(),
        literal_prefix: literal_prefix.to_string(),
        dynamic: vec![Dynamic::Parameter {
            expansion: text.to_string(),
        }],
        ..Word::default()
    }
}

fn invocation(c: &shell::SimpleCommand, dialect: Dialect, ctx: Context<'_>) -> Invocation {
    let mut inv = Invocation {
        source: c
            .assignments
            .iter()
            .map(|(n, v)| format!("{n}={}", v.raw))
            .chain(c.words.iter().map(|w| w.raw.clone()))
            .collect::<Vec<_>>()
            .join(" "),
        ..Invocation::default()
    };
    for (name, value) in &c.assignments {
        for d in &value.dynamic {
            push_unique(&mut inv.dynamic, d.clone());
        }
        if overrides_programs(name) {
            push_unique(
                &mut inv.dynamic,
                Dynamic::EnvOverride { name: name.clone() },
            );
        }
    }
    let substitutions = c
        .assignments
        .iter()
        .map(|(_, v)| v)
        .chain(&c.words)
        .chain(&c.other_words)
        .chain(c.writes.iter().map(|r| &r.target))
        .flat_map(|w| w.substitutions.iter());
    for s in substitutions {
        push_unique(&mut inv.dynamic, Dynamic::CommandSubstitution);
        inv.nested.push(nested(s, dialect, ctx));
    }
    inv.writes = c
        .writes
        .iter()
        .filter_map(|r| write(r.op, &r.target, ctx.cwd))
        .collect();
    let words = c.words.as_slice();
    if words.is_empty() {
        return inv;
    }
    for w in &words[1..] {
        for d in &w.dynamic {
            push_unique(&mut inv.dynamic, d.clone());
        }
        if w.is_literal() && w.glob && !glob_stays_inside(&w.text, ctx.cwd) {
            push_unique(
                &mut inv.dynamic,
                Dynamic::Glob {
                    word: w.text.clone(),
                },
            );
        }
    }
    // The whole command as written, assignments included (for exact rules).
    if !c.assignments.is_empty() {
        let mut all: Vec<Word> = c
            .assignments
            .iter()
            .map(|(n, v)| Word {
                text: format!("{n}={}", v.text),
                literal_prefix: format!("{n}={}", v.literal_prefix),
                ..v.clone()
            })
            .collect();
        all.extend(words.iter().cloned());
        if let Some(first) = all.first() {
            let text = first.text.clone();
            push_view(&mut inv.views, view(&text, &all, true, ctx.cwd));
        }
    }
    let mut i = 0;
    while i < words.len() {
        let layer = &words[i..];
        layer_views(&mut inv.views, layer, ctx.cwd);
        let first = &layer[0];
        if !first.is_literal() || first.glob {
            for d in &first.dynamic {
                push_unique(&mut inv.dynamic, d.clone());
            }
            if first.is_literal() {
                push_unique(
                    &mut inv.dynamic,
                    Dynamic::Glob {
                        word: first.text.clone(),
                    },
                );
            }
            return inv;
        }
        let name = basename(&first.text).to_string();
        match wrapper(&name).and_then(|w| unwrap_layer(w, &name, layer, dialect, ctx, &mut inv)) {
            Some(skip) if i + skip < words.len() => {
                inv.wrappers.push(name);
                i += skip;
            }
            Some(_) => {
                // A wrapper with nothing to run (`env`, `exec >log`): it is the program.
                inv.program = Some(name);
                return inv;
            }
            None => {
                program(&name, layer, dialect, ctx, &c.stdin, &mut inv);
                inv.program = Some(name);
                return inv;
            }
        }
    }
    inv
}

/// For a wrapper layer, how many words (the wrapper's own included) precede the wrapped
/// command; `None` when this use of it runs nothing (`command -v x`).
fn unwrap_layer(
    w: Wrapper,
    name: &str,
    layer: &[Word],
    dialect: Dialect,
    ctx: Context<'_>,
    inv: &mut Invocation,
) -> Option<usize> {
    let args = &layer[1..];
    let n = match w {
        Wrapper::Env => {
            let mut n = skip_options(args, &['u', 'C', 'S'], &["unset", "chdir", "split-string"]);
            for (j, a) in args[..n].iter().enumerate() {
                let t = a.text.as_str();
                let split = t == "-S"
                    || t.starts_with("--split-string")
                    || (t.starts_with("-S") && t.len() > 2);
                if split {
                    let value = if t == "-S" || t == "--split-string" {
                        args.get(j + 1).map(|v| v.text.clone()).unwrap_or_default()
                    } else {
                        t.split_once('=')
                            .map_or_else(|| t[2..].to_string(), |(_, v)| v.to_string())
                    };
                    inv.runs.push(RunnerForm {
                        program: name.to_string(),
                        runs: Runs::Option {
                            option: "-S".into(),
                        },
                    });
                    inv.nested.push(nested(&value, dialect, ctx));
                }
            }
            while let Some(a) = args.get(n) {
                let Some((var, _)) = a.text.split_once('=') else {
                    break;
                };
                if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                for d in &a.dynamic {
                    push_unique(&mut inv.dynamic, d.clone());
                }
                if overrides_programs(var) {
                    push_unique(
                        &mut inv.dynamic,
                        Dynamic::EnvOverride {
                            name: var.to_string(),
                        },
                    );
                }
                n += 1;
            }
            n
        }
        Wrapper::Command => {
            if args
                .first()
                .is_some_and(|a| matches!(a.text.as_str(), "-v" | "-V"))
            {
                return None;
            }
            skip_options(args, &[], &[])
        }
        Wrapper::Exec => skip_options(args, &['a'], &[]),
        Wrapper::Nice => skip_options(args, &['n'], &["adjustment"]),
        Wrapper::Nohup | Wrapper::Busybox | Wrapper::Builtin => skip_options(args, &[], &[]),
        Wrapper::Setsid => skip_options(args, &[], &[]),
        Wrapper::Timeout => {
            let n = skip_options(args, &['s', 'k'], &["signal", "kill-after"]);
            // The duration.
            (n + 1).min(args.len())
        }
        Wrapper::Stdbuf => skip_options(args, &['i', 'o', 'e'], &["input", "output", "error"]),
        Wrapper::Time => skip_options(args, &['f', 'o'], &["format", "output"]),
    };
    Some(n + 1)
}

/// A shell's options: is there `-c`, is there `-s` (read the script from standard input), and
/// where do the operands start?
fn shell_operands(args: &[Word]) -> (bool, bool, usize) {
    let mut has_c = false;
    let mut has_s = false;
    let mut i = 0;
    while let Some(w) = args.get(i) {
        if !w.is_literal() {
            break;
        }
        let t = w.text.as_str();
        if t == "--" || t == "-" {
            i += 1;
            break;
        }
        if let Some(long) = t.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            let flags = &t[1..];
            if t.starts_with('-') && flags.contains('c') {
                has_c = true;
            }
            if t.starts_with('-') && flags.contains('s') {
                has_s = true;
            }
            i += if flags.ends_with('o') || flags.ends_with('O') {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    (has_c, has_s, i.min(args.len()))
}

/// A script operand that is the shell's own standard input (`sh /dev/stdin`).
fn reads_own_stdin(w: &Word) -> bool {
    w.is_literal()
        && matches!(
            w.text.as_str(),
            "-" | "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0"
        )
}

/// Where a program's standard input comes from, as a script it may run.
enum StdinScript {
    /// Nothing (no text given).
    Empty,
    /// Literal text.
    Text(String),
    /// A file.
    File,
    /// Only known at run time (a pipe, a here-document with expansions).
    Unknown,
}

fn stdin_script(stdin: &Stdin, ctx: Context<'_>) -> StdinScript {
    match stdin {
        Stdin::Inherited => match ctx.stdin {
            Input::Text(text) => StdinScript::Text(text.to_string()),
            Input::Empty => StdinScript::Empty,
            Input::Unknown => StdinScript::Unknown,
        },
        Stdin::Pipe => StdinScript::Unknown,
        Stdin::File(_) => StdinScript::File,
        Stdin::Text(w) if w.is_literal() => StdinScript::Text(w.text.clone()),
        Stdin::Text(_) => StdinScript::Unknown,
    }
}

fn form(program: &str, runs: Runs) -> RunnerForm {
    RunnerForm {
        program: program.to_string(),
        runs,
    }
}

fn option(program: &str, option: &str) -> RunnerForm {
    form(
        program,
        Runs::Option {
            option: option.to_string(),
        },
    )
}

/// What the innermost program does with its arguments and input.
fn program(
    name: &str,
    layer: &[Word],
    dialect: Dialect,
    ctx: Context<'_>,
    stdin: &Stdin,
    inv: &mut Invocation,
) {
    let args = &layer[1..];
    let literal_args = || args.iter().all(Word::is_literal);
    if let Some(d) = parsed_shell(name).or_else(|| other_shell(name).then_some(Dialect::Bash)) {
        let parsed = parsed_shell(name).is_some();
        let (has_c, has_s, start) = shell_operands(args);
        let operand = if has_s && !has_c {
            None
        } else {
            args.get(start)
        };
        let own_stdin = stdin_script(stdin, ctx);
        let body = if has_c {
            match operand {
                Some(w) if w.is_literal() => Some((w.text.clone(), Some(option(name, "-c")))),
                Some(_) => {
                    push_unique(
                        &mut inv.dynamic,
                        Dynamic::UnknownScript {
                            program: name.into(),
                        },
                    );
                    None
                }
                None => None,
            }
        } else if operand.is_some_and(|w| !reads_own_stdin(w)) {
            inv.runs.push(form(name, Runs::ScriptFile));
            None
        } else {
            match &own_stdin {
                StdinScript::Empty => {
                    inv.reads_stdin = Some(StdinReader::Shell(d, name.to_string()));
                    None
                }
                StdinScript::Text(text) => Some((text.clone(), None)),
                StdinScript::File => {
                    inv.runs.push(form(name, Runs::ScriptFile));
                    None
                }
                StdinScript::Unknown => {
                    push_unique(
                        &mut inv.dynamic,
                        Dynamic::UnknownScript {
                            program: name.into(),
                        },
                    );
                    None
                }
            }
        };
        if let Some((text, body_form)) = body {
            // A `-c` body reads the shell's standard input; a script read from it has none left.
            let body_stdin = match (&body_form, &own_stdin) {
                (None, _) | (_, StdinScript::Empty) => Input::Empty,
                (Some(_), StdinScript::Text(t)) => Input::Text(t),
                (Some(_), StdinScript::File | StdinScript::Unknown) => Input::Unknown,
            };
            let script = nested(
                &text,
                d,
                Context {
                    stdin: body_stdin,
                    ..ctx
                },
            );
            if parsed {
                inv.body = Some(Body {
                    script: Box::new(script),
                    form: body_form,
                });
            } else {
                inv.runs
                    .push(body_form.unwrap_or_else(|| form(name, Runs::Stdin)));
                inv.nested.push(script);
            }
        }
        return;
    }
    match name {
        "eval" => {
            inv.runs.push(form(name, Runs::Code));
            if literal_args() {
                inv.nested.push(nested(&words_text(args), dialect, ctx));
            } else {
                push_unique(
                    &mut inv.dynamic,
                    Dynamic::UnknownScript {
                        program: name.into(),
                    },
                );
            }
        }
        "." | "source" => inv.runs.push(form(name, Runs::ScriptFile)),
        "trap" if args.len() >= 2 => {
            inv.runs.push(form(name, Runs::Code));
            if args[0].is_literal() {
                inv.nested.push(nested(&args[0].text, dialect, ctx));
            } else {
                push_unique(
                    &mut inv.dynamic,
                    Dynamic::UnknownScript {
                        program: name.into(),
                    },
                );
            }
        }
        "alias" => {
            let definitions: Vec<&Word> = args.iter().filter(|a| a.text.contains('=')).collect();
            if !definitions.is_empty() {
                inv.runs.push(form(name, Runs::Code));
                for d in definitions {
                    if let Some((_, value)) = d.text.split_once('=') {
                        inv.nested.push(nested(value, dialect, ctx));
                    }
                }
            }
        }
        "find" => {
            let mut i = 0;
            while i < args.len() {
                let t = args[i].text.as_str();
                if matches!(t, "-exec" | "-execdir" | "-ok" | "-okdir") {
                    inv.runs.push(option(name, t));
                    let end = args[i + 1..]
                        .iter()
                        .position(|a| matches!(a.text.as_str(), ";" | "+"))
                        .map_or(args.len(), |p| i + 1 + p);
                    let words: Vec<Word> = args[i + 1..end]
                        .iter()
                        .map(|a| match a.text.split_once("{}") {
                            Some((before, _)) => runtime_word(&a.text, before),
                            None => a.clone(),
                        })
                        .collect();
                    inner(inv, words, dialect, ctx);
                    i = end;
                }
                i += 1;
            }
        }
        "xargs" => {
            inv.runs.push(form(name, Runs::Arguments));
            let n = skip_options(
                args,
                &['a', 'd', 'E', 'I', 'L', 'n', 'P', 's'],
                &[
                    "arg-file",
                    "delimiter",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                ],
            );
            // `-I R` / `-i`: R in the command is replaced by input; otherwise input is appended.
            let replace = args[..n].iter().enumerate().find_map(|(j, a)| {
                let t = a.text.as_str();
                match t {
                    "-I" => args.get(j + 1).map(|r| r.text.clone()),
                    "-i" => Some("{}".to_string()),
                    _ if t.starts_with("-I") => Some(t[2..].to_string()),
                    _ if t.starts_with("-i") => Some(t[2..].to_string()),
                    _ if t.starts_with("--replace") => Some(
                        t.split_once('=')
                            .map_or("{}".to_string(), |(_, r)| r.to_string()),
                    ),
                    _ => None,
                }
            });
            let mut words: Vec<Word> = match &replace {
                Some(r) if !r.is_empty() => args[n..]
                    .iter()
                    .map(|a| match a.text.split_once(r.as_str()) {
                        Some((before, _)) => runtime_word(&a.text, before),
                        None => a.clone(),
                    })
                    .collect(),
                _ => args[n..].to_vec(),
            };
            if words.is_empty() {
                words.push(literal_word("echo"));
            }
            if replace.is_none() {
                words.push(runtime_word("(input)", ""));
            }
            inner(inv, words, dialect, ctx);
            inv.reads_stdin = Some(StdinReader::Code(name.to_string()));
        }
        "git" => git(args, &mut inv.runs),
        "awk" | "gawk" | "mawk" | "nawk" => inv.runs.push(form(name, Runs::Code)),
        "tee" => {
            let files = args
                .iter()
                .filter(|a| !a.is_literal() || !a.text.starts_with('-'));
            let writes: Vec<FileWrite> = files
                .filter_map(|a| write(WriteOp::Tee, a, ctx.cwd))
                .collect();
            inv.writes.extend(writes);
        }
        "[[" => {}
        _ if ARGUMENT_RUNNERS.contains(&name) => {
            inv.runs.push(form(name, Runs::Arguments));
            for (j, a) in args.iter().enumerate() {
                if j < 8 && a.is_literal() && !a.text.starts_with('-') {
                    inner(inv, args[j..].to_vec(), dialect, ctx);
                }
                if a.is_literal() && a.text.contains(char::is_whitespace) {
                    inv.nested.push(nested(&a.text, Dialect::Sh, ctx));
                }
            }
            if name == "ssh" {
                inv.reads_stdin = Some(StdinReader::Code(name.to_string()));
            }
        }
        _ => interpreter(name, args, stdin, ctx, inv),
    }
}

fn literal_word(text: &str) -> Word {
    Word {
        raw: text.to_string(),
        text: text.to_string(),
        literal_prefix: text.to_string(),
        ..Word::default()
    }
}

fn git(args: &[Word], runs: &mut Vec<RunnerForm>) {
    let mut i = 0;
    // Global options, up to the subcommand.
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if !t.starts_with('-') {
            break;
        }
        if t == "-c" || t.starts_with("--config-env") {
            runs.push(option("git", "-c"));
        } else if t.starts_with("--exec-path") {
            runs.push(option("git", "--exec-path"));
        }
        i += if matches!(
            t,
            "-c" | "-C" | "--git-dir" | "--work-tree" | "--namespace" | "--config-env"
        ) {
            2
        } else {
            1
        };
    }
    let Some(sub) = args.get(i).map(|a| a.text.as_str()) else {
        return;
    };
    let rest = &args[(i + 1).min(args.len())..];
    let has = |w: &str| rest.iter().any(|a| a.text == w);
    let has_prefix = |p: &str| rest.iter().any(|a| a.text.starts_with(p));
    match sub {
        "config" => runs.push(form(
            "git",
            Runs::Subcommand {
                name: "config".into(),
            },
        )),
        "submodule" if has("foreach") => runs.push(form(
            "git",
            Runs::Subcommand {
                name: "foreach".into(),
            },
        )),
        "bisect" if has("run") => runs.push(form("git", Runs::Subcommand { name: "run".into() })),
        "filter-branch" => runs.push(form(
            "git",
            Runs::Subcommand {
                name: "filter-branch".into(),
            },
        )),
        "rebase" if has("-x") || has_prefix("--exec") => runs.push(option("git", "--exec")),
        "difftool" | "mergetool" if has("-x") || has_prefix("--extcmd") => {
            runs.push(option("git", "--extcmd"))
        }
        "clone" | "fetch" | "pull" | "ls-remote" | "archive" | "push" | "send-pack" => {
            for o in ["--upload-pack", "--receive-pack", "--exec"] {
                if has_prefix(o) {
                    runs.push(option("git", o));
                }
            }
            if matches!(sub, "clone" | "ls-remote") && has("-u") {
                runs.push(option("git", "--upload-pack"));
            }
        }
        _ => {}
    }
}

/// Interpreters: inline code (`-c`, `-e`), a script file, or code on standard input.
fn interpreter(name: &str, args: &[Word], stdin: &Stdin, ctx: Context<'_>, inv: &mut Invocation) {
    let is_python = name.starts_with("python") || name.starts_with("pypy");
    let (inline, module, values): (&[&str], &[&str], &[char]) = if is_python {
        (&["c"], &["m"], &['W', 'X', 'Q'])
    } else {
        match name {
            "perl" | "ruby" => (&["e", "E"], &[], &['I', 'M']),
            "node" | "nodejs" | "bun" => (&["e", "p", "-eval", "-print"], &[], &['r']),
            "deno" => (&["-eval"], &[], &[]),
            "php" => (&["r"], &[], &['d', 'c']),
            "lua" | "luajit" | "Rscript" | "julia" => (&["e"], &[], &['l']),
            "tclsh" | "wish" | "irb" | "R" => (&[], &[], &[]),
            _ => return,
        }
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if !a.is_literal() || !t.starts_with('-') || t == "-" {
            break;
        }
        if t == "--" {
            i += 1;
            break;
        }
        let flags = &t[1..];
        let long = flags.strip_prefix('-');
        let hit = |set: &[&str]| match long {
            Some(l) => set.iter().any(|s| {
                s.strip_prefix('-') == Some(l)
                    || l.starts_with(&format!("{}=", s.trim_start_matches('-')))
            }),
            None => set.iter().any(|s| s.len() == 1 && flags.contains(s)),
        };
        if hit(inline) {
            inv.runs.push(option(name, &format!("-{}", inline[0])));
            return;
        }
        if hit(module) {
            inv.runs.push(option(name, "-m"));
            return;
        }
        i += if flags.len() == 1 && flags.chars().next().is_some_and(|c| values.contains(&c)) {
            2
        } else {
            1
        };
    }
    if name == "deno" && args.first().is_some_and(|a| a.text == "eval") {
        inv.runs.push(form(
            name,
            Runs::Subcommand {
                name: "eval".into(),
            },
        ));
        return;
    }
    if args.get(i).is_some() {
        inv.runs.push(form(name, Runs::ScriptFile));
        return;
    }
    match stdin_script(stdin, ctx) {
        StdinScript::Empty => inv.reads_stdin = Some(StdinReader::Code(name.to_string())),
        _ => inv.runs.push(form(name, Runs::Stdin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Invocation {
        let s = analyze(
            text,
            Dialect::Sh,
            Context {
                cwd: Some("/workspaces/p"),
                stdin: Input::Empty,
                depth: 0,
            },
        );
        assert_eq!(s.commands.len(), 1, "{text}: {:?}", s.commands);
        s.commands.into_iter().next().unwrap_or_default()
    }

    fn texts(inv: &Invocation) -> Vec<&str> {
        inv.views.iter().map(|v| v.text.as_str()).collect()
    }

    #[test]
    fn wrappers_are_seen_through() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("timeout 5 touch f", "touch", &["timeout"]),
            ("timeout -s KILL 5 touch f", "touch", &["timeout"]),
            ("nice -n 5 touch f", "touch", &["nice"]),
            ("nice -5 touch f", "touch", &["nice"]),
            ("env -i A=1 touch f", "touch", &["env"]),
            ("env -u X touch f", "touch", &["env"]),
            ("command touch f", "touch", &["command"]),
            ("exec touch f", "touch", &["exec"]),
            ("nohup touch f", "touch", &["nohup"]),
            ("stdbuf -oL touch f", "touch", &["stdbuf"]),
            ("stdbuf -o L touch f", "touch", &["stdbuf"]),
            ("time -p touch f", "touch", &["time"]),
            ("busybox touch f", "touch", &["busybox"]),
            ("/usr/bin/env /usr/bin/touch f", "touch", &["env"]),
            (
                "nice timeout 5 command touch f",
                "touch",
                &["nice", "timeout", "command"],
            ),
        ];
        for (text, program, wrappers) in cases {
            let inv = one(text);
            assert_eq!(inv.program.as_deref(), Some(*program), "{text}");
            assert_eq!(inv.wrappers, *wrappers, "{text}");
            assert!(
                texts(&inv).contains(&"touch f"),
                "{text}: {:?}",
                texts(&inv)
            );
        }
        let inv = one("command -v touch");
        assert_eq!(inv.program.as_deref(), Some("command"));
    }

    #[test]
    fn program_paths() {
        let inv = one("/usr/bin/touch f");
        assert_eq!(
            inv.views,
            [
                View {
                    text: "/usr/bin/touch f".into(),
                    prefix: None,
                    allow: true
                },
                View {
                    text: "touch f".into(),
                    prefix: None,
                    allow: true
                },
            ]
        );
        let inv = one("./touch f");
        assert!(inv.views.iter().any(|v| v.text == "touch f" && !v.allow));
    }

    #[test]
    fn runner_forms() {
        let cases: &[(&str, Runs)] = &[
            (
                "find . -exec rm {} ;",
                Runs::Option {
                    option: "-exec".into(),
                },
            ),
            ("xargs rm", Runs::Arguments),
            (
                "git -c core.pager=x log",
                Runs::Option {
                    option: "-c".into(),
                },
            ),
            (
                "git config alias.x '!rm'",
                Runs::Subcommand {
                    name: "config".into(),
                },
            ),
            (
                "python3 -c 'import os'",
                Runs::Option {
                    option: "-c".into(),
                },
            ),
            (
                "python3 -m pytest",
                Runs::Option {
                    option: "-m".into(),
                },
            ),
            ("python3 x.py", Runs::ScriptFile),
            (
                "perl -ne 'print'",
                Runs::Option {
                    option: "-e".into(),
                },
            ),
            (
                "node -e 1",
                Runs::Option {
                    option: "-e".into(),
                },
            ),
            ("awk '{print}'", Runs::Code),
            ("sudo rm x", Runs::Arguments),
            ("eval 'rm x'", Runs::Code),
            (". ./env.sh", Runs::ScriptFile),
            ("bash build.sh", Runs::ScriptFile),
        ];
        for (text, runs) in cases {
            let inv = one(text);
            assert_eq!(inv.runs.first().map(|r| &r.runs), Some(runs), "{text}");
        }
        assert!(one("git status").runs.is_empty());
        assert!(one("python3 --version")
            .runs
            .iter()
            .all(|r| r.runs != Runs::Code));
    }

    #[test]
    fn shell_bodies_are_parsed() {
        let inv = one("sh -c 'touch f; ls'");
        let body = inv.body.as_ref().map(|b| &b.script);
        let programs: Vec<_> = body
            .map(|s| {
                s.commands
                    .iter()
                    .filter_map(|c| c.program.clone())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(programs, ["touch", "ls"]);
        let inv = one("bash -ec 'touch f'");
        assert_eq!(
            inv.body.as_ref().map(|b| b.script.dialect),
            Some(Dialect::Bash)
        );
        let inv = one("sh -c \"$x\"");
        assert!(inv.dynamic.iter().any(Dynamic::hides_programs));
        let s = analyze(
            "echo touch f | sh",
            Dialect::Sh,
            Context {
                cwd: None,
                stdin: Input::Empty,
                depth: 0,
            },
        );
        assert!(s.commands[1].dynamic.iter().any(Dynamic::hides_programs));
        let s = analyze(
            "sh",
            Dialect::Sh,
            Context {
                cwd: None,
                stdin: Input::Text("touch f"),
                depth: 0,
            },
        );
        assert!(s.commands[0].body.is_some());
    }

    #[test]
    fn writes_resolve_against_cwd() {
        let inv = one("echo x > out.txt 2>&1 >/dev/null");
        assert_eq!(
            inv.writes,
            [FileWrite {
                op: WriteOp::Write,
                target: WriteTarget::Path {
                    path: "/workspaces/p/out.txt".into()
                }
            }]
        );
        let s = analyze(
            "cd /tmp && echo x > f",
            Dialect::Sh,
            Context {
                cwd: Some("/workspaces/p"),
                stdin: Input::Empty,
                depth: 0,
            },
        );
        assert!(matches!(
            s.commands[1].writes[0].target,
            WriteTarget::Relative { .. }
        ));
        let inv = one("tee -a log /workspaces/q/x");
        let targets: Vec<_> = inv.writes.iter().map(|w| w.target.path()).collect();
        assert_eq!(
            targets,
            [Some("/workspaces/p/log"), Some("/workspaces/q/x")]
        );
    }

    #[test]
    fn dynamic_views_have_prefixes() {
        let inv = one("rm -rf /$X");
        assert_eq!(inv.views[0].prefix.as_deref(), Some("rm -rf /"));
        let inv = one("$T f");
        assert_eq!(inv.views[0].prefix.as_deref(), Some(""));
        let inv = one("rm /etc/*");
        assert!(inv
            .dynamic
            .iter()
            .any(|d| matches!(d, Dynamic::Glob { .. })));
        let inv = one("rm *.txt");
        assert!(inv.dynamic.is_empty());
    }
}
