//! Fixture keys: committed private keys (PEM) and a shared secret, so tokens can
//! be minted at run time and never expire in the repository.

use std::collections::HashMap;
use std::path::Path;

use erpgate::{decode_b64url, encode_b64url};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexEntry {
    name: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

enum Material {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
    Hmac(Vec<u8>),
}

/// One fixture key, bound to one algorithm and `kid`.
pub struct FixtureKey {
    /// The fixture's name in vectors.
    pub name: String,
    /// Its JWA algorithm.
    pub alg: String,
    /// Its `kid`, if any.
    pub kid: Option<String>,
    material: Material,
}

/// Every fixture key.
pub struct Fixtures {
    keys: HashMap<String, FixtureKey>,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Fixtures {
    /// Loads `keys.json` and the PEM files beside it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        // One trait (pkcs8's) serves the RSA, P-256 and Ed25519 keys.
        use rsa::pkcs8::DecodePrivateKey as _;
        let index: Vec<IndexEntry> = serde_json::from_str(&read(&dir.join("keys.json"))?)
            .map_err(|e| format!("keys.json: {e}"))?;
        let mut keys = HashMap::new();
        for entry in index {
            let material = match (&entry.file, &entry.secret) {
                (Some(file), None) => {
                    let pem = read(&dir.join(file))?;
                    match entry.alg.get(..2) {
                        Some("RS" | "PS") => Material::Rsa(Box::new(
                            rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                                .map_err(|e| format!("{file}: {e}"))?,
                        )),
                        Some("ES") => Material::Ec(
                            p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
                                .map_err(|e| format!("{file}: {e}"))?,
                        ),
                        Some("Ed") => Material::Ed(
                            ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
                                .map_err(|e| format!("{file}: {e}"))?,
                        ),
                        _ => return Err(format!("{}: unknown alg {}", entry.name, entry.alg)),
                    }
                }
                (None, Some(secret)) => Material::Hmac(
                    decode_b64url(secret).ok_or_else(|| format!("{}: bad secret", entry.name))?,
                ),
                _ => {
                    return Err(format!(
                        "{}: give exactly one of file or secret",
                        entry.name
                    ));
                }
            };
            keys.insert(
                entry.name.clone(),
                FixtureKey {
                    name: entry.name,
                    alg: entry.alg,
                    kid: entry.kid,
                    material,
                },
            );
        }
        Ok(Self { keys })
    }

    /// A key by name.
    pub fn key(&self, name: &str) -> Result<&FixtureKey, String> {
        self.keys
            .get(name)
            .ok_or_else(|| format!("no fixture key {name:?}"))
    }

    /// The fixture keys shipped in `tests/vectors/keys`.
    pub fn load_default() -> Result<Self, String> {
        Self::load(&crate::repo_root().join("tests/vectors/keys"))
    }

    /// Mints an access token: header `{alg, kid, typ: at+jwt}`, these claims,
    /// signed by the named key.
    pub fn mint(&self, key: &str, claims: &Value) -> Result<String, String> {
        let fixture = self.key(key)?;
        let mut header = json!({ "alg": fixture.alg, "typ": "at+jwt" });
        if let Some(kid) = &fixture.kid {
            header["kid"] = json!(kid);
        }
        self.sign_compact(key, &header, claims)
    }

    /// The header of a DPoP proof (RFC 9449 §4.2) by the named key:
    /// `{typ: dpop+jwt, alg, jwk}` with the key's bare public members.
    pub fn dpop_header(&self, key: &str) -> Result<Value, String> {
        let key = self.key(key)?;
        let mut jwk = key.public_jwk()?;
        if let Some(members) = jwk.as_object_mut() {
            for extra in ["use", "alg", "kid"] {
                members.remove(extra);
            }
        }
        Ok(json!({ "typ": "dpop+jwt", "alg": key.alg, "jwk": jwk }))
    }

    /// A compact JWS of `header` and `claims`, signed by the named key.
    pub fn sign_compact(
        &self,
        key: &str,
        header: &Value,
        claims: &Value,
    ) -> Result<String, String> {
        let input = format!(
            "{}.{}",
            encode_b64url(header.to_string().as_bytes()),
            encode_b64url(claims.to_string().as_bytes())
        );
        let signature = self.key(key)?.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", encode_b64url(&signature)))
    }

    /// A JWKS of the named keys' public halves.
    pub fn jwks(&self, names: &[&str]) -> Result<Value, String> {
        let keys: Result<Vec<Value>, String> = names
            .iter()
            .map(|n| self.key(n).and_then(FixtureKey::public_jwk))
            .collect();
        Ok(json!({ "keys": keys? }))
    }
}

impl FixtureKey {
    /// The public JWK, with `alg`, `use` and `kid`.
    pub fn public_jwk(&self) -> Result<Value, String> {
        let mut jwk = Map::new();
        match &self.material {
            Material::Rsa(key) => {
                use rsa::traits::PublicKeyParts as _;
                jwk.insert("kty".into(), "RSA".into());
                jwk.insert("n".into(), encode_b64url(&key.n().to_bytes_be()).into());
                jwk.insert("e".into(), encode_b64url(&key.e().to_bytes_be()).into());
            }
            Material::Ec(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err("EC point without coordinates".into());
                };
                jwk.insert("kty".into(), "EC".into());
                jwk.insert("crv".into(), "P-256".into());
                jwk.insert("x".into(), encode_b64url(x).into());
                jwk.insert("y".into(), encode_b64url(y).into());
            }
            Material::Ed(key) => {
                jwk.insert("kty".into(), "OKP".into());
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert(
                    "x".into(),
                    encode_b64url(key.verifying_key().as_bytes()).into(),
                );
            }
            Material::Hmac(_) => {
                return Err(format!("{}: a shared secret has no public JWK", self.name));
            }
        }
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), self.alg.clone().into());
        if let Some(kid) = &self.kid {
            jwk.insert("kid".into(), kid.clone().into());
        }
        Ok(Value::Object(jwk))
    }

    /// The public key as a DER SubjectPublicKeyInfo, PEM-encoded (for the
    /// HS256-with-public-key confusion attack).
    pub fn public_pem(&self) -> Result<String, String> {
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        match &self.material {
            Material::Rsa(key) => key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| e.to_string()),
            _ => Err(format!("{}: public PEM only for RSA fixtures", self.name)),
        }
    }

    /// Signs `input` with this key's algorithm.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
        match (&self.material, self.alg.as_str()) {
            (Material::Rsa(key), "RS256") => Ok(rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(
                (**key).clone(),
            )
            .sign(input)
            .to_vec()),
            (Material::Rsa(key), "RS384") => Ok(rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(
                (**key).clone(),
            )
            .sign(input)
            .to_vec()),
            (Material::Rsa(key), "RS512") => Ok(rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(
                (**key).clone(),
            )
            .sign(input)
            .to_vec()),
            (Material::Rsa(key), "PS256") => Ok(rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(
                (**key).clone(),
            )
            .sign_with_rng(&mut rand::thread_rng(), input)
            .to_vec()),
            (Material::Ec(key), "ES256") => {
                let sig: p256::ecdsa::Signature = key.sign(input);
                Ok(sig.to_bytes().to_vec())
            }
            (Material::Ed(key), "EdDSA") => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(input).to_bytes().to_vec())
            }
            (Material::Hmac(secret), alg) => hmac(alg, secret, input),
            (_, alg) => Err(format!("{}: cannot sign {alg}", self.name)),
        }
    }
}

/// HMAC over `input` with an arbitrary secret.
pub fn hmac(alg: &str, secret: &[u8], input: &[u8]) -> Result<Vec<u8>, String> {
    use hmac::{Hmac, Mac};
    macro_rules! mac {
        ($h:ty) => {{
            let mut m = Hmac::<$h>::new_from_slice(secret).map_err(|e| e.to_string())?;
            m.update(input);
            Ok(m.finalize().into_bytes().to_vec())
        }};
    }
    match alg {
        "HS256" => mac!(sha2::Sha256),
        "HS384" => mac!(sha2::Sha384),
        "HS512" => mac!(sha2::Sha512),
        other => Err(format!("not an HMAC algorithm: {other}")),
    }
}
