//! Certificate check: TLS Secrets and cert-manager Certificates expiring within the threshold,
//! and Certificates cert-manager cannot renew.

use chrono::{DateTime, Utc};

use super::facts::CertFacts;
use super::qualified;
use crate::crd::cron::PatrolCheck;
use crate::patrol::certs::expiry_finding;
use crate::patrol::{Finding, Part, Severity};

pub fn check(certs: &[CertFacts], days: u32, now: DateTime<Utc>) -> Part {
    let mut part = Part::default();
    // A Secret written by a Certificate is reported once, as the Certificate.
    let managed: Vec<(&str, &str)> = certs
        .iter()
        .filter_map(|c| Some((c.namespace.as_str(), c.secret_name.as_deref()?)))
        .collect();
    let mut checked = 0;
    for c in certs {
        if c.source == "secret" && managed.contains(&(c.namespace.as_str(), c.name.as_str())) {
            continue;
        }
        checked += 1;
        let subject = format!("{} {}", c.source, qualified(&c.namespace, &c.name));
        let action = if c.source == "certificate" {
            format!("kubectl -n {} describe certificate {}", c.namespace, c.name)
        } else {
            format!(
                "kubectl -n {} get secret {} -o jsonpath='{{.data.tls\\.crt}}' | base64 -d | openssl x509 -noout -enddate -subject",
                c.namespace, c.name
            )
        };
        if let Some(problem) = &c.problem {
            part.findings.push(Finding::new(
                Severity::Warning,
                PatrolCheck::Certificates,
                &subject,
                problem.clone(),
                &action,
            ));
        }
        if let Some(f) = c
            .not_after
            .and_then(|t| expiry_finding(&subject, t, now, days, &action))
        {
            part.findings.push(f);
        }
    }
    part.facts.push(format!(
        "certificates: {checked} checked, threshold {days} days"
    ));
    part
}
