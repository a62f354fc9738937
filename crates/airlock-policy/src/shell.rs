//! The shell parser behind command rules: brush-parser reads a script in the `sh` or `bash`
//! dialect, and this module flattens its syntax tree into simple commands with decoded words.

use std::panic::{catch_unwind, AssertUnwindSafe};

use brush_parser::ast;
use brush_parser::word::{WordPiece, WordPieceWithSource};
use brush_parser::ParserOptions;

use crate::command::{BashFeature, Dialect, Dynamic, WriteOp};
use crate::scan;

/// Longest script text handed to the parser; longer text is not read (strictest treatment).
const MAX_SCRIPT_BYTES: usize = 128 * 1024;
/// Deepest nesting handed to the parser, which recurses per level.
const MAX_NESTING: usize = 32;

/// Variables whose value changes which program runs or what it loads: a command that sets them
/// cannot be judged by its program's name.
const OVERRIDING_VARIABLES: &[&str] = &[
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "CDPATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "GIT_EDITOR",
    "GIT_PAGER",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
];
/// Prefixes of such variables (`LD_PRELOAD`, `GIT_CONFIG_COUNT`, `BASH_FUNC_x%%` …).
const OVERRIDING_PREFIXES: &[&str] = &["LD_", "DYLD_", "GIT_CONFIG", "BASH_FUNC_"];

/// Does assigning `name` change which program runs or what it loads?
pub(crate) fn overrides_programs(name: &str) -> bool {
    OVERRIDING_VARIABLES.contains(&name) || OVERRIDING_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// One shell word after quote removal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Word {
    /// As written.
    pub raw: String,
    /// Quotes and escapes removed; dynamic parts keep their written form (`$HOME`).
    pub text: String,
    /// `text` up to the first dynamic part (all of it when there is none).
    pub literal_prefix: String,
    /// What in the word is only known at run time.
    pub dynamic: Vec<Dynamic>,
    /// Unquoted `*`, `?` or `[`: the shell may replace the word with file names.
    pub glob: bool,
    /// Bodies of `$(…)` and backquotes in the word, to be parsed as scripts.
    pub substitutions: Vec<String>,
}

impl Word {
    /// A word with no dynamic part.
    pub(crate) fn is_literal(&self) -> bool {
        self.dynamic.is_empty()
    }

    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        if self.dynamic.is_empty() {
            self.literal_prefix.push_str(s);
        }
    }

    fn dynamic(&mut self, raw: &str, why: Dynamic) {
        self.text.push_str(raw);
        if !self.dynamic.contains(&why) {
            self.dynamic.push(why);
        }
    }
}

/// Where a command's standard input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stdin {
    /// The script's own standard input (the call's `stdin`, for the top level).
    Inherited,
    /// The previous command of a pipeline.
    Pipe,
    /// `< file`.
    File(Word),
    /// `<<EOF` here-document (its body) or `<<<` here-string.
    Text(Word),
}

/// A redirection that writes to a named file (`>`, `>>`, `>|`, `<>`, `&>`, `>&file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    pub op: WriteOp,
    pub target: Word,
}

/// One simple command as written: assignments, words, redirections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    pub assignments: Vec<(String, Word)>,
    pub words: Vec<Word>,
    pub writes: Vec<Redirect>,
    pub stdin: Stdin,
    /// Words of redirections that do not write (`< file`, here-documents) that still expand:
    /// their dynamic parts and substitutions count.
    pub other_words: Vec<Word>,
}

/// A parsed script, flattened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Script {
    pub commands: Vec<SimpleCommand>,
    /// Words outside simple commands (`for` lists, `case` subjects, test expressions).
    pub loose_words: Vec<Word>,
    /// Writes of compound commands (`{ a; b; } > f`).
    pub writes: Vec<Redirect>,
    /// Problems with the script as a whole (unreadable, bash-only syntax under `sh`, …).
    pub problems: Vec<Dynamic>,
}

impl Script {
    fn failed(why: Dynamic) -> Script {
        Script {
            problems: vec![why],
            ..Script::default()
        }
    }
}

fn options(dialect: Dialect) -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        posix_mode: dialect == Dialect::Sh,
        sh_mode: dialect == Dialect::Sh,
        tilde_expansion_at_word_start: true,
        tilde_expansion_after_colon: false,
        ..ParserOptions::default()
    }
}

