//! Expiry of TLS certificates: the notAfter of a PEM chain's leaf, and the finding it makes.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{Finding, Severity};
use crate::crd::cron::PatrolCheck;

/// Why a `tls.crt` gave no notAfter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM CERTIFICATE block found")]
    NoPemBlock,
    #[error("PEM CERTIFICATE block has no END line")]
    UnterminatedPem,
    #[error("PEM CERTIFICATE block is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("certificate DER is truncated at {0}")]
    Truncated(&'static str),
    #[error("certificate DER has an unsupported length encoding at {0}")]
    BadLength(&'static str),
    #[error("certificate DER has unexpected tag 0x{found:02x} at {element}")]
    UnexpectedTag { element: &'static str, found: u8 },
    #[error("certificate notAfter {0:?} is not a valid UTCTime or GeneralizedTime")]
    BadTime(String),
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The notAfter of the first certificate in a PEM bundle: in a kubernetes.io/tls `tls.crt` that
/// is the leaf, and the leaf is what stops serving when it expires.
pub fn leaf_not_after(pem: &[u8]) -> Result<DateTime<Utc>, CertError> {
    not_after(&first_certificate_der(pem)?)
}

fn first_certificate_der(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let text = String::from_utf8_lossy(pem);
    let start = text.find(BEGIN).ok_or(CertError::NoPemBlock)? + BEGIN.len();
    let len = text[start..].find(END).ok_or(CertError::UnterminatedPem)?;
    let body: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const EXPLICIT_0: u8 = 0xa0;

/// A minimal DER reader. We need one field, notAfter, which sits at a fixed place in the
/// TBSCertificate prefix; walking that prefix is a few dozen lines that are easy to audit, where
/// an X.509 parser crate would be a large dependency for a single date.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    /// The next element as (tag, contents); `element` names it in errors.
    fn next(&mut self, element: &'static str) -> Result<(u8, &'a [u8]), CertError> {
        let truncated = || CertError::Truncated(element);
        let (&tag, rest) = self.rest.split_first().ok_or_else(truncated)?;
        let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
        let (len, rest) = match first {
            0x00..=0x7f => (usize::from(first), rest),
            // Four length bytes cover any certificate and still fit a 32-bit usize; 0x80 is
            // BER's indefinite length, which DER forbids.
            0x81..=0x84 => {
                let (bytes, rest) = rest
                    .split_at_checked(usize::from(first & 0x7f))
                    .ok_or_else(truncated)?;
                let len = bytes.iter().fold(0, |n, &b| (n << 8) | usize::from(b));
                (len, rest)
            }
            _ => return Err(CertError::BadLength(element)),
        };
        let (contents, rest) = rest.split_at_checked(len).ok_or_else(truncated)?;
        self.rest = rest;
        Ok((tag, contents))
    }

    fn expect(&mut self, tag: u8, element: &'static str) -> Result<Der<'a>, CertError> {
        match self.next(element)? {
            (found, contents) if found == tag => Ok(Der { rest: contents }),
            (found, _) => Err(CertError::UnexpectedTag { element, found }),
        }
    }
}

fn not_after(der: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let mut cert = Der { rest: der }.expect(SEQUENCE, "Certificate")?;
    let mut tbs = cert.expect(SEQUENCE, "tbsCertificate")?;
    // v1 certificates leave the version out.
    if tbs.rest.first() == Some(&EXPLICIT_0) {
        tbs.next("version")?;
    }
    tbs.expect(INTEGER, "serialNumber")?;
    tbs.expect(SEQUENCE, "signature")?;
    tbs.expect(SEQUENCE, "issuer")?;
    let mut validity = tbs.expect(SEQUENCE, "validity")?;
    validity.next("notBefore")?;
    let (tag, time) = validity.next("notAfter")?;
    parse_time(tag, time)
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows.
fn parse_time(tag: u8, bytes: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let bad = || CertError::BadTime(String::from_utf8_lossy(bytes).into_owned());
    let want = match tag {
        UTC_TIME => 12,
        GENERALIZED_TIME => 14,
        found => {
            return Err(CertError::UnexpectedTag {
                element: "notAfter",
                found,
            });
        }
    };
    let digits = match bytes.split_last() {
        Some((b'Z', digits)) if digits.len() == want && digits.iter().all(u8::is_ascii_digit) => {
            digits
        }
        _ => return Err(bad()),
    };
    let full = match tag {
        // RFC 5280 4.1.2.5.1: two-digit years from 50 are 19YY, the rest 20YY.
        UTC_TIME => [if digits[0] >= b'5' { b"19" } else { b"20" }, digits].concat(),
        _ => digits.to_vec(),
    };
    let field = |at: usize, len: usize| {
        full[at..at + len]
            .iter()
            .fold(0, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    NaiveDate::from_ymd_opt(field(0, 4) as i32, field(4, 2), field(6, 2))
        .and_then(|d| d.and_hms_opt(field(8, 2), field(10, 2), field(12, 2)))
        .map(|t| t.and_utc())
        .ok_or_else(bad)
}

/// The finding for a certificate ending at `not_after`, or None while more than `days` days
/// remain. Under two days is critical: that is too little time to wait for a renewal to happen
/// on its own.
pub fn expiry_finding(
    subject: &str,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
    days: u32,
    action: &str,
) -> Option<Finding> {
    let left = not_after - now;
    if left > TimeDelta::days(i64::from(days)) {
        return None;
    }
    let when = not_after.format("%Y-%m-%d %H:%M UTC");
    let (severity, problem) = if left <= TimeDelta::zero() {
        let ago = day_count((now - not_after).num_days());
        (
            Severity::Critical,
            format!("certificate expired {ago} ago ({when})"),
        )
    } else {
        let severity = if left < TimeDelta::days(2) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let within = day_count(left.num_days());
        (
            severity,
            format!("certificate expires in {within} ({when})"),
        )
    };
    Some(Finding::new(
        severity,
        PatrolCheck::Certificates,
        subject,
        problem,
        action,
    ))
}

fn day_count(days: i64) -> String {
    match days {
        0 => "less than a day".to_string(),
        1 => "1 day".to_string(),
        n => format!("{n} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // Generated with OpenSSL 3.0 (`openssl req -x509 -days N`); dates read back with
    // `openssl x509 -noout -enddate`.
    /// P-256, notAfter=Nov 18 08:26:21 2036 GMT (UTCTime), 0x82 lengths.
    const EC_LEAF: &str = include_str!("testdata/ec-leaf.pem");
    /// P-256, notAfter=Dec 16 08:26:21 2067 GMT (GeneralizedTime).
    const EC_2067: &str = include_str!("testdata/ec-2067.pem");
    /// RSA 2048, notAfter=Nov 21 08:26:21 2027 GMT, 0x82 lengths with a larger tbsCertificate.
    const RSA_LEAF: &str = include_str!("testdata/rsa-leaf.pem");
    /// Ed25519 v1 certificate (no version field), notAfter=Aug 17 08:26:49 2029 GMT, 0x81 lengths.
    const ED25519_V1: &str = include_str!("testdata/ed25519-v1.pem");
    /// RSA_LEAF followed by EC_LEAF.
    const BUNDLE: &str = include_str!("testdata/bundle.pem");
    const PUBLIC_KEY: &str = include_str!("testdata/ec-public-key.pem");

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn der_of(pem: &str) -> Vec<u8> {
        first_certificate_der(pem.as_bytes()).unwrap()
    }

    fn pem_of(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("{BEGIN}\n{b64}\n{END}\n")
    }

    #[test]
    fn reads_not_after_of_each_key_type() {
        let cases = [
            (EC_LEAF, utc(2036, 11, 18, 8, 26, 21)),
            (EC_2067, utc(2067, 12, 16, 8, 26, 21)),
            (RSA_LEAF, utc(2027, 11, 21, 8, 26, 21)),
            (ED25519_V1, utc(2029, 8, 17, 8, 26, 49)),
        ];
        for (pem, want) in cases {
            assert_eq!(leaf_not_after(pem.as_bytes()), Ok(want), "{pem}");
        }
    }

    #[test]
    fn bundle_gives_the_leaf_not_the_chain() {
        assert_eq!(
            leaf_not_after(BUNDLE.as_bytes()),
            Ok(utc(2027, 11, 21, 8, 26, 21))
        );
    }

    #[test]
    fn pem_with_crlf_and_leading_text_is_accepted() {
        let pem = format!("subject=CN=ec\r\n{}", EC_LEAF.replace('\n', "\r\n"));
        assert_eq!(
            leaf_not_after(pem.as_bytes()),
            Ok(utc(2036, 11, 18, 8, 26, 21))
        );
    }

    #[test]
    fn not_pem_is_no_block() {
        assert_eq!(
            leaf_not_after(b"\x00\xffnot a certificate"),
            Err(CertError::NoPemBlock)
        );
        assert_eq!(leaf_not_after(b""), Err(CertError::NoPemBlock));
    }

    #[test]
    fn non_certificate_block_only_is_no_block() {
        assert_eq!(
            leaf_not_after(PUBLIC_KEY.as_bytes()),
            Err(CertError::NoPemBlock)
        );
    }

    #[test]
    fn missing_end_line_is_reported() {
        let cut = &EC_LEAF[..EC_LEAF.find(END).unwrap()];
        assert_eq!(
            leaf_not_after(cut.as_bytes()),
            Err(CertError::UnterminatedPem)
        );
    }

    #[test]
    fn garbage_base64_is_reported() {
        let pem = format!("{BEGIN}\nnot*base64!!\n{END}\n");
        let err = leaf_not_after(pem.as_bytes()).unwrap_err();
        assert!(matches!(err, CertError::Base64(_)), "{err:?}");
        assert!(err.to_string().contains("base64"), "{err}");
    }

    #[test]
    fn truncated_der_names_the_element() {
        let der = der_of(EC_LEAF);
        assert_eq!(
            leaf_not_after(pem_of(&der[..100]).as_bytes()),
            Err(CertError::Truncated("Certificate"))
        );
        // Consistent lengths that stop after the signature algorithm.
        let tbs = [INTEGER, 1, 1, SEQUENCE, 0];
        let der = [&[SEQUENCE, 7, SEQUENCE, 5][..], &tbs].concat();
        assert_eq!(
            leaf_not_after(pem_of(&der).as_bytes()),
            Err(CertError::Truncated("issuer"))
        );
    }

    #[test]
    fn every_prefix_of_every_fixture_is_an_error_not_a_panic() {
        for pem in [EC_LEAF, EC_2067, RSA_LEAF, ED25519_V1] {
            let der = der_of(pem);
            for n in 0..der.len() {
                assert!(leaf_not_after(pem_of(&der[..n]).as_bytes()).is_err(), "{n}");
            }
        }
    }

    #[test]
    fn unexpected_tag_is_reported() {
        let mut der = der_of(EC_LEAF);
        der[0] = INTEGER;
        let err = leaf_not_after(pem_of(&der).as_bytes()).unwrap_err();
        assert_eq!(
            err,
            CertError::UnexpectedTag {
                element: "Certificate",
                found: INTEGER
            }
        );
        assert_eq!(
            err.to_string(),
            "certificate DER has unexpected tag 0x02 at Certificate"
        );
    }

    #[test]
    fn long_form_lengths_up_to_four_bytes() {
        for (header, len) in [
            (&[0x04, 0x81, 0x80][..], 0x80),
            (&[0x04, 0x82, 0x01, 0x00][..], 0x100),
            (&[0x04, 0x83, 0x01, 0x00, 0x00][..], 0x1_0000),
            (&[0x04, 0x84, 0x00, 0x01, 0x00, 0x01][..], 0x1_0001),
        ] {
            let input = [header, &vec![7; len], &[0xff][..]].concat();
            let mut der = Der { rest: &input };
            let (tag, contents) = der.next("test").unwrap();
            assert_eq!((tag, contents.len()), (0x04, len));
            assert_eq!(der.rest, [0xff]);
        }
        let mut indefinite = Der {
            rest: &[SEQUENCE, 0x80, 0, 0],
        };
        assert_eq!(indefinite.next("test"), Err(CertError::BadLength("test")));
        let mut huge = Der {
            rest: &[SEQUENCE, 0x84, 0xff, 0xff, 0xff, 0xff, 0],
        };
        assert_eq!(huge.next("test"), Err(CertError::Truncated("test")));
    }

    #[test]
    fn time_forms() {
        assert_eq!(
            parse_time(UTC_TIME, b"500101000000Z"),
            Ok(utc(1950, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse_time(UTC_TIME, b"491231235959Z"),
            Ok(utc(2049, 12, 31, 23, 59, 59))
        );
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20600101000000Z"),
            Ok(utc(2060, 1, 1, 0, 0, 0))
        );
        for (tag, bad) in [
            (UTC_TIME, &b"20600101000000Z"[..]),
            (GENERALIZED_TIME, b"600101000000Z"),
            (UTC_TIME, b"261321000000Z"),
            (UTC_TIME, b"260101000000"),
            (UTC_TIME, b"2601+1000000Z"),
            (GENERALIZED_TIME, b"20260101000000.5Z"),
            (UTC_TIME, b""),
        ] {
            assert!(
                matches!(parse_time(tag, bad), Err(CertError::BadTime(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_time(INTEGER, b"\x02\x01\x00"),
            Err(CertError::UnexpectedTag {
                element: "notAfter",
                found: INTEGER
            })
        );
    }

    const ACTION: &str = "kubectl -n web describe certificate site";

    fn finding_in(left: TimeDelta) -> Option<Finding> {
        let now = utc(2026, 11, 21, 12, 0, 0);
        expiry_finding("secret web/site-tls", now + left, now, 14, ACTION)
    }

    #[test]
    fn plenty_of_time_is_no_finding() {
        assert_eq!(finding_in(TimeDelta::days(30)), None);
        assert_eq!(
            finding_in(TimeDelta::days(14) + TimeDelta::seconds(1)),
            None
        );
    }

    #[test]
    fn a_few_days_left_is_a_warning() {
        let f = finding_in(TimeDelta::days(5)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.check, PatrolCheck::Certificates);
        assert_eq!(f.subject, "secret web/site-tls");
        assert_eq!(
            f.problem,
            "certificate expires in 5 days (2026-11-26 12:00 UTC)"
        );
        assert_eq!(f.action, ACTION);
    }

    #[test]
    fn under_two_days_is_critical() {
        let f = finding_in(TimeDelta::days(1)).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.problem,
            "certificate expires in 1 day (2026-11-22 12:00 UTC)"
        );
        let f = finding_in(TimeDelta::hours(3)).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.problem.contains("in less than a day"), "{}", f.problem);
    }

    #[test]
    fn expired_is_critical() {
        let f = finding_in(-TimeDelta::days(3)).unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.problem,
            "certificate expired 3 days ago (2026-11-18 12:00 UTC)"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// Real certificates with their DER edited anywhere (lengths, tags, dates), and PEM text
        /// edited anywhere: a date or an error, never a panic.
        #[test]
        fn fuzz_certificates(edits in crate::util::fuzz::edits(), which in 0usize..3, in_der in proptest::bool::ANY) {
            let pem = [EC_LEAF, EC_2067, RSA_LEAF][which];
            let input = if in_der {
                pem_of(&crate::util::fuzz::apply_bytes(&der_of(pem), &edits))
            } else {
                crate::util::fuzz::apply(pem, &edits)
            };
            let _ = leaf_not_after(input.as_bytes());
        }
    }
}
