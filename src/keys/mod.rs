//! Signing keys: generated on first start, persisted in the store, parsed once into signers and
//! verifiers (never per request), and published as a JWKS (RFC 7517) by `kid`.
//!
//! Access tokens are ES256 (cheap to sign); ID tokens default to RS256 (OIDC Core §15.1 makes it
//! the one algorithm every RP must accept) and can be ES256 or EdDSA per client.

use std::collections::HashMap;

use bytes::Bytes;
use std::fmt;
use std::str::FromStr;

use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{EdDSA, JwsHeader, JwsSigner, JwsVerifier, ES256, RS256};
use serde::Serialize;

use crate::store::{KeyStore, SigningKeyRecord, StoreError};

/// The JWS algorithms Tessera signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Rs256,
    Es256,
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                format!("unsupported signing algorithm {s:?} (use RS256, ES256 or EdDSA)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kid: &str, alg: &str, created_at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.into(),
            alg: alg.into(),
            private_pem: String::new(),
            created_at,
        }
    }

    #[test]
    fn a_superseded_key_is_published_until_its_tokens_expire() {
        let records = vec![
            record("old", "ES256", 0),
            record("new", "ES256", 100),
            record("rsa", "RS256", 0),
        ];
        let kids =
            |keys: &[SigningKeyRecord]| keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        let lifetimes = Lifetimes {
            publish_ahead: 20,
            longest_token_ttl: 60,
        };
        // "new" takes over at 120, so "old" signed tokens until then.
        let (published, retired) = partition(records.clone(), 179, lifetimes);
        assert_eq!(kids(&published), ["old", "new", "rsa"]);
        assert!(retired.is_empty());
        let (published, retired) = partition(records, 180, lifetimes);
        assert_eq!(kids(&published), ["new", "rsa"]);
        assert_eq!(kids(&retired), ["old"]);
    }

    #[test]
    fn a_new_key_signs_only_once_it_has_been_published_long_enough() {
        let ring_at = |signing_since| {
            let records = [
                generate(SigningAlg::Es256, 0).unwrap(),
                generate(SigningAlg::Es256, 100).unwrap(),
            ];
            let ring = KeyRing::from_records(&records, signing_since).unwrap();
            let token = ring
                .sign(SigningAlg::Es256, "JWT", &serde_json::json!({}))
                .unwrap();
            let kid = |r: &SigningKeyRecord| r.kid.clone();
            (signer_kid(&token), records.each_ref().map(kid))
        };
        let (signer, [old, _]) = ring_at(99);
        assert_eq!(signer, old, "published, not yet signing");
        let (signer, [_, new]) = ring_at(100);
        assert_eq!(signer, new);
        // On the first start every key is new: the oldest signs at once.
        let (signer, [old, _]) = ring_at(-1);
        assert_eq!(signer, old);
    }

    fn signer_kid(token: &str) -> String {
        let header = token.split('.').next().unwrap();
        let json =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap();
        serde_json::from_slice::<serde_json::Value>(&json).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Corrupt {
        kid: String,
        source: josekit::JoseError,
    },
    #[error("JOSE operation failed: {0}")]
    Jose(#[from] josekit::JoseError),
}

/// A token failed verification. Deliberately without detail: callers answer `invalid_token`.
#[derive(Debug, thiserror::Error)]
#[error("token signature, algorithm or type is not acceptable")]
pub struct InvalidSignature;

struct SigningKey {
    alg: SigningAlg,
    kid: String,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
    public_jwk: Jwk,
}

/// Every published key, and the newest one of each algorithm as the active signer.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    active: HashMap<SigningAlg, usize>,
    jwks_json: Bytes,
}

/// How long keys stay published around their time of signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A new key is published this long before it signs: the JWKS cache lifetime, so relying
    /// parties that cache the JWKS know it before they see a token it signed.
    pub publish_ahead: i64,
    /// The longest lifetime of a signed token: a key stays published this long after its
    /// successor took over.
    pub longest_token_ttl: i64,
}