/// Parse `text` as a script of `dialect`. Never fails: what cannot be read is reported in
/// [`Script::problems`], which the policy treats as strictly as possible.
///
/// Nothing here knows about rules or programs: quotes and escapes are removed, parts whose value
/// is only known at run time are marked [`Dynamic`], redirections that write are listed, and the
/// bodies of `$(…)` are handed back as text for the caller to parse in turn.
pub(crate) fn parse(text: &str, dialect: Dialect) -> Script {
    if text.len() > MAX_SCRIPT_BYTES || scan::nesting_depth(text) > MAX_NESTING {
        return Script::failed(Dynamic::TooComplex);
    }
    if scan::has_overflowing_number(text) {
        return Script::failed(Dynamic::Unparsed {
            error: "a number too large for a file descriptor or directory index".into(),
        });
    }
    let opts = options(dialect);
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        brush_parser::Parser::new(std::io::Cursor::new(text.as_bytes()), &opts).parse_program()
    }));
    let program = match parsed {
        Ok(Ok(program)) => program,
        Ok(Err(e)) => {
            return Script::failed(Dynamic::Unparsed {
                error: e.to_string(),
            })
        }
        Err(_) => {
            return Script::failed(Dynamic::Unparsed {
                error: "the parser gave up".into(),
            })
        }
    };
    let mut walker = Walker {
        opts: &opts,
        dialect,
        script: Script::default(),
    };
    for list in &program.complete_commands {
        walker.list(list, &Stdin::Inherited);
    }
    let mut script = walker.script;
    if dialect == Dialect::Sh {
        if let Some(op) = scan::bash_only_operators(text) {
            script.problems.push(Dynamic::BashOnly {
                feature: BashFeature::Operator { op: op.to_string() },
            });
        }
        if scan::has_arithmetic_command(text) {
            script.problems.push(Dynamic::BashOnly {
                feature: BashFeature::ArithmeticCommand,
            });
        }
    }
    script
}

fn decode(raw: &str, opts: &ParserOptions, dialect: Dialect) -> Word {
    let mut word = Word {
        raw: raw.to_string(),
        ..Word::default()
    };
    if scan::has_overflowing_number(raw) {
        word.dynamic(
            "",
            Dynamic::Unparsed {
                error: format!("cannot read the word `{raw}`"),
            },
        );
        return word;
    }
    let pieces = catch_unwind(AssertUnwindSafe(|| brush_parser::word::parse(raw, opts)));
    match pieces {
        Ok(Ok(pieces)) => {
            let mut unquoted = String::new();
            for p in &pieces {
                piece(&mut word, &mut unquoted, p, raw, false, opts);
            }
            if has_brace_expansion(&unquoted) {
                word.dynamic(
                    "",
                    match dialect {
                        Dialect::Sh => Dynamic::BashOnly {
                            feature: BashFeature::BraceExpansion,
                        },
                        Dialect::Bash => Dynamic::BraceExpansion,
                    },
                );
            }
        }
        _ => word.dynamic(
            raw,
            Dynamic::Unparsed {
                error: format!("cannot read the word `{raw}`"),
            },
        ),
    }
    word
}

