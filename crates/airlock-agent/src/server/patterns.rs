//! Gitignore-like glob sets for a root's `hide` and `protect` settings, and for glob filters.
//! A pattern without `/` matches a name at any depth; one with `/` matches the root-relative path.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled set of gitignore-like patterns.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// Patterns without a slash, matched against single names.
    names: GlobSet,
    /// Patterns with a slash, matched against whole relative paths.
    paths: GlobSet,
    empty: bool,
}

impl Patterns {
    /// Patterns as a user glob filter reads them: one with a slash is anchored at the root.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        Self::build(patterns, false, false)
    }

    /// Patterns as `hide` and `protect` read them: one with a slash but none in front
    /// (`.git/hooks`) also matches at any depth (`sub/.git/hooks`), so nested copies of a
    /// guarded path are guarded too; `/.git/hooks` stays anchored at the root. On a root whose
    /// file system ignores case, `case_insensitive` matches names case-folded (`.ENVRC` is
    /// the same file as `.envrc` there).
    pub fn guard(patterns: &[String], case_insensitive: bool) -> Result<Self, String> {
        Self::build(patterns, true, case_insensitive)
    }

    fn build(patterns: &[String], any_depth: bool, case_insensitive: bool) -> Result<Self, String> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let mut empty = true;
        for raw in patterns {
            let p = raw.trim();
            let p = p.strip_suffix('/').unwrap_or(p);
            if p.is_empty() {
                continue;
            }
            let (anchored, p) = match p.strip_prefix('/') {
                Some(rest) => (true, rest),
                None => (false, p),
            };
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .case_insensitive(case_insensitive)
                .build()
                .map_err(|e| format!("bad pattern `{raw}`: {e}"))?;
            if anchored || p.contains('/') {
                paths.add(glob);
                if any_depth && !anchored && !p.starts_with("**/") {
                    let deep = GlobBuilder::new(&format!("**/{p}"))
                        .literal_separator(true)
                        .backslash_escape(true)
                        .case_insensitive(case_insensitive)
                        .build()
                        .map_err(|e| format!("bad pattern `{raw}`: {e}"))?;
                    paths.add(deep);
                }
            } else {
                names.add(glob);
            }
            empty = false;
        }
        Ok(Patterns {
            names: names.build().map_err(|e| e.to_string())?,
            paths: paths.build().map_err(|e| e.to_string())?,
            empty,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether one entry matches: its `name`, or its `rel` path from the root.
    pub fn matches_entry(&self, rel: &str, name: &str) -> bool {
        !self.empty && (self.names.is_match(name) || self.paths.is_match(rel))
    }

    /// Whether the path `comps` (relative to the root) or any directory above it matches:
    /// a matching directory covers everything below it.
    pub fn matches_path<S: AsRef<str>>(&self, comps: &[S]) -> bool {
        if self.empty {
            return false;
        }
        let mut rel = String::new();
        for c in comps {
            let c = c.as_ref();
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(c);
            if self.names.is_match(c) || self.paths.is_match(&rel) {
                return true;
            }
        }
        false
    }
}

/// A single user glob (for `glob` and `grep`'s filter) with the same slash rule.
#[derive(Debug, Clone)]
pub struct UserGlob {
    set: Patterns,
}

impl UserGlob {
    pub fn new(pattern: &str) -> Result<Self, String> {
        Ok(UserGlob {
            set: Patterns::new(&[pattern.to_string()])?,
        })
    }

    /// Whether the entry at `rel` (relative to the searched directory) named `name` matches.
    pub fn is_match(&self, rel: &str, name: &str) -> bool {
        self.set.matches_entry(rel, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Patterns {
        Patterns::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn name_patterns_match_at_any_depth() {
        let set = p(&[".env", "*.pem"]);
        assert!(set.matches_path(&[".env"]));
        assert!(set.matches_path(&["a", "b", ".env"]));
        assert!(set.matches_path(&["keys", "x.pem"]));
        assert!(!set.matches_path(&["a", "env"]));
    }

    #[test]
    fn slash_patterns_are_root_relative_and_cover_below() {
        let set = p(&["secrets/", "/build/out", "config/*.key"]);
        assert!(set.matches_path(&["secrets", "x"]));
        assert!(set.matches_path(&["build", "out", "deep", "file"]));
        assert!(!set.matches_path(&["src", "build", "out"]));
        assert!(set.matches_path(&["config", "a.key"]));
        assert!(!set.matches_path(&["config", "sub", "a.key"]));
    }

    #[test]
    fn guards_fold_case_only_when_the_root_does() {
        let list = [
            ".envrc".to_string(),
            ".git/hooks".to_string(),
            "APP/.env".to_string(),
        ];
        let exact = Patterns::guard(&list, false).unwrap();
        let folded = Patterns::guard(&list, true).unwrap();
        for path in [
            &[".ENVRC"][..],
            &["sub", ".Git", "HOOKS", "x"],
            &["app", ".ENV"],
        ] {
            assert!(!exact.matches_path(path), "{path:?}");
            assert!(folded.matches_path(path), "{path:?}");
        }
    }

    #[test]
    fn empty_set_matches_nothing() {
        let set = p(&[]);
        assert!(!set.matches_path(&["anything"]));
        assert!(set.is_empty());
    }
}
