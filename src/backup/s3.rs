//! S3-compatible object storage for backups: path-style PUT and GET signed with AWS Signature
//! Version 4 (what AWS S3, MinIO, Ceph RGW, Cloudflare R2 and moto accept). Credentials and the
//! endpoint come from the standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION` (default us-east-1), `AWS_ENDPOINT_URL` (default AWS's own endpoint).

use chrono::{DateTime, Utc};
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{0}: an S3 location is s3://BUCKET/KEY")]
    Location(String),
    #[error(
        "{0} is not set: S3 backups need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for storage other than AWS)"
    )]
    Credentials(&'static str),
    #[error("AWS_ENDPOINT_URL {0}: not an http(s) URL")]
    Endpoint(String),
    #[error("s3://{bucket}/{key}: cannot reach {endpoint}: {cause}")]
    Unreachable {
        bucket: String,
        key: String,
        endpoint: String,
        cause: String,
    },
    #[error("s3://{bucket}/{key}: {method} refused (HTTP {status} {code}: {message})")]
    Refused {
        bucket: String,
        key: String,
        method: &'static str,
        status: u16,
        code: String,
        message: String,
    },
}

/// `s3://bucket/key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

impl Location {
    pub fn parse(url: &str) -> Result<Self, S3Error> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error::Location(url.into()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3Error::Location(url.into()));
        }
        Ok(Self {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

pub struct S3 {
    endpoint: reqwest::Url,
    region: String,
    access_key: String,
    secret_key: SecretString,
    http: reqwest::Client,
}

/// Percent-encodes as S3 expects: everything but unreserved characters, and `/` in paths.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

use crate::util::hex::{hex, sha256_hex};

/// The innermost reason of a transport error (`Connection refused`, a DNS failure…).
fn cause(e: &reqwest::Error) -> String {
    crate::util::net_cause::chain(e)
        .last()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// The `Authorization` header of a request: `headers` are the ones to sign (`host`,
/// `x-amz-date` and `x-amz-content-sha256` among them), lower-case names.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
    at: DateTime<Utc>,
) -> String {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!(
        "{method}\n{}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}",
        uri_encode(path, true)
    );
    let date = at.format("%Y%m%d").to_string();
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        at.format("%Y%m%dT%H%M%SZ"),
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), &date);
    for part in [region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part);
    }
    let signature = hex(&hmac_sha256(&key, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
}

/// Every `<tag>…</tag>` text of an XML answer, unescaped.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|r| r.split_once(&close).map(|(v, _)| v))
        .map(|v| {
            v.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// S3's `<Code>` and `<Message>` of an error body.
fn error_of(body: &str) -> (String, String) {
    let tag = |t: &str| {
        body.split_once(&format!("<{t}>"))
            .and_then(|(_, r)| r.split_once(&format!("</{t}>")))
            .map(|(v, _)| v.to_string())
    };
    (
        tag("Code").unwrap_or_else(|| "error".into()),
        tag("Message").unwrap_or_default(),
    )
}

impl S3 {
    /// From the environment (`get` reads a variable).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, S3Error> {
        let access_key = get("AWS_ACCESS_KEY_ID")
            .filter(|v| !v.is_empty())
            .ok_or(S3Error::Credentials("AWS_ACCESS_KEY_ID"))?;
        let secret_key = get("AWS_SECRET_ACCESS_KEY")
            .filter(|v| !v.is_empty())
            .ok_or(S3Error::Credentials("AWS_SECRET_ACCESS_KEY"))?;
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = get("AWS_ENDPOINT_URL_S3")
            .or_else(|| get("AWS_ENDPOINT_URL"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let url = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or(S3Error::Endpoint(endpoint))?;
        Ok(Self {
            endpoint: url,
            region,
            access_key,
            secret_key: SecretString::from(secret_key),
            http: reqwest::Client::new(),
        })
    }

    async fn call(
        &self,
        method: &'static str,
        at: &Location,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, S3Error> {
        self.call_with(method, at, &[], body).await
    }

    /// `query`: (name, value) pairs, sent and signed in S3's canonical form.
    async fn call_with(
        &self,
        method: &'static str,
        at: &Location,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Vec<u8>, S3Error> {
        let path = if at.key.is_empty() {
            format!("/{}", at.bucket)
        } else {
            format!("/{}/{}", at.bucket, at.key)
        };
        let mut url = self.endpoint.clone();
        url.set_path(&uri_encode(&path, true));
        let mut query: Vec<(&str, &str)> = query.to_vec();
        query.sort();
        let canonical_query = query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        if !canonical_query.is_empty() {
            url.set_query(Some(&canonical_query));
        }
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let now = Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let payload = sha256_hex(&body);
        let auth = authorization(
            method,
            &path,
            &canonical_query,
            &[
                ("host", &host),
                ("x-amz-content-sha256", &payload),
                ("x-amz-date", &amz_date),
            ],
            &payload,
            &self.access_key,
            self.secret_key.expose_secret(),
            &self.region,
            now,
        );
        let req = match method {
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let resp = req
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &payload)
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .map_err(|e| S3Error::Unreachable {
                bucket: at.bucket.clone(),
                key: at.key.clone(),
                endpoint: self.endpoint.to_string(),
                cause: cause(&e),
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| S3Error::Unreachable {
            bucket: at.bucket.clone(),
            key: at.key.clone(),
            endpoint: self.endpoint.to_string(),
            cause: cause(&e),
        })?;
        if !(200..300).contains(&status) {
            let (code, message) = error_of(&String::from_utf8_lossy(&bytes));
            return Err(S3Error::Refused {
                bucket: at.bucket.clone(),
                key: at.key.clone(),
                method,
                status,
                code,
                message,
            });
        }
        Ok(bytes.to_vec())
    }

    pub async fn put(&self, at: &Location, body: Vec<u8>) -> Result<(), S3Error> {
        self.call("PUT", at, body).await.map(|_| ())
    }

    pub async fn get(&self, at: &Location) -> Result<Vec<u8>, S3Error> {
        self.call("GET", at, Vec::new()).await
    }

    pub async fn delete(&self, at: &Location) -> Result<(), S3Error> {
        self.call("DELETE", at, Vec::new()).await.map(|_| ())
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2, every page).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
        let at = Location {
            bucket: bucket.into(),
            key: String::new(),
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = &token {
                query.push(("continuation-token", t));
            }
            let body = self.call_with("GET", &at, &query, Vec::new()).await?;
            let text = String::from_utf8_lossy(&body);
            keys.extend(tags(&text, "Key"));
            token = tags(&text, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return Ok(keys);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's own example (Signature Version 4 for S3, "GET Object").
    #[test]
    fn signs_aws_documented_example() {
        let empty = sha256_hex(b"");
        let at = "2013-05-24T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let auth = authorization(
            "GET",
            "/test.txt",
            "",
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", &empty),
                ("x-amz-date", "20130524T000000Z"),
            ],
            &empty,
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            at,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's own example with a query (Signature Version 4 for S3, "GET Bucket (List Objects)").
    #[test]
    fn signs_aws_documented_list_example() {
        let empty = sha256_hex(b"");
        let at = "2013-05-24T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let auth = authorization(
            "GET",
            "/",
            "max-keys=2&prefix=J",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", &empty),
                ("x-amz-date", "20130524T000000Z"),
            ],
            &empty,
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            at,
        );
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    #[test]
    fn locations_keys_and_errors_read_as_s3_writes_them() {
        assert_eq!(
            Location::parse("s3://bk/a b/ü.tar.zst").unwrap(),
            Location {
                bucket: "bk".into(),
                key: "a b/ü.tar.zst".into()
            }
        );
        assert!(Location::parse("s3:///x").is_err() && Location::parse("/tmp/x").is_err());
        assert_eq!(uri_encode("/bk/a b/ü", true), "/bk/a%20b/%C3%BC");
        let (code, msg) = error_of(
            "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("NoSuchBucket", "The specified bucket does not exist")
        );
        let err = S3::from_env(|_| None).err().unwrap().to_string();
        assert!(err.starts_with("AWS_ACCESS_KEY_ID is not set"), "{err}");
    }
}
