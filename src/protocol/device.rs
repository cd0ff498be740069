//! Device identity of the gateway protocol v3: an Ed25519 key per device, the device id derived
//! from it, and the connect string the device signs (reference §5.2). Pure: the key file is read
//! and written by the node host.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::util::hex;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 private key; the 32-byte seed follows it.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a public key, private key or signature could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a raw 32-byte Ed25519 key in base64url, nor an Ed25519 public key PEM")]
    PublicKey,
    #[error("not an Ed25519 private key PEM (PKCS#8)")]
    PrivateKey,
    #[error("not a 64-byte Ed25519 signature in base64url")]
    Signature,
}

/// A device id's first 12 characters, as logs, names and the owner's commands show it.
pub fn short_id(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The device id: lowercase hex SHA-256 of the raw 32-byte public key.
pub fn device_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The raw public key as sent in `device.publicKey`: unpadded base64url.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Reads `device.publicKey`: raw base64url (padded or not), or an SPKI PEM.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let text = text.trim();
    let raw = if text.starts_with("-----BEGIN") {
        let der = pem_body(text).ok_or(KeyError::PublicKey)?;
        der.strip_prefix(&SPKI_PREFIX[..])
            .ok_or(KeyError::PublicKey)?
            .to_vec()
    } else {
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| KeyError::PublicKey)?
    };
    let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::PublicKey)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::PublicKey)
}

/// The public key as an SPKI PEM, as Clawdbot's `device.json` stores it.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PUBLIC KEY", &der)
}

/// The private key as a PKCS#8 PEM, as Clawdbot's `device.json` stores it.
pub fn private_key_pem(key: &SigningKey) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PRIVATE KEY", &der)
}

/// Reads a PKCS#8 Ed25519 private key PEM.
pub fn parse_private_key_pem(text: &str) -> Result<SigningKey, KeyError> {
    let der = pem_body(text.trim()).ok_or(KeyError::PrivateKey)?;
    let seed: [u8; 32] = der
        .strip_prefix(&PKCS8_PREFIX[..])
        .ok_or(KeyError::PrivateKey)?
        .try_into()
        .map_err(|_| KeyError::PrivateKey)?;
    Ok(SigningKey::from_bytes(&seed))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn pem_body(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).ok()
}

/// What a device signs when it connects. With a nonce (the challenge's) this is the `v2`
/// string; without one, `v1`, which only local clients may still use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedConnect<'a> {
    pub device_id: &'a str,
    pub client_id: &'a str,
    pub client_mode: &'a str,
    pub role: &'a str,
    pub scopes: &'a [String],
    pub signed_at_ms: i64,
    /// The `auth.token` sent, or empty.
    pub token: &'a str,
    pub nonce: Option<&'a str>,
}

impl SignedConnect<'_> {
    /// `v2|<deviceId>|<client.id>|<client.mode>|<role>|<scopes>|<signedAtMs>|<token>|<nonce>`.
    pub fn payload(&self) -> String {
        let head = format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.device_id,
            self.client_id,
            self.client_mode,
            self.role,
            self.scopes.join(","),
            self.signed_at_ms,
            self.token
        );
        match self.nonce {
            Some(nonce) => format!("v2|{head}|{nonce}"),
            None => format!("v1|{head}"),
        }
    }

    /// The signature, base64url without padding.
    pub fn sign(&self, key: &SigningKey) -> String {
        URL_SAFE_NO_PAD.encode(key.sign(self.payload().as_bytes()).to_bytes())
    }

    /// Whether `signature` (base64url, padded or not) is `key`'s signature of this string.
    pub fn verify(&self, key: &VerifyingKey, signature: &str) -> Result<bool, KeyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(signature.trim().trim_end_matches('='))
            .map_err(|_| KeyError::Signature)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| KeyError::Signature)?;
        Ok(key
            .verify(self.payload().as_bytes(), &Signature::from_bytes(&bytes))
            .is_ok())
    }
}

/// A fresh signing key from the operating system's randomness.
pub fn generate_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 test vector 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn from_hex(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&from_hex(SEED))
    }

    #[test]
    fn the_device_id_is_the_sha256_of_the_raw_key() {
        let k = key().verifying_key();
        assert_eq!(hex(k.as_bytes()), PUBLIC);
        assert_eq!(device_id(&k), hex(&Sha256::digest(from_hex(PUBLIC))));
        assert_eq!(device_id(&k).len(), 64);
    }

    #[test]
    fn public_keys_read_back_from_base64url_padded_or_not_and_from_pem() {
        let k = key().verifying_key();
        let raw = encode_public_key(&k);
        assert!(!raw.contains('=') && !raw.contains('+') && !raw.contains('/'));
        assert_eq!(parse_public_key(&raw), Ok(k));
        assert_eq!(parse_public_key(&format!("{raw}=")), Ok(k));
        let pem = public_key_pem(&k);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert_eq!(parse_public_key(&pem), Ok(k));
        for bad in [
            "",
            "abc",
            &raw[..20],
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END",
        ] {
            assert_eq!(parse_public_key(bad), Err(KeyError::PublicKey), "{bad:?}");
        }
    }

    #[test]
    fn private_keys_round_trip_through_pkcs8_pem() {
        let pem = private_key_pem(&key());
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"));
        assert_eq!(
            parse_private_key_pem(&pem).unwrap().as_bytes(),
            key().as_bytes()
        );
        assert_eq!(
            parse_private_key_pem(&public_key_pem(&key().verifying_key())).err(),
            Some(KeyError::PrivateKey)
        );
    }

    #[test]
    fn the_signed_string_is_v2_with_a_nonce_and_v1_without() {
        let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
        let mut s = SignedConnect {
            device_id: "abc",
            client_id: "node-host",
            client_mode: "node",
            role: "node",
            scopes: &scopes,
            signed_at_ms: 1_737_150_000_000,
            token: "",
            nonce: Some("n-1"),
        };
        assert_eq!(
            s.payload(),
            "v2|abc|node-host|node|node|operator.read,operator.write|1737150000000||n-1"
        );
        s.nonce = None;
        s.token = "tok";
        assert_eq!(
            s.payload(),
            "v1|abc|node-host|node|node|operator.read,operator.write|1737150000000|tok"
        );
    }

    #[test]
    fn a_signature_verifies_only_for_its_own_string_and_key() {
        let scopes: Vec<String> = Vec::new();
        let s = SignedConnect {
            device_id: "abc",
            client_id: "node-host",
            client_mode: "node",
            role: "node",
            scopes: &scopes,
            signed_at_ms: 1,
            token: "",
            nonce: Some("n-1"),
        };
        let sig = s.sign(&key());
        assert_eq!(s.verify(&key().verifying_key(), &sig), Ok(true));
        let other = SignedConnect {
            nonce: Some("n-2"),
            ..s.clone()
        };
        assert_eq!(other.verify(&key().verifying_key(), &sig), Ok(false));
        assert_eq!(s.verify(&generate_key().verifying_key(), &sig), Ok(false));
        assert_eq!(
            s.verify(&key().verifying_key(), "not-a-signature"),
            Err(KeyError::Signature)
        );
    }
}
