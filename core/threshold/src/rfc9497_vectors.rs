//! RFC 9497 Appendix A.1.2: VOPRF mode, ristretto255-SHA512, every test vector.

use curve25519_dalek::Scalar;

use crate::{BlindedRequest, Element, Proof, SecretKey, group::scalar_from_bytes};
use keyward_crypto::SecretBytes;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}
fn scalar(s: &str) -> Scalar {
    scalar_from_bytes("vector", &h32(s)).unwrap()
}

const SK: &str = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909";
const PK: &str = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e";
const BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";
const R1: &str = "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e";

struct Single {
    input: &'static str,
    blinded: &'static str,
    evaluated: &'static str,
    proof: &'static str,
    output: &'static str,
}

const SINGLES: [Single; 2] = [
    Single {
        input: "00",
        blinded: "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
        evaluated: "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
        proof: "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd066d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
        output: "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7da4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c",
    },
    Single {
        input: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        blinded: "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c",
        evaluated: "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468",
        proof: "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
        output: "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6",
    },
];

fn key() -> SecretKey {
    SecretKey::derive(&SecretBytes::new([0xa3; 32]), b"test key").unwrap()
}

#[test]
fn a_1_2_derive_key_pair() {
    let sk = key();
    assert_eq!(sk.0.to_bytes(), h32(SK));
    assert_eq!(sk.public_key().to_bytes(), h32(PK));
}

#[test]
fn a_1_2_vectors_1_and_2_batch_size_1() {
    let sk = key();
    for v in SINGLES {
        let input = h(v.input);
        let req = BlindedRequest::with_blind(&input, scalar(BLIND)).unwrap();
        assert_eq!(req.blinded().to_bytes(), h32(v.blinded));
        let (evaluated, proof) = sk.blind_evaluate_with_nonce(&[req.blinded()], &scalar(R1));
        assert_eq!(evaluated[0].to_bytes(), h32(v.evaluated));
        assert_eq!(proof.to_bytes().to_vec(), h(v.proof));
        let output = req
            .finalize(&sk.public_key(), &evaluated[0], &proof)
            .unwrap();
        assert_eq!(output.expose().to_vec(), h(v.output));
        assert_eq!(sk.evaluate(&input).unwrap(), output);
    }
}

#[test]
fn a_1_2_vector_3_batch_size_2() {
    let sk = key();
    let blinds = [BLIND, R1];
    let reqs: Vec<_> = SINGLES
        .iter()
        .zip(blinds)
        .map(|(v, b)| BlindedRequest::with_blind(&h(v.input), scalar(b)).unwrap())
        .collect();
    let blinded: Vec<Element> = reqs.iter().map(|r| r.blinded()).collect();
    assert_eq!(
        blinded[0].to_bytes(),
        h32("863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945")
    );
    assert_eq!(
        blinded[1].to_bytes(),
        h32("90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654")
    );
    let r = scalar("419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c");
    let (evaluated, proof) = sk.blind_evaluate_with_nonce(&blinded, &r);
    assert_eq!(
        evaluated[0].to_bytes(),
        h32("aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e")
    );
    assert_eq!(
        evaluated[1].to_bytes(),
        h32("cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a")
    );
    assert_eq!(
        proof,
        Proof::from_bytes(&h("cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08").try_into().unwrap()).unwrap()
    );
    assert!(proof.verify(&sk.public_key().element().0, &blinded, &evaluated));
    // The batch proof does not verify for a reordered batch.
    assert!(!proof.verify(
        &sk.public_key().element().0,
        &[blinded[1], blinded[0]],
        &[evaluated[1], evaluated[0]]
    ));
    for (req, (v, e)) in reqs.iter().zip(SINGLES.iter().zip(&evaluated)) {
        assert_eq!(req.unblind(e).expose().to_vec(), h(v.output));
    }
}