/// Add one piece to `word`. `unquoted` collects unquoted text (quoted parts become `\0`) for the
/// brace-expansion check.
fn piece(
    word: &mut Word,
    unquoted: &mut String,
    p: &WordPieceWithSource,
    raw: &str,
    quoted: bool,
    opts: &ParserOptions,
) {
    let source = raw.get(p.start_index..p.end_index).unwrap_or_default();
    match &p.piece {
        WordPiece::Text(s) => {
            word.literal(s);
            if quoted {
                unquoted.push('\0');
            } else {
                unquoted.push_str(s);
                if is_glob(s) {
                    word.glob = true;
                }
            }
        }
        WordPiece::SingleQuotedText(s) => {
            word.literal(s);
            unquoted.push('\0');
        }
        WordPiece::AnsiCQuotedText(_) => {
            word.dynamic(
                source,
                Dynamic::BashOnly {
                    feature: BashFeature::AnsiCQuote,
                },
            );
            unquoted.push('\0');
        }
        WordPiece::DoubleQuotedSequence(inner) => {
            for p in inner {
                piece(word, unquoted, p, raw, true, opts);
            }
            unquoted.push('\0');
        }
        WordPiece::GettextDoubleQuotedSequence(inner) => {
            word.dynamic(
                "",
                Dynamic::BashOnly {
                    feature: BashFeature::LocaleQuote,
                },
            );
            for p in inner {
                piece(word, unquoted, p, raw, true, opts);
            }
            unquoted.push('\0');
        }
        WordPiece::TildeExpansion(_) => {
            word.dynamic(source, Dynamic::Tilde);
            unquoted.push('\0');
        }
        WordPiece::ParameterExpansion(_) => {
            word.dynamic(
                source,
                Dynamic::Parameter {
                    expansion: source.to_string(),
                },
            );
            // `${x:-$(cmd)}`: the default value may run commands.
            if source.contains("$(") || source.contains('`') {
                let inner = source
                    .strip_prefix("${")
                    .and_then(|s| s.strip_suffix('}'))
                    .unwrap_or(source);
                let nested = decode(inner, opts, Dialect::Bash);
                word.substitutions.extend(nested.substitutions);
            }
            unquoted.push('\0');
        }
        WordPiece::CommandSubstitution(body) => {
            word.dynamic(source, Dynamic::CommandSubstitution);
            word.substitutions.push(body.clone());
            unquoted.push('\0');
        }
        WordPiece::BackquotedCommandSubstitution(body) => {
            word.dynamic(source, Dynamic::CommandSubstitution);
            word.substitutions.push(unescape_backquoted(body));
            unquoted.push('\0');
        }
        WordPiece::EscapeSequence(s) => {
            let mut chars = s.chars();
            chars.next();
            let escaped = chars.as_str();
            if escaped != "\n" {
                word.literal(escaped);
            }
            unquoted.push('\0');
        }
        WordPiece::ArithmeticExpression(expr) => {
            word.dynamic(source, Dynamic::Arithmetic);
            if expr.value.contains("$(") || expr.value.contains('`') {
                let nested = decode(&expr.value, opts, Dialect::Bash);
                word.substitutions.extend(nested.substitutions);
            }
            unquoted.push('\0');
        }
    }
}

/// Does unquoted text hold a pattern the shell expands to file names (`*`, `?`, `[…]`)? A `[`
/// without a closing `]` (`[`, `[[`) is an ordinary character.
fn is_glob(text: &str) -> bool {
    text.contains(['*', '?'])
        || text
            .find('[')
            .is_some_and(|open| text[open + 1..].contains(']'))
}

/// Inside backquotes, `\\`, `` \` `` and `\$` stand for the character itself.
fn unescape_backquoted(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if matches!(next, '\\' | '`' | '$') {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// `{a,b}` or `{1..3}` in unquoted text: bash expands it into several words, sh does not.
fn has_brace_expansion(unquoted: &str) -> bool {
    let mut rest = unquoted;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return false;
        };
        let inside = &after[..close];
        if !inside.contains('\0') && (inside.contains(',') || inside.contains("..")) {
            return true;
        }
        rest = after;
    }
    false
}

struct Walker<'a> {
    opts: &'a ParserOptions,
    dialect: Dialect,
    script: Script,
}

