//! RFC 9180 Appendix A.2 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), base
//! mode, checked against exactly the suite keyward's envelopes use; and keyward's KEM against
//! the `hpke` crate's own X25519 KEM, as an independent implementation.
#![allow(clippy::unwrap_used)] // test helpers

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey,
    channel::Kem,
    envelope::hpke_base::{self, Aead, Kdf},
};
use rand_core::{CryptoRng, RngCore};
use serde_json::Value;

/// Hands out fixed bytes: lets the test choose HPKE's ephemeral `ikmE`.
struct Fixed(Vec<u8>);
impl RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        unimplemented!()
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "test RNG exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Fixed {}

fn vector() -> Value {
    serde_json::from_str(include_str!(
        "data/rfc9180-a2-base-x25519-sha256-chacha20poly1305.json"
    ))
    .unwrap()
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn derive_key_pair_matches_a2() {
    let v = vector();
    let r = ChannelKeypair::derive(&h(&v["ikmR"]));
    assert_eq!(r.public().0.to_vec(), h(&v["pkRm"]));
    assert_eq!(r.secret_bytes().expose().to_vec(), h(&v["skRm"]));
    let e = ChannelKeypair::derive(&h(&v["ikmE"]));
    assert_eq!(e.public().0.to_vec(), h(&v["pkEm"]));
}

#[test]
fn single_shot_seal_and_open_match_first_encryption() {
    let v = vector();
    let recipient = ChannelKeypair::derive(&h(&v["ikmR"]));
    let first = &v["encryptions"][0];
    let (enc, ct) = hpke_base::seal(
        &ChannelPublicKey(recipient.public().0),
        &h(&v["info"]),
        &h(&first["aad"]),
        &h(&first["pt"]),
        &mut Fixed(h(&v["ikmE"])),
    )
    .unwrap();
    assert_eq!(enc.to_vec(), h(&v["enc"]));
    assert_eq!(ct, h(&first["ct"]));
    let pt = hpke_base::open(&recipient, &enc, &h(&v["info"]), &h(&first["aad"]), &ct).unwrap();
    assert_eq!(*pt, h(&first["pt"]));
}

#[test]
fn every_sequence_number_and_export_matches() {
    let v = vector();
    let pk_r = <Kem as hpke::Kem>::PublicKey::from_bytes(&h(&v["pkRm"])).unwrap();
    assert_eq!(pk_r.0.to_vec(), h(&v["pkRm"]));
    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(&v["skRm"])).unwrap();
    let (enc, mut sender) = hpke::setup_sender::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &pk_r,
        &h(&v["info"]),
        &mut Fixed(h(&v["ikmE"])),
    )
    .unwrap();
    assert_eq!(enc.to_bytes().to_vec(), h(&v["enc"]));
    let mut receiver =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_r, &enc, &h(&v["info"]))
            .unwrap();
    let encryptions = v["encryptions"].as_array().unwrap();
    assert_eq!(encryptions.len(), 257);
    for e in encryptions {
        let ct = sender.seal(&h(&e["pt"]), &h(&e["aad"])).unwrap();
        assert_eq!(ct, h(&e["ct"]));
        assert_eq!(receiver.open(&ct, &h(&e["aad"])).unwrap(), h(&e["pt"]));
    }
    for x in v["exports"].as_array().unwrap() {
        let mut out = vec![0u8; x["L"].as_u64().unwrap() as usize];
        sender.export(&h(&x["exporter_context"]), &mut out).unwrap();
        assert_eq!(out, h(&x["exported_value"]));
    }
}

type TheirKem = hpke::kem::X25519HkdfSha256;

/// Seals with one implementation of the KEM and opens with the other, both ways, on random keys.
#[test]
fn agrees_with_hpke_crate_kem() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(9180);
    for _ in 0..64 {
        let ikm: [u8; 32] = rng.r#gen();
        let ours = ChannelKeypair::derive(&ikm);
        let (their_sk, their_pk) = <TheirKem as hpke::Kem>::derive_keypair(&ikm);
        assert_eq!(ours.public().0.as_slice(), their_pk.to_bytes().as_slice());
        let pt: [u8; 32] = rng.r#gen();

        let (enc, ct) = hpke_base::seal(&ours.public(), b"info", b"aad", &pt, &mut rng).unwrap();
        let their_enc = <TheirKem as hpke::Kem>::EncappedKey::from_bytes(&enc).unwrap();
        let opened = hpke::single_shot_open::<Aead, Kdf, TheirKem>(
            &OpModeR::Base,
            &their_sk,
            &their_enc,
            b"info",
            &ct,
            b"aad",
        )
        .unwrap();
        assert_eq!(opened, pt);

        let (their_enc, ct) = hpke::single_shot_seal::<Aead, Kdf, TheirKem, _>(
            &OpModeS::Base,
            &their_pk,
            b"info",
            &pt,
            b"aad",
            &mut rng,
        )
        .unwrap();
        let enc: [u8; 32] = their_enc.to_bytes().into();
        let opened = hpke_base::open(&ours, &enc, b"info", b"aad", &ct).unwrap();
        assert_eq!(*opened, pt);
    }
}

/// A low-order recipient key or `enc` is refused on both sides, as RFC 9180 §7.1.4 requires.
#[test]
fn low_order_keys_are_refused() {
    let recipient = ChannelKeypair::derive(&[5u8; 32]);
    for low in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        assert!(
            hpke_base::seal(
                &ChannelPublicKey(low),
                b"",
                b"",
                b"x",
                &mut rand::thread_rng()
            )
            .is_err()
        );
        assert!(hpke_base::open(&recipient, &low, b"", b"", &[0u8; 17]).is_err());
    }
}
