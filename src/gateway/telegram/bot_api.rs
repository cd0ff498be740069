//! The Bot API connection: an HTTP client whose timeout outlasts the long poll it asks for,
//! getMe read leniently for older self-hosted servers, and failures that name the server and
//! the cause.

use std::time::Duration;

use teloxide::{ApiError, RequestError};

/// Seconds a getUpdates call asks Telegram to hold it while there is no news.
pub const POLL_TIMEOUT: u32 = 25;

/// How long the HTTP client waits beyond a poll's hold before it gives up on the request:
/// room for a slow network, so a quiet poll ends with Telegram's empty answer, never with the
/// client cutting it off (teloxide's default 17 s client did, under a 25 s hold).
const CLIENT_MARGIN: Duration = Duration::from_secs(15);

/// How the channel long-polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polling {
    /// What getUpdates asks Telegram to hold the request for.
    pub hold: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self::new(POLL_TIMEOUT)
    }
}

impl Polling {
    pub fn new(hold_seconds: u32) -> Self {
        Self {
            hold: Duration::from_secs(hold_seconds.into()),
        }
    }

    /// The timeout of the HTTP client every Bot API call goes through.
    pub fn client_timeout(&self) -> Duration {
        self.hold + CLIENT_MARGIN
    }

    /// The HTTP client for the Bot API: teloxide's settings, with a timeout above the hold.
    pub fn client(&self) -> reqwest::Client {
        teloxide::net::default_reqwest_settings()
            .timeout(self.client_timeout())
            // As teloxide's own Bot::new: this only fails when the TLS backend cannot start.
            .build()
            .expect("HTTP client for the Bot API")
    }
}

/// What went wrong talking to the Bot API, naming the server (never the token: teloxide strips
/// it from request URLs).
#[derive(Debug, thiserror::Error)]
pub enum BotApiError {
    #[error(
        "the Bot API server at {server} refused the bot token in {token_env}: check it with @BotFather"
    )]
    TokenRefused { server: String, token_env: String },
    #[error("cannot reach the Bot API server at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error(
        "the Bot API server at {server} answered getMe with something that is not JSON; is apiUrl the server's base URL (e.g. https://api.telegram.org)?"
    )]
    NotJson { server: String },
    #[error("the Bot API server at {server} refused getMe: {description}")]
    GetMeRefused { server: String, description: String },
    #[error("the Bot API server at {server} answered getMe without result.username ({detail})")]
    NoUsername { server: String, detail: String },
    #[error("{error} (Bot API server {server})")]
    Other { server: String, error: String },
}

impl BotApiError {
    /// teloxide's error, with the cause under its wording (its network errors alone say only
    /// "error sending request").
    pub fn from_request(e: &RequestError, server: &str, token_env: &str) -> Self {
        let server = server.to_string();
        match e {
            RequestError::Api(ApiError::InvalidToken) => Self::TokenRefused {
                server,
                token_env: token_env.to_string(),
            },
            RequestError::Network(net) => {
                let mut why = vec![net.to_string()];
                let mut cause = std::error::Error::source(net.as_ref());
                while let Some(c) = cause {
                    why.push(c.to_string());
                    cause = c.source();
                }
                Self::Unreachable {
                    server,
                    cause: why.join(": "),
                }
            }
            other => Self::Other {
                server,
                error: other.to_string(),
            },
        }
    }
}

/// The bot's username from a getMe answer teloxide refused, and what teloxide missed in it.
/// Older self-hosted Bot API servers omit fields newer ones send (can_connect_to_business,
/// has_main_web_app) and teloxide's `Me` requires them; only the username matters here.
pub fn lenient_username(raw: &str, server: &str) -> Result<(String, String), BotApiError> {
    let server = server.to_string();
    let answer: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| BotApiError::NotJson {
            server: server.clone(),
        })?;
    if answer["ok"] != true {
        return Err(BotApiError::GetMeRefused {
            server,
            description: answer["description"]
                .as_str()
                .unwrap_or("no description")
                .to_string(),
        });
    }
    let detail = match serde_json::from_value::<teloxide::types::Me>(answer["result"].clone()) {
        Ok(_) => "an answer teloxide could not read".to_string(),
        Err(e) => e.to_string(),
    };
    match answer["result"]["username"].as_str() {
        Some(username) if !username.is_empty() => Ok((username.to_string(), detail)),
        _ => Err(BotApiError::NoUsername { server, detail }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_outlasts_the_poll_it_asks_for() {
        for polling in [Polling::default(), Polling::new(2), Polling::new(50)] {
            assert!(
                polling.client_timeout() >= polling.hold + Duration::from_secs(10),
                "{polling:?}"
            );
        }
        assert_eq!(Polling::default().hold, Duration::from_secs(25));
    }

    #[test]
    fn an_older_servers_get_me_still_names_the_bot() {
        let server = "http://tba.internal:8081/";
        let old = r#"{"ok":true,"result":{"id":7,"is_bot":true,"first_name":"Shrimp","username":"shrimp_bot","can_join_groups":true,"can_read_all_group_messages":false,"supports_inline_queries":false}}"#;
        let (username, missing) = lenient_username(old, server).unwrap();
        assert_eq!(username, "shrimp_bot");
        assert!(missing.contains("has_main_web_app"), "{missing}");

        let nameless = r#"{"ok":true,"result":{"id":7,"is_bot":true,"first_name":"Shrimp"}}"#;
        let e = lenient_username(nameless, server).unwrap_err().to_string();
        assert!(
            e.contains(server) && e.contains("result.username") && e.contains("missing field"),
            "{e}"
        );
        let e = lenient_username("<html>502 Bad Gateway</html>", server)
            .unwrap_err()
            .to_string();
        assert!(e.contains(server) && e.contains("not JSON"), "{e}");
        let e = lenient_username(r#"{"ok":false,"description":"Not Found"}"#, server)
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused getMe: Not Found"), "{e}");
    }
}