impl Walker<'_> {
    fn word(&self, w: &ast::Word) -> Word {
        decode(&w.value, self.opts, self.dialect)
    }

    fn loose(&mut self, w: &ast::Word) {
        let word = self.word(w);
        self.script.loose_words.push(word);
    }

    fn list(&mut self, list: &ast::CompoundList, stdin: &Stdin) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first, stdin);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p, stdin),
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, stdin: &Stdin) {
        for (i, command) in pipeline.seq.iter().enumerate() {
            let stdin = if i == 0 { stdin.clone() } else { Stdin::Pipe };
            self.command(command, &stdin);
        }
    }

    fn command(&mut self, command: &ast::Command, stdin: &Stdin) {
        match command {
            ast::Command::Simple(simple) => self.simple(simple, stdin),
            ast::Command::Compound(compound, redirects) => {
                let mut stdin = stdin.clone();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.compound_redirect(r, &mut stdin);
                    }
                }
                self.compound(compound, &stdin);
            }
            ast::Command::Function(f) => {
                self.loose(&f.fname);
                let ast::FunctionBody(body, redirects) = &f.body;
                let mut stdin = stdin.clone();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.compound_redirect(r, &mut stdin);
                    }
                }
                self.compound(body, &stdin);
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.test_expr(&test.expr);
                let mut stdin = stdin.clone();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.compound_redirect(r, &mut stdin);
                    }
                }
            }
        }
    }

    fn test_expr(&mut self, expr: &ast::ExtendedTestExpr) {
        match expr {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.test_expr(a);
                self.test_expr(b);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.test_expr(a)
            }
            ast::ExtendedTestExpr::UnaryTest(_, w) => self.loose(w),
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.loose(a);
                self.loose(b);
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand, stdin: &Stdin) {
        match compound {
            ast::CompoundCommand::Arithmetic(_) => self.script.problems.push(Dynamic::Arithmetic),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                self.script.problems.push(Dynamic::Arithmetic);
                self.list(&f.body.list, stdin);
            }
            ast::CompoundCommand::BraceGroup(g) => self.list(&g.list, stdin),
            ast::CompoundCommand::Subshell(s) => self.list(&s.list, stdin),
            ast::CompoundCommand::ForClause(f) => {
                if overrides_programs(&f.variable_name) {
                    self.script.problems.push(Dynamic::EnvOverride {
                        name: f.variable_name.clone(),
                    });
                }
                for w in f.values.iter().flatten() {
                    self.loose(w);
                }
                self.list(&f.body.list, stdin);
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.loose(&c.value);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.loose(p);
                    }
                    if let Some(body) = &item.cmd {
                        self.list(body, stdin);
                    }
                }
            }
            ast::CompoundCommand::IfClause(c) => {
                self.list(&c.condition, stdin);
                self.list(&c.then, stdin);
                for e in c.elses.iter().flatten() {
                    if let Some(condition) = &e.condition {
                        self.list(condition, stdin);
                    }
                    self.list(&e.body, stdin);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.list(&w.0, stdin);
                self.list(&w.1.list, stdin);
            }
            ast::CompoundCommand::Coprocess(c) => {
                if let Some(name) = &c.name {
                    self.loose(name);
                }
                self.command(&c.body, stdin);
            }
        }
    }

    /// A redirection of a compound command: writes are the script's; input sets `stdin`.
    fn compound_redirect(&mut self, r: &ast::IoRedirect, stdin: &mut Stdin) {
        let mut other = Vec::new();
        let mut writes = Vec::new();
        self.redirect(r, &mut writes, stdin, &mut other);
        self.script.writes.extend(writes);
        self.script.loose_words.extend(other);
    }

    fn redirect(
        &mut self,
        r: &ast::IoRedirect,
        writes: &mut Vec<Redirect>,
        stdin: &mut Stdin,
        other: &mut Vec<Word>,
    ) {
        let is_stdin = |fd: &Option<ast::IoFd>| fd.is_none_or(|fd| fd == 0);
        match r {
            ast::IoRedirect::File(fd, kind, target) => {
                let op = match kind {
                    ast::IoFileRedirectKind::Write => Some(WriteOp::Write),
                    ast::IoFileRedirectKind::Append => Some(WriteOp::Append),
                    ast::IoFileRedirectKind::Clobber => Some(WriteOp::Clobber),
                    ast::IoFileRedirectKind::ReadAndWrite => Some(WriteOp::ReadWrite),
                    ast::IoFileRedirectKind::DuplicateOutput => Some(WriteOp::Duplicate),
                    ast::IoFileRedirectKind::Read | ast::IoFileRedirectKind::DuplicateInput => None,
                };
                match target {
                    ast::IoFileRedirectTarget::Filename(w) => {
                        let word = self.word(w);
                        match op {
                            Some(op) => writes.push(Redirect { op, target: word }),
                            None if is_stdin(fd)
                                && matches!(kind, ast::IoFileRedirectKind::Read) =>
                            {
                                other.push(word.clone());
                                *stdin = Stdin::File(word);
                            }
                            None => other.push(word),
                        }
                    }
                    ast::IoFileRedirectTarget::Fd(_) => {}
                    ast::IoFileRedirectTarget::Duplicate(w) => {
                        let word = self.word(w);
                        let is_fd = word.is_literal()
                            && (word.text == "-"
                                || word
                                    .text
                                    .trim_end_matches('-')
                                    .chars()
                                    .all(|c| c.is_ascii_digit()));
                        if is_fd {
                            return;
                        }
                        match op {
                            // `>&file` (bash: stdout and stderr to the file); `>&$fd` is unknown.
                            Some(op) => writes.push(Redirect { op, target: word }),
                            None => other.push(word),
                        }
                    }
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        self.script.problems.push(Dynamic::BashOnly {
                            feature: BashFeature::ProcessSubstitution,
                        });
                        self.list(&sub.list, &Stdin::Pipe);
                    }
                }
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let body = if doc.requires_expansion {
                    let mut word = Word {
                        raw: doc.doc.value.clone(),
                        ..Word::default()
                    };
                    match catch_unwind(AssertUnwindSafe(|| {
                        brush_parser::word::parse_heredoc(&doc.doc.value, self.opts)
                    })) {
                        Ok(Ok(pieces)) => {
                            let mut unquoted = String::new();
                            for p in &pieces {
                                piece(&mut word, &mut unquoted, p, &doc.doc.value, true, self.opts);
                            }
                        }
                        _ => word.dynamic(
                            &doc.doc.value,
                            Dynamic::Unparsed {
                                error: "cannot read the here-document".into(),
                            },
                        ),
                    }
                    word
                } else {
                    Word {
                        raw: doc.doc.value.clone(),
                        text: doc.doc.value.clone(),
                        literal_prefix: doc.doc.value.clone(),
                        ..Word::default()
                    }
                };
                other.push(body.clone());
                if is_stdin(fd) {
                    *stdin = Stdin::Text(body);
                }
            }
            ast::IoRedirect::HereString(fd, w) => {
                let word = self.word(w);
                other.push(word.clone());
                if is_stdin(fd) {
                    *stdin = Stdin::Text(word);
                }
            }
            ast::IoRedirect::OutputAndError(w, append) => {
                let target = self.word(w);
                let op = if *append {
                    WriteOp::AppendWithErrors
                } else {
                    WriteOp::WriteWithErrors
                };
                writes.push(Redirect { op, target });
            }
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, stdin: &Stdin) {
        let mut command = SimpleCommand {
            assignments: Vec::new(),
            words: Vec::new(),
            writes: Vec::new(),
            stdin: stdin.clone(),
            other_words: Vec::new(),
        };
        let prefix = simple.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = simple.suffix.iter().flat_map(|s| s.0.iter());
        for item in prefix {
            self.item(item, &mut command, true);
        }
        if let Some(w) = &simple.word_or_name {
            let word = self.word(w);
            command.words.push(word);
        }
        for item in suffix {
            self.item(item, &mut command, false);
        }
        self.script.commands.push(command);
    }

    fn item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        command: &mut SimpleCommand,
        prefix: bool,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => {
                let mut stdin = command.stdin.clone();
                self.redirect(r, &mut command.writes, &mut stdin, &mut command.other_words);
                command.stdin = stdin;
            }
            ast::CommandPrefixOrSuffixItem::Word(w) => {
                let word = self.word(w);
                command.words.push(word);
            }
            ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, w) => {
                if !prefix {
                    // `export A=1`, `local x=$(…)`: an argument like any other.
                    let word = self.word(w);
                    command.words.push(word);
                    return;
                }
                let name = match &assignment.name {
                    ast::AssignmentName::VariableName(n) => n.clone(),
                    ast::AssignmentName::ArrayElementName(n, _) => n.clone(),
                };
                let value = match &assignment.value {
                    ast::AssignmentValue::Scalar(v) => self.word(v),
                    ast::AssignmentValue::Array(_) => {
                        let mut word = self.word(w);
                        word.dynamic(
                            "",
                            Dynamic::BashOnly {
                                feature: BashFeature::Array,
                            },
                        );
                        word
                    }
                };
                command.assignments.push((name, value));
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                self.script.problems.push(Dynamic::BashOnly {
                    feature: BashFeature::ProcessSubstitution,
                });
                self.list(&sub.list, &Stdin::Pipe);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &Script) -> Vec<Vec<String>> {
        script
            .commands
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn quotes_and_escapes_are_removed() {
        let s = parse("'touch' \"a b\" t\\ouch c\\ d", Dialect::Sh);
        assert_eq!(words(&s), [["touch", "a b", "touch", "c d"]]);
        assert!(s.problems.is_empty());
        assert!(s.commands[0].words.iter().all(Word::is_literal));
    }

    #[test]
    fn expansions_are_dynamic() {
        let s = parse(
            "echo $HOME ${x:-$(id)} $(date) `whoami` $((1+2)) ~/x pre$X",
            Dialect::Sh,
        );
        let c = &s.commands[0];
        assert!(c.words[0].is_literal());
        let kinds: Vec<_> = c.words[1..].iter().map(|w| w.dynamic[0].clone()).collect();
        assert!(matches!(kinds[0], Dynamic::Parameter { .. }));
        assert!(matches!(kinds[1], Dynamic::Parameter { .. }));
        assert_eq!(c.words[2].substitutions, ["id"]);
        assert_eq!(kinds[2], Dynamic::CommandSubstitution);
        assert_eq!(c.words[3].substitutions, ["date"]);
        assert_eq!(c.words[4].substitutions, ["whoami"]);
        assert_eq!(kinds[4], Dynamic::Arithmetic);
        assert_eq!(kinds[5], Dynamic::Tilde);
        assert_eq!(c.words[7].literal_prefix, "pre");
        assert_eq!(c.words[7].text, "pre$X");
    }

    #[test]
    fn redirections() {
        let s = parse("echo x > a 2>&1 >> b 2>/dev/null < in", Dialect::Sh);
        let c = &s.commands[0];
        let targets: Vec<_> = c
            .writes
            .iter()
            .map(|r| (r.op, r.target.text.as_str()))
            .collect();
        assert_eq!(
            targets,
            [
                (WriteOp::Write, "a"),
                (WriteOp::Append, "b"),
                (WriteOp::Write, "/dev/null")
            ]
        );
        assert!(matches!(&c.stdin, Stdin::File(w) if w.text == "in"));
        let s = parse("{ a; b; } > out", Dialect::Sh);
        assert_eq!(s.writes.len(), 1);
        assert_eq!(words(&s), [["a"], ["b"]]);
    }

    #[test]
    fn pipes_and_heredocs_set_stdin() {
        let s = parse("echo hi | sh", Dialect::Sh);
        assert_eq!(s.commands[1].stdin, Stdin::Pipe);
        let s = parse("sh <<EOF\ntouch f\nEOF\n", Dialect::Sh);
        assert!(matches!(&s.commands[0].stdin, Stdin::Text(w) if w.text == "touch f\n"));
    }

    #[test]
    fn dialects_differ() {
        let s = parse("echo x &>f", Dialect::Sh);
        assert!(s
            .problems
            .iter()
            .any(|p| matches!(p, Dynamic::BashOnly { .. })));
        let s = parse("echo x &>f", Dialect::Bash);
        assert!(s.problems.is_empty());
        assert_eq!(s.commands[0].writes[0].op, WriteOp::WriteWithErrors);
        let s = parse("touch {a,b}", Dialect::Sh);
        assert!(matches!(
            s.commands[0].words[1].dynamic[0],
            Dynamic::BashOnly {
                feature: BashFeature::BraceExpansion
            }
        ));
        let s = parse("find . -exec ls {} ;", Dialect::Sh);
        assert!(s.commands[0].words.iter().all(Word::is_literal));
        let s = parse("echo $'\\x74ouch'", Dialect::Sh);
        assert!(!s.commands[0].words[1].is_literal());
    }

    #[test]
    fn unreadable_input_is_a_problem_not_a_panic() {
        for text in [
            "99999999999>x",
            "echo ~+99999999999999999999",
            "echo 'unterminated",
            "a=(1 2)",
        ] {
            let s = parse(text, Dialect::Sh);
            assert!(!s.problems.is_empty(), "{text}");
        }
        let deep = format!("{}ls{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(parse(&deep, Dialect::Sh).problems, [Dynamic::TooComplex]);
    }
}
