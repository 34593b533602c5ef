//! `requestState`: what a server of 2026-07-28 asks a client to hand back
//! when it retries a request with the answers to its questions (MRTR).
//! Here it holds the answers given so far, bound to the request they
//! belong to and to an expiry, sealed so that a client can neither read
//! nor change it: an AEAD (XChaCha20-Poly1305, RustCrypto's
//! `chacha20poly1305`) with a key the whole deployment shares, so that a
//! retry completes on any replica. Its 192-bit random nonces need no
//! coordination between replicas.
//!
//! Wire form: `t1.` + base64url(key id (4) ‖ nonce (24) ‖ ciphertext ‖
//! tag). The key id lets a replica open states sealed with an older key
//! while it seals with the newest (rotation through `--mrtr-key-file`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "t1.";
const AAD: &[u8] = b"tether/mrtr/v1";
const KEY_ID: usize = 4;
const NONCE: usize = 24;

/// What a sealed state says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestState {
    /// The method of the request it belongs to.
    #[serde(rename = "m")]
    pub method: String,
    /// The digest of that request's own params ([`digest`]).
    #[serde(rename = "d")]
    pub digest: String,
    /// When it stops being accepted, in Unix milliseconds.
    #[serde(rename = "exp")]
    pub expires_ms: u64,
    /// The client's answers so far, by the key of the question.
    #[serde(rename = "a")]
    pub answers: Map<String, Value>,
}

/// Why a state is refused. Never answered with a new question: a client
/// whose state fails must start over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("requestState failed verification")]
    Tampered,
    #[error("requestState expired")]
    Expired,
    #[error("requestState belongs to another request")]
    Mismatch,
}

impl StateError {
    /// The label of `tether_request_state_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            StateError::Tampered => "tampered",
            StateError::Expired => "expired",
            StateError::Mismatch => "mismatch",
        }
    }
}

struct SealingKey {
    id: [u8; KEY_ID],
    cipher: XChaCha20Poly1305,
}

impl SealingKey {
    fn new(key: &[u8; 32]) -> Self {
        let hash = Sha256::digest(key);
        let mut id = [0; KEY_ID];
        id.copy_from_slice(&hash[..KEY_ID]);
        SealingKey {
            id,
            // A 32-byte slice is always a valid key.
            cipher: XChaCha20Poly1305::new_from_slice(key).expect("a 32-byte key"),
        }
    }
}

/// Seals states with the first key and opens them with any.
pub struct Sealer {
    keys: Vec<SealingKey>,
    ttl: Duration,
}

impl Sealer {
    /// A sealer with `keys` (the first seals); none is not allowed.
    pub fn new(keys: &[[u8; 32]], ttl: Duration) -> Sealer {
        assert!(!keys.is_empty(), "a sealer needs a key");
        Sealer {
            keys: keys.iter().map(SealingKey::new).collect(),
            ttl,
        }
    }

    /// A state for `method` with `digest` and `answers`, valid for the
    /// configured time from now.
    pub fn seal(&self, method: &str, digest: String, answers: Map<String, Value>) -> String {
        let state = RequestState {
            method: method.to_owned(),
            digest,
            expires_ms: now_ms().saturating_add(self.ttl.as_millis() as u64),
            answers,
        };
        // A struct of strings, numbers and JSON values always serializes.
        let plain = serde_json::to_vec(&state).expect("a state serializes");
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE];
        // Without entropy no state can be sealed safely.
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let aad = [AAD, &key.id].concat();
        let sealed = key
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .expect("sealing cannot fail for a message this small");
        let mut out = Vec::with_capacity(KEY_ID + NONCE + sealed.len());
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens `sealed` for a request of `method` whose params digest to
    /// `digest`.
    pub fn open(
        &self,
        sealed: &str,
        method: &str,
        digest: &str,
    ) -> Result<RequestState, StateError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|r| r.len() > KEY_ID + NONCE)
            .ok_or(StateError::Tampered)?;
        let (id, rest) = raw.split_at(KEY_ID);
        let (nonce, ciphertext) = rest.split_at(NONCE);
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(StateError::Tampered)?;
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| StateError::Tampered)?;
        let aad = [AAD, id].concat();
        let plain = key
            .cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| StateError::Tampered)?;
        let state: RequestState =
            serde_json::from_slice(&plain).map_err(|_| StateError::Tampered)?;
        if state.method != method || state.digest != digest {
            return Err(StateError::Mismatch);
        }
        if state.expires_ms <= now_ms() {
            return Err(StateError::Expired);
        }
        Ok(state)
    }
}

/// The digest that binds a state to its request: SHA-256 of the request's
/// own params in a canonical form (keys sorted at every level), without
/// `_meta`, `inputResponses` and `requestState`, which change between
/// rounds. Params that are not an object digest as `{}`.
///
/// Read from the borrowed params, the three keys skipped where they are:
/// nothing is cloned (a retry's params carry the whole sealed state and
/// the answers, all of which a copy would duplicate only to drop).
pub fn digest(params: &Value) -> String {
    let mut text = Vec::with_capacity(256);
    let skipped = |k: &str| matches!(k, "_meta" | "inputResponses" | "requestState");
    match params {
        Value::Object(map) => canonical_object(map, &skipped, &mut text),
        _ => text.extend_from_slice(b"{}"),
    }
    URL_SAFE_NO_PAD.encode(Sha256::digest(&text))
}

/// JSON with object keys sorted, whatever order the map keeps. serde_json
/// writes strings and scalars in its compact form, the same bytes as
/// `Value::to_string`, straight into `out`.
fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => canonical_object(map, &|_| false, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => write_json(other, out),
    }
}

