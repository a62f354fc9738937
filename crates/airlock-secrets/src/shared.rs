//! The process-wide redactor: every secret value and decoy the process has handed out, so that
//! logs and results are redacted against all of them, whoever learned them first.

use std::sync::{LazyLock, Mutex, RwLock};

use crate::redact::{Redactor, RedactorBuilder};

/// A redactor that learns: values are only ever added (a sandbox started before a rotation may
/// still hold the old value), and the [`Redactor`] is rebuilt — its automaton with every
/// encoded form — only when something new is learned. Reading it is a lock and a clone.
#[derive(Debug, Default)]
pub struct SharedRedactor {
    known: Mutex<RedactorBuilder>,
    current: RwLock<Option<Redactor>>,
}

static GLOBAL: LazyLock<SharedRedactor> = LazyLock::new(SharedRedactor::new);

/// The process-wide [`SharedRedactor`], the one [`RedactingMakeWriter`] uses by default.
///
/// [`RedactingMakeWriter`]: crate::RedactingMakeWriter
pub fn global() -> &'static SharedRedactor {
    &GLOBAL
}

impl SharedRedactor {
    /// Knows nothing yet (token shapes only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns named values; `true` when any was new (and the redactor was rebuilt).
    pub fn learn<I, N, V>(&self, secrets: I) -> bool
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        self.update(|b| {
            secrets.into_iter().fold(false, |new, (n, v)| {
                b.add(n.as_ref(), v.as_ref(), false) | new
            })
        })
    }

    /// Learns a decoy (see [`RedactorBuilder::decoy`]); `true` when it was new.
    pub fn learn_decoy(&self, name: &str, value: &str) -> bool {
        self.update(|b| b.add(name, value, true))
    }

    /// The redactor for everything learned so far.
    pub fn current(&self) -> Redactor {
        if let Some(r) = self.read() {
            return r;
        }
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        // Built under the `known` lock, so a concurrent `learn` cannot be overwritten.
        if let Some(r) = self.read() {
            return r;
        }
        let fresh = known.build();
        self.store(fresh.clone());
        fresh
    }

    fn update(&self, add: impl FnOnce(&mut RedactorBuilder) -> bool) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let new = add(&mut known);
        if new || self.read().is_none() {
            self.store(known.build());
        }
        new
    }

    fn read(&self) -> Option<Redactor> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn store(&self, redactor: Redactor) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(redactor);
    }
}