impl Lifetimes {
    pub fn of(config: &crate::config::Config) -> Self {
        Lifetimes {
            // Another instance publishes a new key only at its next reload: count that too.
            publish_ahead: (config.keys.publish_ahead + config.keys.reload_interval).as_secs()
                as i64,
            longest_token_ttl: config.lifetimes.longest_signed_token().as_secs() as i64,
        }
    }
}

/// Which stored keys are still published at `now`: the newest of each algorithm, and older ones
/// until every token they signed has expired, i.e. `longest_token_ttl` after their successor
/// took over. `records` come in insertion order (oldest first); so do both halves returned.
pub fn partition(
    records: Vec<SigningKeyRecord>,
    now: i64,
    lifetimes: Lifetimes,
) -> (Vec<SigningKeyRecord>, Vec<SigningKeyRecord>) {
    let longest_token_ttl = lifetimes.longest_token_ttl;
    // Records are in insertion order, so a key's successor is the next record of its algorithm.
    let superseded_at = |index: usize| {
        let alg = &records[index].alg;
        records[index + 1..]
            .iter()
            .find(|r| &r.alg == alg)
            .map(|r| r.created_at + lifetimes.publish_ahead)
    };
    let (mut published, mut retired) = (Vec::new(), Vec::new());
    for (index, record) in records.iter().enumerate() {
        match superseded_at(index) {
            Some(at) if at + longest_token_ttl <= now => retired.push(record.clone()),
            _ => published.push(record.clone()),
        }
    }
    (published, retired)
}

/// Adds a new active key for every algorithm (`tessera keys rotate`); returns the new records.
pub async fn rotate(
    store: &(dyn KeyStore + Send + Sync),
    now: i64,
) -> Result<Vec<SigningKeyRecord>, KeyError> {
    let mut added = Vec::new();
    for alg in SigningAlg::ALL {
        let record = generate(alg, now)?;
        store.insert_signing_key(&record).await?;
        added.push(record);
    }
    Ok(added)
}

/// Generates a fresh key pair for `alg` as a storable record.
pub fn generate(alg: SigningAlg, now: i64) -> Result<SigningKeyRecord, KeyError> {
    let private_pem = match alg {
        SigningAlg::Rs256 => RS256.generate_key_pair(2048)?.to_pem_private_key(),
        SigningAlg::Es256 => ES256.generate_key_pair()?.to_pem_private_key(),
        SigningAlg::EdDsa => EdDSA
            .generate_key_pair(EdCurve::Ed25519)?
            .to_pem_private_key(),
    };
    Ok(SigningKeyRecord {
        kid: crate::secret::generate()[..16].to_string(),
        alg: alg.as_str().to_string(),
        private_pem: String::from_utf8(private_pem).expect("PEM is ASCII"),
        created_at: now,
    })
}

fn parse(record: &SigningKeyRecord) -> Result<SigningKey, KeyError> {
    let corrupt = |source| KeyError::Corrupt {
        kid: record.kid.clone(),
        source,
    };
    let alg: SigningAlg = record.alg.parse().map_err(|_| {
        corrupt(josekit::JoseError::UnsupportedSignatureAlgorithm(
            anyhow::anyhow!("{}", record.alg),
        ))
    })?;
    let pem = record.private_pem.as_bytes();
    let (mut public_jwk, signer, verifier): (Jwk, Box<dyn JwsSigner>, Box<dyn JwsVerifier>) =
        match alg {
            SigningAlg::Rs256 => {
                let public = RsaKeyPair::from_pem(pem)
                    .map_err(corrupt)?
                    .to_jwk_public_key();
                let verifier = RS256.verifier_from_jwk(&public).map_err(corrupt)?;
                let signer = RS256.signer_from_pem(pem).map_err(corrupt)?;
                (public, Box::new(signer), Box::new(verifier))
            }
            SigningAlg::Es256 => {
                let pair = EcKeyPair::from_pem(pem, Some(EcCurve::P256)).map_err(corrupt)?;
                let public = pair.to_jwk_public_key();
                let verifier = ES256.verifier_from_jwk(&public).map_err(corrupt)?;
                let signer = ES256.signer_from_pem(pem).map_err(corrupt)?;
                (public, Box::new(signer), Box::new(verifier))
            }
            SigningAlg::EdDsa => {
                let public = EdKeyPair::from_pem(pem)
                    .map_err(corrupt)?
                    .to_jwk_public_key();
                let verifier = EdDSA.verifier_from_jwk(&public).map_err(corrupt)?;
                let signer = EdDSA.signer_from_pem(pem).map_err(corrupt)?;
                (public, Box::new(signer), Box::new(verifier))
            }
        };
    public_jwk.set_key_id(&record.kid);
    public_jwk.set_algorithm(alg.as_str());
    public_jwk.set_key_use("sig");
    Ok(SigningKey {
        alg,
        kid: record.kid.clone(),
        signer,
        verifier,
        public_jwk,
    })
}