/// An object's members but those `skipped`, keys sorted. serde_json's map
/// is a `BTreeMap` (iterated sorted already) unless a crate in the build
/// turns on `preserve_order`: the keys are only sorted when they are not.
fn canonical_object(map: &Map<String, Value>, skipped: &dyn Fn(&str) -> bool, out: &mut Vec<u8>) {
    let mut first = true;
    let mut member = |k: &String, v: &Value, out: &mut Vec<u8>| {
        if skipped(k) {
            return;
        }
        out.push(if first { b'{' } else { b',' });
        first = false;
        write_json(k, out);
        out.push(b':');
        canonical(v, out);
    };
    if map.keys().is_sorted() {
        for (k, v) in map {
            member(k, v, out);
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by_key(|(k, _)| *k);
        for (k, v) in members {
            member(k, v, out);
        }
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
}

fn write_json<T: Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Strings and JSON scalars always serialize, and into a Vec nothing
    // can fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealer(key: u8) -> Sealer {
        Sealer::new(&[[key; 32]], Duration::from_secs(600))
    }

    fn answers() -> Map<String, Value> {
        json!({"step1": {"action": "accept", "content": {"name": "Alice"}}})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_state_opens_with_the_same_key_for_the_same_request() {
        let s = sealer(1);
        let d = digest(&json!({"name": "t", "arguments": {"b": 1, "a": 2}}));
        let sealed = s.seal("tools/call", d.clone(), answers());
        assert!(sealed.starts_with("t1."));
        assert!(!sealed.contains("Alice"), "the answers are not readable");
        let opened = s.open(&sealed, "tools/call", &d).expect("opens");
        assert_eq!(opened.answers, answers());
        // Another replica with the same key opens it too.
        assert!(sealer(1).open(&sealed, "tools/call", &d).is_ok());
    }

    #[test]
    fn tampered_foreign_mismatched_and_expired_states_are_refused() {
        let s = sealer(1);
        let d = digest(&json!({"name": "t"}));
        let sealed = s.seal("tools/call", d.clone(), answers());
        assert_eq!(
            s.open(&format!("{sealed}-TAMPERED"), "tools/call", &d),
            Err(StateError::Tampered)
        );
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open(std::str::from_utf8(&flipped).unwrap(), "tools/call", &d),
            Err(StateError::Tampered)
        );
        assert_eq!(
            sealer(2).open(&sealed, "tools/call", &d),
            Err(StateError::Tampered)
        );
        assert_eq!(
            s.open(&sealed, "prompts/get", &d),
            Err(StateError::Mismatch)
        );
        let other = digest(&json!({"name": "other"}));
        assert_eq!(
            s.open(&sealed, "tools/call", &other),
            Err(StateError::Mismatch)
        );
        let expired =
            Sealer::new(&[[1; 32]], Duration::ZERO).seal("tools/call", d.clone(), answers());
        assert_eq!(s.open(&expired, "tools/call", &d), Err(StateError::Expired));
    }

    #[test]
    fn older_keys_still_open_while_the_newest_seals() {
        let old = sealer(1).seal("tools/call", digest(&json!({})), answers());
        let rotated = Sealer::new(&[[2; 32], [1; 32]], Duration::from_secs(600));
        assert!(
            rotated
                .open(&old, "tools/call", &digest(&json!({})))
                .is_ok()
        );
    }

    /// The digest as it was first written (a copy of the params without
    /// the three keys, canonicalized through `Value::to_string`): states
    /// sealed by a replica of an earlier build must open on this one.
    fn digest_as_first_written(params: &Value) -> String {
        fn canonical(v: &Value, out: &mut String) {
            match v {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, k) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::String(k.clone()).to_string());
                        out.push(':');
                        canonical(&map[k], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        canonical(item, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut own = params.as_object().cloned().unwrap_or_default();
        for key in ["_meta", "inputResponses", "requestState"] {
            own.remove(key);
        }
        let mut text = String::new();
        canonical(&Value::Object(own), &mut text);
        URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn the_digest_is_the_one_earlier_builds_sealed_with() {
        for params in [
            json!({"name": "t", "arguments": {"x": 1, "y": [1, {"b": 2, "a": 1}]}}),
            json!({"_meta": {"k": 1}, "requestState": "s", "inputResponses": {"a": {}}}),
            json!({"name": "\u{e9}\"\\\n\u{1}", "arguments": {"f": 1.5, "n": null, "t": true,
                   "big": 12345678901234567890u64, "neg": -3, "e": [], "o": {}}}),
            json!({"a": {"_meta": 1, "requestState": 2}, "z": "_meta"}),
            json!({}),
            json!([1, 2]),
            json!("text"),
            Value::Null,
        ] {
            assert_eq!(
                digest(&params),
                digest_as_first_written(&params),
                "{params}"
            );
        }
    }

    #[test]
    fn the_digest_ignores_key_order_and_what_changes_between_rounds() {
        let a = digest(&json!({"name": "t", "arguments": {"x": 1, "y": [1, {"b": 2, "a": 1}]}}));
        let b = digest(
            &json!({"arguments": {"y": [1, {"a": 1, "b": 2}], "x": 1}, "name": "t",
                               "_meta": {"k": 1}, "inputResponses": {}, "requestState": "s"}),
        );
        assert_eq!(a, b);
        assert_ne!(a, digest(&json!({"name": "t", "arguments": {"x": 2}})));
    }
}
