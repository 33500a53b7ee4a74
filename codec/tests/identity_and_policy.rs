//! The identity abstraction and the receiver policy through the public API:
//! a key that lives "elsewhere" decrypts like an in-memory one, a failing
//! key is an identity error rather than "no match", and the policy refuses
//! what SPEC.md section 12.1 says, in its order.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use kapsel_codec::{
    replay_id, DecryptError, Decryptor, Encryptor, Identity, IdentityError, IdentityKey, Keyring,
    PolicyError, ReceiverPolicy, Recipient, SharedSecret,
};

/// A stand-in for a hardware token: does the operations through the
/// in-memory identity, counting them, or fails when told to.
struct Token {
    inner: Identity,
    fail: bool,
    calls: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("token removed")]
struct Removed;

impl IdentityKey for Token {
    fn recipient(&self) -> Recipient {
        self.inner.to_recipient()
    }

    fn diffie_hellman(&self, peer: &Recipient) -> Result<SharedSecret, IdentityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(IdentityError::Unavailable(Box::new(Removed)));
        }
        self.inner.diffie_hellman(peer)
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], IdentityError> {
        self.inner.sign(message)
    }
}

fn file_to(to: &Identity, sender: Option<Identity>, created_at: u64) -> Vec<u8> {
    let mut e = Encryptor::new([to.to_recipient()])
        .unwrap()
        .created_at(created_at);
    if let Some(s) = sender {
        e = e.sender(s);
    }
    let mut w = e.wrap_output(Vec::new()).unwrap();
    w.write_all(b"through the token").unwrap();
    w.finish().unwrap()
}

#[test]
fn a_key_behind_the_identity_trait_decrypts_like_an_in_memory_one() {
    let id = Identity::generate();
    let file = file_to(&id, None, 1_800_000_000);
    let token = Token {
        inner: id,
        fail: false,
        calls: AtomicUsize::new(0),
    };
    let mut out = Vec::new();
    Decryptor::new(&file[..])
        .unwrap()
        .decrypt_with(&Keyring::new().with_keys([&token as &dyn IdentityKey]))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, b"through the token");
    assert_eq!(token.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failing_key_is_an_identity_error_not_a_wrong_recipient() {
    let id = Identity::generate();
    let file = file_to(&id, None, 1_800_000_000);
    let token = Token {
        inner: id,
        fail: true,
        calls: AtomicUsize::new(0),
    };
    let err = Decryptor::new(&file[..])
        .unwrap()
        .decrypt_with(&Keyring::new().with_keys([&token as &dyn IdentityKey]))
        .unwrap_err();
    assert!(matches!(err, DecryptError::Identity(_)), "{err:?}");
}

#[test]
fn the_policy_refuses_unexpected_senders_old_and_future_files() {
    let (alice, bob, eve) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let now = 1_800_000_000;
    let signed = file_to(&bob, Some(alice.clone()), now);
    let reader = Decryptor::new(&signed[..])
        .unwrap()
        .decrypt(std::slice::from_ref(&bob))
        .unwrap();
    let claimed = reader.claimed_sender();
    let header = reader.header();
    let policy = ReceiverPolicy::new().max_age(60).max_skew(10);
    assert_eq!(
        policy.check_header(header, claimed.as_ref(), now + 30),
        Ok(())
    );
    assert_eq!(
        policy.check_header(header, claimed.as_ref(), now + 61),
        Err(PolicyError::TooOld {
            created_at: now,
            max_age: 60
        })
    );
    assert_eq!(
        policy.check_header(header, claimed.as_ref(), now - 11),
        Err(PolicyError::FromTheFuture {
            created_at: now,
            max_skew: 10
        })
    );
    let expects_eve = ReceiverPolicy::new().expect_sender(eve.to_recipient());
    assert_eq!(
        expects_eve.check_header(header, claimed.as_ref(), now),
        Err(PolicyError::UnexpectedSender {
            sender: alice.to_recipient()
        })
    );
    let expects_alice = ReceiverPolicy::new().expect_sender(alice.to_recipient());
    assert_eq!(
        expects_alice.check_header(header, claimed.as_ref(), now),
        Ok(())
    );
    assert_eq!(
        expects_alice.check_header(header, None, now),
        Err(PolicyError::NoSender)
    );
}

#[test]
fn replay_ids_name_a_signed_file_by_sender_and_serial() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let make = |serial| {
        let mut w = Encryptor::new([bob.to_recipient()])
            .unwrap()
            .sender(alice.clone())
            .serial(serial)
            .wrap_output(Vec::new())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.finish().unwrap()
    };
    let id_of = |file: &[u8]| {
        let d = Decryptor::new(file).unwrap();
        replay_id(d.unverified_header(), d.unverified_header_bytes())
    };
    let (one, again, two) = (make(7), make(7), make(8));
    assert_eq!(id_of(&one), id_of(&again), "same sender and serial");
    assert_ne!(id_of(&one), id_of(&two));
    assert_eq!((id_of(&one)[0], id_of(&one).len()), (1, 41));
}