impl KeyRing {
    /// Loads the published keys, first generating one for any algorithm that has none.
    pub async fn load_or_generate(
        store: &(dyn KeyStore + Send + Sync),
        lifetimes: Lifetimes,
    ) -> Result<Self, KeyError> {
        let now = crate::clock::now();
        let mut records = store.signing_keys().await?;
        for alg in SigningAlg::ALL {
            if !records.iter().any(|r| r.alg == alg.as_str()) {
                let record = generate(alg, now)?;
                store.insert_signing_key(&record).await?;
                tracing::info!(kid = %record.kid, %alg, "generated signing key");
                records.push(record);
            }
        }
        let (published, _) = partition(records, now, lifetimes);
        Self::from_records(&published, now - lifetimes.publish_ahead)
    }

    /// Builds the ring from published records ordered oldest first: of each algorithm, the
    /// newest key created by `signing_since` signs (keys published later only verify until
    /// then), or the oldest one when none is that old (the first start).
    pub fn from_records(
        records: &[SigningKeyRecord],
        signing_since: i64,
    ) -> Result<Self, KeyError> {
        let keys = records.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
        let mut active: HashMap<SigningAlg, usize> = HashMap::new();
        for (index, (key, record)) in keys.iter().zip(records).enumerate() {
            let ready = record.created_at <= signing_since;
            if ready || !active.contains_key(&key.alg) {
                active.insert(key.alg, index);
            }
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| serde_json::Value::Object(k.public_jwk.as_ref().clone())).collect::<Vec<_>>()
        });
        Ok(KeyRing {
            keys,
            active,
            jwks_json: serde_json::to_vec(&jwks).expect("JWKS serializes").into(),
        })
    }

    /// The JWK Set document, serialized once; cloning it copies nothing.
    pub fn jwks_json(&self) -> Bytes {
        self.jwks_json.clone()
    }

    /// Signs `claims` as a compact JWS with the active key of `alg`, with `typ` in the header.
    pub fn sign(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let key = &self.keys[self.active[&alg]];
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&key.kid);
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            key.signer.as_ref(),
        )?)
    }

    /// Whether one of the published keys has this `kid`.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// Verifies a compact JWS signed by one of our keys of `alg` whose header `typ` is `typ`;
    /// returns the payload. Claims (exp, iss, …) are the caller's to check.
    pub fn verify(
        &self,
        token: &str,
        alg: SigningAlg,
        typ: &str,
    ) -> Result<Vec<u8>, InvalidSignature> {
        let (payload, header) = josekit::jws::deserialize_compact_with_selector(token, |header| {
            let key = header
                .key_id()
                .and_then(|kid| self.keys.iter().find(|k| k.kid == kid && k.alg == alg));
            Ok(key.map(|k| k.verifier.as_ref()))
        })
        .map_err(|_| InvalidSignature)?;
        if header.token_type() != Some(typ) {
            return Err(InvalidSignature);
        }
        Ok(payload)
    }
}
