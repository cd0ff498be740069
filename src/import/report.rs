//! What an import did with each key: mapped, not needed in clawops, or not carried over (with
//! what to do), and secret values that are still placeholders. Printed at the end; `--strict`
//! fails on anything not carried over and on placeholders.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Not carried over: the user must act.
    NotCarried,
    /// A secret value that is a placeholder (`CHANGE_ME`…): the user must put the real one.
    Placeholder,
    /// Clawops does this another way, or not at all by design: nothing to do.
    NotNeeded,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    pub kind: Kind,
    /// Where it came from: `clawdbot.json: channels.telegram.streamMode`, `cron/jobs.json: …`.
    pub key: String,
    pub what: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub notes: Vec<Note>,
}

impl Report {
    pub fn not_carried(&mut self, key: impl Into<String>, what: impl Into<String>) {
        self.push(Kind::NotCarried, key, what);
    }

    pub fn placeholder(&mut self, key: impl Into<String>, what: impl Into<String>) {
        self.push(Kind::Placeholder, key, what);
    }

    pub fn not_needed(&mut self, key: impl Into<String>, what: impl Into<String>) {
        self.push(Kind::NotNeeded, key, what);
    }

    fn push(&mut self, kind: Kind, key: impl Into<String>, what: impl Into<String>) {
        self.notes.push(Note {
            kind,
            key: key.into(),
            what: what.into(),
        });
    }

    /// What `--strict` refuses: anything not carried over, any placeholder.
    pub fn blocking(&self) -> usize {
        self.notes
            .iter()
            .filter(|n| n.kind != Kind::NotNeeded)
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut notes = self.notes.clone();
        notes.sort();
        for (kind, title) in [
            (Kind::NotCarried, "Not carried over (do this yourself):"),
            (
                Kind::Placeholder,
                "Placeholders (put the real value in the Secret):",
            ),
            (Kind::NotNeeded, "Not needed in clawops:"),
        ] {
            let of_kind: Vec<&Note> = notes.iter().filter(|n| n.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            writeln!(f, "{title}")?;
            for n in of_kind {
                writeln!(f, "  - {}: {}", n.key, n.what)?;
            }
        }
        Ok(())
    }
}
