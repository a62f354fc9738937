//! Pending approvals: who answers them (the app, the terminal, or nobody), their timeouts
//! (fail closed), session grants, and denying everything at once when the approver goes away.

use airlock_control::{ApprovalChoice, ApprovalRequest, EngineMessage, ResolvedBy};
use airlock_policy::{Call, Grant, GrantId, Rule, SessionGrants};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Who answers asked calls.
#[derive(Clone)]
pub enum Approver {
    /// Nobody: an ask becomes a refusal that says which rule would allow it.
    Policy,
    /// The app, over the control channel.
    Control(mpsc::UnboundedSender<EngineMessage>),
    /// A prompt on the terminal running `serve`.
    Tty,
}

/// How a pending call was settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub choice: ApprovalChoice,
    pub by: ResolvedBy,
    pub reason: Option<String>,
    /// The rule the user confirmed for `allow_always` / `allow_session`.
    pub rule: Option<String>,
}

impl Resolution {
    fn deny(by: ResolvedBy) -> Resolution {
        Resolution {
            choice: ApprovalChoice::Deny,
            by,
            reason: None,
            rule: None,
        }
    }

    pub fn is_allowed(&self) -> bool {
        self.choice != ApprovalChoice::Deny
    }
}

struct Pending {
    tx: oneshot::Sender<Resolution>,
    request: ApprovalRequest,
}

/// The approval queue of one engine.
pub struct Approvals {
    approver: Mutex<Approver>,
    pending: Mutex<HashMap<String, Pending>>,
    grants: Mutex<SessionGrants>,
    /// Terminal prompts are asked one at a time.
    tty_lock: tokio::sync::Mutex<()>,
}

