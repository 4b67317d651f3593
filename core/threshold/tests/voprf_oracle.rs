//! Interoperability with an independent RFC 9497 implementation (the `voprf` crate): its client
//! against our evaluator, and our client against its evaluator, on random keys and inputs.
#![allow(clippy::unwrap_used)] // test helpers

use keyward_crypto::SecretBytes;
use keyward_threshold::{BlindedRequest, Element, Proof, SecretKey};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use voprf::{Ristretto255, VoprfClient, VoprfServer};

#[test]
fn their_client_our_evaluator() {
    let mut rng = StdRng::seed_from_u64(42);
    for round in 0..16 {
        let sk = SecretKey::random(&mut rng);
        let mut input = vec![0u8; round * 7];
        rng.fill_bytes(&mut input);

        let blind = VoprfClient::<Ristretto255>::blind(&input, &mut rng).unwrap();
        let ours = Element::from_bytes(&blind.message.serialize().into()).unwrap();
        let (evaluated, proof) = sk.blind_evaluate(&[ours], &mut rng).unwrap();

        let their_eval =
            voprf::EvaluationElement::<Ristretto255>::deserialize(&evaluated[0].to_bytes())
                .unwrap();
        let their_proof = voprf::Proof::<Ristretto255>::deserialize(&proof.to_bytes()).unwrap();
        let their_pk = curve25519_dalek_point(&sk);
        let output = blind
            .state
            .finalize(&input, &their_eval, &their_proof, their_pk)
            .unwrap();
        assert_eq!(output.as_slice(), sk.evaluate(&input).unwrap().expose());
    }
}

#[test]
fn our_client_their_evaluator() {
    let mut rng = StdRng::seed_from_u64(43);
    for round in 0..16 {
        let sk = SecretKey::random(&mut rng);
        let server = VoprfServer::<Ristretto255>::new_with_key(sk.to_bytes().expose()).unwrap();
        let input = format!("cluster-{round}").into_bytes();
        let req = BlindedRequest::new(&input, &mut rng).unwrap();
        let blinded =
            voprf::BlindedElement::<Ristretto255>::deserialize(&req.blinded().to_bytes()).unwrap();
        let result = server.blind_evaluate(&mut rng, &blinded);
        let evaluated = Element::from_bytes(&result.message.serialize().into()).unwrap();
        let proof = Proof::from_bytes(&result.proof.serialize().into()).unwrap();
        let output = req.finalize(&sk.public_key(), &evaluated, &proof).unwrap();
        let theirs = server.evaluate(&input).unwrap();
        assert_eq!(output.expose(), theirs.as_slice());
    }
}

fn curve25519_dalek_point(sk: &SecretKey) -> curve25519_dalek::RistrettoPoint {
    sk.public_key().element().point()
}

#[test]
fn derive_key_pair_agrees() {
    let seed = [0x5c; 32];
    let ours = SecretKey::derive(&SecretBytes::new(seed), b"keyward epoch 7").unwrap();
    let theirs = VoprfServer::<Ristretto255>::new_from_seed(&seed, b"keyward epoch 7").unwrap();
    assert_eq!(
        ours.public_key().to_bytes().as_slice(),
        theirs.get_public_key().compress().as_bytes()
    );
}
