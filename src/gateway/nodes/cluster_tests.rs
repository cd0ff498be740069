//! NodePairing names, policies and phases, and what admits a device.

use super::*;

#[test]
fn names_and_policies_follow_the_resource() {
    assert_eq!(name_for("shrimp", &"a".repeat(64)), "shrimp-aaaaaaaaaaaa");
    let p = policy_of(&ExecPolicy {
        security: ExecSecurity::Full,
        ask: ExecAsk::Always,
        ask_fallback: ExecSecurity::Full,
        allowlist: vec![],
    });
    assert_eq!(
        (p.security, p.ask, p.ask_fallback),
        (Security::Full, Ask::Always, Security::Full)
    );
    assert_eq!(policy_of(&ExecPolicy::default()), Policy::default());
}

#[test]
fn a_node_that_goes_unapproved_is_revoked_not_disconnected() {
    assert_eq!(phase_on(true, true), NodePhase::Connected);
    assert_eq!(phase_on(false, true), NodePhase::Disconnected);
    assert_eq!(phase_on(false, false), NodePhase::Revoked);
    assert_eq!(phase_on(true, false), NodePhase::Revoked);
}

#[test]
fn only_an_approved_pairing_of_the_same_key_admits() {
    let mut np = NodePairing::new(
        "n",
        NodePairingSpec {
            agent_ref: "shrimp".into(),
            node_id: "a".repeat(64),
            public_key: "k".repeat(43),
            display_name: None,
            approved: true,
            exec: ExecPolicy::default(),
        },
    );
    assert!(admits(&np, &"k".repeat(43)));
    assert!(!admits(&np, &"j".repeat(43)), "another key");
    np.spec.approved = false;
    assert!(!admits(&np, &"k".repeat(43)));
}