impl Approvals {
    pub fn new(approver: Approver) -> Approvals {
        Approvals {
            approver: Mutex::new(approver),
            pending: Mutex::new(HashMap::new()),
            grants: Mutex::new(SessionGrants::new()),
            tty_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn approver(&self) -> Approver {
        self.approver
            .lock()
            .map(|a| a.clone())
            .unwrap_or(Approver::Policy)
    }

    /// Whether a human can be asked at all.
    pub fn has_human(&self) -> bool {
        !matches!(self.approver(), Approver::Policy)
    }

    pub fn pending_count(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Requests waiting now (for an app that attaches late).
    pub fn pending_requests(&self) -> Vec<ApprovalRequest> {
        self.pending
            .lock()
            .map(|p| p.values().map(|x| x.request.clone()).collect())
            .unwrap_or_default()
    }

    /// Asks the approver and waits, at most `timeout`; anything but an explicit allow is a deny.
    pub async fn ask(self: &Arc<Self>, request: ApprovalRequest, timeout: Duration) -> Resolution {
        match self.approver() {
            Approver::Policy => Resolution::deny(ResolvedBy::ApproverGone),
            Approver::Tty => self.ask_tty(request, timeout).await,
            Approver::Control(tx) => {
                let id = request.id.clone();
                let (done_tx, done_rx) = oneshot::channel();
                if let Ok(mut p) = self.pending.lock() {
                    p.insert(
                        id.clone(),
                        Pending {
                            tx: done_tx,
                            request: request.clone(),
                        },
                    );
                }
                if tx.send(EngineMessage::ApprovalRequest(request)).is_err() {
                    self.take(&id);
                    return Resolution::deny(ResolvedBy::ApproverGone);
                }
                let resolution = match tokio::time::timeout(timeout, done_rx).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Resolution::deny(ResolvedBy::ApproverGone),
                    Err(_) => {
                        self.take(&id);
                        Resolution::deny(ResolvedBy::Timeout)
                    }
                };
                let _ = tx.send(EngineMessage::ApprovalResolved {
                    id,
                    decision: resolution.choice,
                    by: resolution.by,
                });
                resolution
            }
        }
    }

    fn take(&self, id: &str) -> Option<Pending> {
        self.pending.lock().ok().and_then(|mut p| p.remove(id))
    }

    /// The user's answer; false if the call is no longer pending (answered once only).
    pub fn decide(
        &self,
        id: &str,
        choice: ApprovalChoice,
        reason: Option<String>,
        rule: Option<String>,
    ) -> bool {
        match self.take(id) {
            Some(p) => {
                p.tx.send(Resolution {
                    choice,
                    by: ResolvedBy::User,
                    reason,
                    rule,
                })
                .is_ok()
            }
            None => false,
        }
    }

    /// A call was cancelled by its client: drop its prompt.
    pub fn withdraw(&self, id: &str) {
        if let Some(p) = self.take(id) {
            let _ = p.tx.send(Resolution::deny(ResolvedBy::Cancelled));
            if let Approver::Control(tx) = self.approver() {
                let _ = tx.send(EngineMessage::ApprovalResolved {
                    id: id.to_string(),
                    decision: ApprovalChoice::Deny,
                    by: ResolvedBy::Cancelled,
                });
            }
        }
    }

    /// The approver went away: every pending call is denied now, and later asks fail closed.
    pub fn approver_gone(&self) {
        if let Ok(mut a) = self.approver.lock() {
            *a = Approver::Policy;
        }
        let drained: Vec<Pending> = self
            .pending
            .lock()
            .map(|mut p| p.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for p in drained {
            let _ = p.tx.send(Resolution::deny(ResolvedBy::ApproverGone));
        }
    }

    /// A session grant that covers `call`, if any.
    pub fn granted(&self, session: &str, call: &Call) -> Option<Grant> {
        self.grants
            .lock()
            .ok()
            .and_then(|g| g.matches(session, call).cloned())
    }

    /// The current grants, for one policy decision.
    pub fn grants_snapshot(&self) -> SessionGrants {
        self.grants.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn grant_session(&self, session: &str, rule: Rule) -> Option<GrantId> {
        self.grants.lock().ok().map(|mut g| g.grant(session, rule))
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.grants
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn revoke(&self, id: GrantId) -> bool {
        self.grants
            .lock()
            .map(|mut g| g.revoke(id).is_some())
            .unwrap_or(false)
    }

    pub fn forget_session(&self, session: &str) {
        if let Ok(mut g) = self.grants.lock() {
            g.forget_session(session);
        }
    }

    /// A prompt on the controlling terminal: `y` once, `s` session, `a` always, anything else deny.
    async fn ask_tty(&self, request: ApprovalRequest, timeout: Duration) -> Resolution {
        let _one_at_a_time = self.tty_lock.lock().await;
        let prompt = tty_prompt(&request, timeout);
        let answer = tokio::task::spawn_blocking(move || read_tty_line(&prompt));
        let line = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(line))) => line,
            Ok(_) => return Resolution::deny(ResolvedBy::ApproverGone),
            Err(_) => return Resolution::deny(ResolvedBy::Timeout),
        };
        let choice = match line.trim() {
            "y" | "Y" => ApprovalChoice::AllowOnce,
            "s" | "S" => ApprovalChoice::AllowSession,
            "a" | "A" => ApprovalChoice::AllowAlways,
            _ => ApprovalChoice::Deny,
        };
        Resolution {
            choice,
            by: ResolvedBy::User,
            reason: None,
            rule: None,
        }
    }
}

/// The terminal prompt for `request`: who wants to run what and why, the secrets the call's
/// programs would receive, and the choices.
fn tty_prompt(request: &ApprovalRequest, timeout: Duration) -> String {
    let secrets = if request.secrets.is_empty() {
        String::new()
    } else {
        format!(
            "\n  secrets it receives: {}",
            visible(&request.secrets.join(", "))
        )
    };
    format!(
        "\nairlock: {} wants to run {} {}\n  reason: {}{secrets}\n  [y] allow once  [s] allow for session  [a] always allow ({})  [N] deny  (denied in {}s) > ",
        visible(&request.client),
        visible(&request.tool),
        visible(&request.arguments.to_string()),
        visible(&request.reason),
        visible(&request.suggested_rule),
        timeout.as_secs()
    )
}

/// Text for the terminal with control and bidirectional-override characters as `\u{..}`
/// escapes, so nothing printed can rewrite what the user sees.
fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn read_tty_line(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufReader::new(tty).read_line(&mut line)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(id: &str) -> ApprovalRequest {
        ApprovalRequest {
            id: id.into(),
            client: "c".into(),
            client_version: None,
            session: "s".into(),
            tool: "write_file".into(),
            arguments: json!({}),
            workspace: None,
            expires_at: 0,
            reason: "r".into(),
            suggested_rule: "write_file".into(),
            diff: None,
            secrets: Vec::new(),
        }
    }

    #[tokio::test]
    async fn decisions_timeouts_and_a_vanishing_approver() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let approvals = Arc::new(Approvals::new(Approver::Control(tx)));

        let a = approvals.clone();
        let asked = tokio::spawn(async move { a.ask(request("1"), Duration::from_secs(5)).await });
        let Some(EngineMessage::ApprovalRequest(req)) = rx.recv().await else {
            panic!()
        };
        assert_eq!(req.id, "1");
        assert!(approvals.decide("1", ApprovalChoice::AllowOnce, None, None));
        assert!(
            !approvals.decide("1", ApprovalChoice::Deny, None, None),
            "answered exactly once"
        );
        assert_eq!(asked.await.unwrap().choice, ApprovalChoice::AllowOnce);

        let timed = approvals.ask(request("2"), Duration::from_millis(50)).await;
        assert_eq!(
            (timed.choice, timed.by),
            (ApprovalChoice::Deny, ResolvedBy::Timeout)
        );

        let a = approvals.clone();
        let waiting =
            tokio::spawn(async move { a.ask(request("3"), Duration::from_secs(60)).await });
        while approvals.pending_count() == 0 {
            tokio::task::yield_now().await;
        }
        approvals.approver_gone();
        let gone = waiting.await.unwrap();
        assert_eq!(
            (gone.choice, gone.by),
            (ApprovalChoice::Deny, ResolvedBy::ApproverGone)
        );
        let later = approvals.ask(request("4"), Duration::from_secs(60)).await;
        assert!(
            !later.is_allowed(),
            "fails closed once the approver is gone"
        );
    }

    #[test]
    fn the_terminal_prompt_names_the_secrets_a_call_receives() {
        let plain = tty_prompt(&request("1"), Duration::from_secs(9));
        assert!(!plain.contains("secrets"), "{plain}");
        let mut with = request("2");
        with.secrets = vec!["GITHUB_TOKEN".into(), "NPM\u{1b}[2J".into()];
        let prompt = tty_prompt(&with, Duration::from_secs(9));
        assert!(
            prompt.contains("secrets it receives: GITHUB_TOKEN, NPM\\u{1b}[2J"),
            "{prompt}"
        );
    }
}
