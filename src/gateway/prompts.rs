//! Questions to the owner with buttons (Telegram inline keyboards): each open prompt has an id,
//! the messages it was sent as, and the action its answer runs. The feature that asks registers
//! the action; the channel that gets the button press only looks the prompt up, so neither has
//! to know the other.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

/// One button: its label and the key its press reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub label: &'static str,
    pub key: &'static str,
}

/// What an answer does, given the prompt id, the key pressed and who pressed it; returns the
/// outcome shown in place of the buttons.
pub type Action = Box<dyn FnOnce(&str, &str, String) -> BoxFuture<'static, String> + Send>;

/// A chat of a channel: where a question came from, so its prompts go back there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub channel: String,
    pub chat: i64,
}

/// Where a prompt was sent: channel name, chat, message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub channel: String,
    pub chat: i64,
    pub message: i32,
}

struct Entry {
    text: String,
    choices: Vec<Choice>,
    action: Action,
    sent: Vec<Sent>,
}

/// The answer of a prompt: what to show in place of its buttons, and where.
pub struct Answered {
    pub text: String,
    pub sent: Vec<Sent>,
}

#[derive(Default)]
pub struct Prompts {
    open: Mutex<HashMap<String, Entry>>,
}

/// `callback_data` of a button: `<prompt id>:<key>` (Telegram allows 64 bytes).
pub fn callback_data(id: &str, key: &str) -> String {
    format!("{id}:{key}")
}

impl Prompts {
    /// Opens a prompt; returns its id.
    pub fn open(&self, text: String, choices: Vec<Choice>, action: Action) -> String {
        let id = crate::util::hex(&rand::random::<[u8; 4]>());
        self.open.lock().expect("prompts lock").insert(
            id.clone(),
            Entry {
                text,
                choices,
                action,
                sent: Vec::new(),
            },
        );
        id
    }

    /// The text and buttons of an open prompt.
    pub fn get(&self, id: &str) -> Option<(String, Vec<Choice>)> {
        self.open
            .lock()
            .expect("prompts lock")
            .get(id)
            .map(|e| (e.text.clone(), e.choices.clone()))
    }

    /// Records a message the prompt was sent as.
    pub fn sent(&self, id: &str, sent: Sent) {
        if let Some(e) = self.open.lock().expect("prompts lock").get_mut(id) {
            e.sent.push(sent);
        }
    }

    /// Answers the prompt named in `data` with its key, on behalf of `by`: runs its action
    /// once. None when the prompt is closed already or the key is not one of its buttons.
    pub async fn answer(&self, data: &str, by: String) -> Option<Answered> {
        let (id, key) = data.split_once(':')?;
        let entry = {
            let mut open = self.open.lock().expect("prompts lock");
            let valid = open
                .get(id)
                .is_some_and(|e| e.choices.iter().any(|c| c.key == key));
            if !valid {
                return None;
            }
            open.remove(id).expect("checked above")
        };
        let outcome = (entry.action)(id, key, by).await;
        Some(Answered {
            text: format!("{}\n\n{outcome}", entry.text),
            sent: entry.sent,
        })
    }

    /// Closes a prompt without an answer (answered elsewhere, or timed out), showing `outcome`.
    pub fn close(&self, id: &str, outcome: &str) -> Option<Answered> {
        let entry = self.open.lock().expect("prompts lock").remove(id)?;
        Some(Answered {
            text: format!("{}\n\n{outcome}", entry.text),
            sent: entry.sent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YES_NO: [Choice; 2] = [
        Choice {
            label: "Yes",
            key: "y",
        },
        Choice {
            label: "No",
            key: "n",
        },
    ];

    #[tokio::test]
    async fn a_prompt_is_answered_once_with_one_of_its_keys() {
        let p = Prompts::default();
        let id = p.open(
            "Run it?".into(),
            YES_NO.to_vec(),
            Box::new(|_, key, by| {
                let key = key.to_string();
                Box::pin(async move { format!("{key} by {by}") })
            }),
        );
        p.sent(
            &id,
            Sent {
                channel: "telegram".into(),
                chat: 1,
                message: 7,
            },
        );
        assert!(
            p.answer(&callback_data(&id, "maybe"), "me".into())
                .await
                .is_none()
        );
        let a = p
            .answer(&callback_data(&id, "y"), "me".into())
            .await
            .unwrap();
        assert_eq!(a.text, "Run it?\n\ny by me");
        assert_eq!(a.sent[0].message, 7);
        assert!(
            p.answer(&callback_data(&id, "y"), "me".into())
                .await
                .is_none(),
            "once"
        );
        assert!(p.answer("no-colon", "me".into()).await.is_none());
    }

    #[test]
    fn a_closed_prompt_cannot_be_answered() {
        let p = Prompts::default();
        let id = p.open(
            "Q".into(),
            YES_NO.to_vec(),
            Box::new(|_, _, _| Box::pin(async { String::new() })),
        );
        assert_eq!(p.close(&id, "timed out").unwrap().text, "Q\n\ntimed out");
        assert!(p.get(&id).is_none());
        assert!(callback_data(&id, "y").len() <= 64);
    }
}
