//! Files from the real encoder (`Encryptor`), anonymous and signed.

use super::*;

impl Gen {
    /// Files from the real encoder.
    pub(super) fn encoder_files(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        for (name, len, comment) in [
            ("encoder_empty", 0, "empty plaintext: one empty final chunk"),
            ("encoder_1_byte", 1, "one-byte plaintext"),
            (
                "encoder_16383",
                CHUNK - 1,
                "one short final chunk of 16383 bytes",
            ),
            (
                "encoder_16384",
                CHUNK,
                "one full chunk, then an empty final chunk",
            ),
            (
                "encoder_16385",
                CHUNK + 1,
                "one full chunk, then a final chunk of 1 byte",
            ),
            (
                "encoder_32768",
                2 * CHUNK,
                "two full chunks, then an empty final chunk",
            ),
            (
                "encoder_40000",
                40000,
                "three chunks, the last of 7232 bytes",
            ),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, len);
            let (fk, data) = encrypt(&mut rng, &[a], None, false, &pt);
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .key(fk)
                    .released(&pt),
            );
        }
        let mut rng = seeded("encoder_three_recipients");
        let pt = random_bytes(&mut rng, 1000);
        let (fk, data) = encrypt(&mut rng, &[&k.bob, &k.carol, a], None, false, &pt);
        self.add(
            V::new(
                "encoder_three_recipients",
                Expect::Success,
                "three recipients, the identity's stanza is the third",
                data,
            )
            .ids(&[a])
            .key(fk)
            .released(&pt),
        );
        for (name, sender) in [
            ("encoder_hidden_recipients", None),
            ("encoder_hidden_recipients_signed", Some(&k.sam)),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, 1000);
            let (fk, data) = encrypt(&mut rng, &[&k.bob, &k.carol, a], sender, true, &pt);
            let stanzas = p256_stanzas(&data);
            assert!(stanzas.iter().all(|(hint, _, _)| *hint == [0; 4]));
            let at = stanzas
                .iter()
                .position(|(_, enc, wrapped)| opens(a, enc, wrapped).is_some())
                .expect("alice's stanza");
            let comment =
                format!(
                "{}recipients bob, carol, alice with zero hints, stanzas shuffled by the encoder: \
                 the identity's stanza is number {} of 3",
                if sender.is_some() { "signed by sam, " } else { "" },
                at + 1
            );
            let mut v = V::new(name, Expect::Success, comment, data)
                .ids(&[a])
                .key(fk)
                .released(&pt);
            if let Some(s) = sender {
                v = v.sender(s);
            }
            self.add(v);
        }
        for (name, len, comment) in [
            (
                "encoder_signed",
                1000,
                "signed by sam: one segment (the final chunk and its signature)",
            ),
            (
                "encoder_signed_20000",
                20000,
                "signed by sam: one segment of two chunks and its signature",
            ),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, len);
            let (fk, data) = encrypt(&mut rng, &[a], Some(&k.sam), false, &pt);
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .key(fk)
                    .sender(&k.sam)
                    .released(&pt),
            );
        }
        let mut rng = seeded("encoder_signed_empty");
        let (fk, data) = encrypt(&mut rng, &[a, &k.bob], Some(&k.sam), false, &[]);
        self.add(
            V::new(
                "encoder_signed_empty",
                Expect::Success,
                "signed, empty plaintext: one segment of 80 bytes (an empty chunk and the signature); two recipients, the identity is bob (second)",
                data,
            )
            .ids(&[&k.bob])
            .key(fk)
            .sender(&k.sam),
        );
        let mut rng = seeded("encoder_signed_to_self");
        let pt = random_bytes(&mut rng, 300);
        let (fk, data) = encrypt(&mut rng, &[&k.sam], Some(&k.sam), false, &pt);
        self.add(
            V::new(
                "encoder_signed_to_self",
                Expect::Success,
                "signed by sam to sam himself",
                data,
            )
            .ids(&[&k.sam])
            .key(fk)
            .sender(&k.sam)
            .released(&pt),
        );
    }
}
