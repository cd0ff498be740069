//! What the node says while it waits to be paired, and how it reads gateway URLs.

use super::*;

#[test]
fn pairing_required_says_who_approves_and_how() {
    let k = r#"kubectl -n home patch nodepairing shrimp-0123456789ab --type merge -p '{"spec":{"approved":true}}'"#;
    let said = pairing_required("desk", "0123456789ab", Some(k));
    assert!(
        said.starts_with("pairing required: ask the owner to approve node desk (0123456789ab)")
    );
    assert!(
        said.contains("`clawops nodes approve 0123456789ab`"),
        "{said}"
    );
    assert!(said.contains(k), "{said}");
    let said = pairing_required("desk", "0123456789ab", None);
    assert!(
        said.contains("kubectl patch nodepairing <agent>-0123456789ab"),
        "{said}"
    );
    for network in ["refused", "unreachable", "error", "failed"] {
        assert!(!said.contains(network), "{said}");
    }
}

#[test]
fn gateway_urls_are_normalised() {
    assert_eq!(
        normalise_url("wss://shrimp.tailnet.ts.net").unwrap(),
        "wss://shrimp.tailnet.ts.net/"
    );
    assert_eq!(
        normalise_url("https://shrimp.example.com/").unwrap(),
        "wss://shrimp.example.com/"
    );
    assert_eq!(
        normalise_url("http://10.0.0.5").unwrap(),
        "ws://10.0.0.5:18789/"
    );
    assert_eq!(
        normalise_url("ws://127.0.0.1:9000").unwrap(),
        "ws://127.0.0.1:9000/"
    );
    assert!(
        normalise_url("shrimp.example.com")
            .unwrap_err()
            .contains("give a URL")
    );
    assert!(normalise_url("ftp://x").unwrap_err().contains("scheme ftp"));
}
