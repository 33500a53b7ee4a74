//! Invalid P-256 points, as a stanza's `enc` and as the sender key, from one table of mutations.

use super::*;

impl Gen {
    /// Encapsulated keys and sender keys that are not valid points.
    pub(super) fn points(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        // A point with a small x coordinate, for the non-reduced encoding x + p.
        let (small_x, small_y) = (0u8..=255)
            .find_map(|x| {
                let mut c = [0u8; 33];
                c[0] = 2;
                c[32] = x;
                PublicKey::from_sec1_bytes(&c).ok().map(|pk| {
                    let u = pk.to_encoded_point(false);
                    let mut xb = [0u8; 32];
                    xb.copy_from_slice(u.x().expect("x"));
                    let mut yb = [0u8; 32];
                    yb.copy_from_slice(u.y().expect("y"));
                    (xb, yb)
                })
            })
            .expect("a point with x < 256");
        let point = |x: &[u8; 32], y: &[u8; 32], first: u8| {
            let mut v = vec![first];
            v.extend_from_slice(x);
            v.extend_from_slice(y);
            v
        };
        let non_reduced = point(&be_add(&small_x, &P), &small_y, 4);
        assert!(!is_valid_point(&non_reduced));
        // One table of invalid encodings of a valid uncompressed point `u`,
        // used both as a stanza's `enc` and as the header's sender key: each
        // row names the stanza vector and, where the sender key gets the
        // same mutation, the sender vector.
        type Edit = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        struct PointEdit {
            enc: (&'static str, &'static str),
            sender: Option<(&'static str, &'static str)>,
            edit: Edit,
        }
        let point_edits: Vec<PointEdit> = vec![
            PointEdit {
                enc: (
                    "enc_identity",
                    "enc is 65 zero bytes (the identity's one-byte encoding 0x00, padded)",
                ),
                sender: Some(("sender_key_identity", "sender_key is 65 zero bytes")),
                edit: Box::new(|_u: &[u8]| vec![0u8; 65]),
            },
            PointEdit {
                enc: (
                    "enc_compressed_in_65_bytes",
                    "enc starts with 0x02: a compressed encoding followed by 32 more bytes",
                ),
                sender: Some((
                    "sender_key_compressed",
                    "sender_key starts with 0x02/0x03 (compressed) and is followed by y",
                )),
                edit: Box::new(|u: &[u8]| {
                    let mut v = u.to_vec();
                    v[0] = 2 + (u[64] & 1);
                    v
                }),
            },
            PointEdit {
                enc: ("enc_compressed_03", "enc starts with 0x03"),
                sender: None,
                edit: Box::new(|u: &[u8]| {
                    let mut v = u.to_vec();
                    v[0] = 3;
                    v
                }),
            },
            PointEdit {
                enc: (
                    "enc_hybrid",
                    "enc in hybrid form (0x06/0x07 with the parity of y)",
                ),
                sender: Some(("sender_key_hybrid", "sender_key in hybrid form (0x06/0x07)")),
                edit: Box::new(|u: &[u8]| {
                    let mut v = u.to_vec();
                    v[0] = 6 + (u[64] & 1);
                    v
                }),
            },
            PointEdit {
                enc: (
                    "enc_off_curve",
                    "enc with the lowest bit of y flipped: not on the curve",
                ),
                sender: Some((
                    "sender_key_off_curve",
                    "sender_key with the lowest bit of y flipped",
                )),
                edit: Box::new(|u: &[u8]| {
                    let mut v = u.to_vec();
                    v[64] ^= 1;
                    v
                }),
            },
            PointEdit {
                enc: (
                    "enc_zero_coordinates",
                    "enc = 0x04 || 0^64: (0, 0) is not on the curve",
                ),
                sender: Some(("sender_key_zero_coordinates", "sender_key = 0x04 || 0^64")),
                edit: Box::new(|_u: &[u8]| {
                    let mut v = vec![0u8; 65];
                    v[0] = 4;
                    v
                }),
            },
            PointEdit {
                enc: ("enc_x_equals_p", "enc with x = p"),
                sender: Some(("sender_key_x_equals_p", "sender_key with x = p")),
                edit: Box::new(|u: &[u8]| {
                    let mut v = u.to_vec();
                    v[1..33].copy_from_slice(&P);
                    v
                }),
            },
            PointEdit {
                enc: (
                    "enc_x_not_reduced",
                    "enc = (x + p, y) for a valid point (x, y): a coordinate >= p",
                ),
                sender: None,
                edit: Box::new(move |_u: &[u8]| non_reduced.clone()),
            },
            PointEdit {
                enc: ("enc_all_ff", "enc = 0x04 || 0xff^64"),
                sender: None,
                edit: Box::new(|_u: &[u8]| {
                    let mut v = vec![0xffu8; 65];
                    v[0] = 4;
                    v
                }),
            },
        ];
        for PointEdit {
            enc: (name, comment),
            edit,
            ..
        } in &point_edits
        {
            let (name, comment) = (*name, *comment);
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            let mut w = wrap(&mut rng, a, &p.file_key);
            w.enc = edit(&w.enc);
            assert!(!is_valid_point(&w.enc), "{name}");
            p.hdr.stanzas = vec![w.stanza()];
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        // Wrong lengths inside the P-256 stanza body.
        let len_cases: Vec<(&str, &str, Box<dyn Fn(&Wrapped) -> Vec<u8>>)> = vec![
            (
                "enc_compressed_33_bytes",
                "enc as a 33-byte compressed point: body_len 85",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.push(2 + (w.enc[64] & 1));
                    body.extend_from_slice(&w.enc[1..33]);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_identity_one_byte",
                "enc as the one-byte identity encoding 0x00: body_len 53",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.push(0);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_one_byte_short",
                "enc of 64 bytes (last byte missing): body_len 116",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc[..64]);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_one_byte_long",
                "enc of 66 bytes (an extra zero byte): body_len 118",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.push(0);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "wrapped_key_47_bytes",
                "wrapped_key one byte short: body_len 116",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped[..47]);
                    body
                }),
            ),
            (
                "wrapped_key_49_bytes",
                "wrapped_key one byte long: body_len 118",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped);
                    body.push(0);
                    body
                }),
            ),
            (
                "wrapped_key_no_tag",
                "wrapped_key without its 16-byte tag: body_len 101",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped[..32]);
                    body
                }),
            ),
            (
                "wrapped_key_64_bytes",
                "wrapped_key of 64 bytes (a 48-byte key sealed): body_len 133",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped);
                    body.extend_from_slice(&[0x11; 16]);
                    body
                }),
            ),
        ];
        for (name, comment, body) in len_cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            let w = wrap(&mut rng, a, &p.file_key);
            let b = body(&w);
            p.hdr.stanzas = vec![raw_stanza(1, &b)];
            // Keep the header at least MIN_HEADER_LEN long, so the length
            // rule of the stanza is what fails.
            let short = 158usize.saturating_sub(p.header().len());
            if short > 0 {
                p.hdr.ext = ext(0x0001, &vec![0u8; short.max(4) - 4]);
            }
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        // An invalid enc in a stanza for someone else, after the one that
        // would open: points are validated before any decryption.
        let mut rng = seeded("enc_off_curve_in_other_stanza");
        let mut p = plan(
            &mut rng,
            &[(a, Hint::Real), (&k.bob, Hint::Real)],
            None,
            100,
        );
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas[1] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_off_curve_in_other_stanza", mal, "the identity's stanza is first and valid; the second stanza (for bob) has an off-curve enc", data)
                .ids(&[a])
                .plan(&p),
        );
        let mut rng = seeded("enc_off_curve_no_identity_matches");
        let mut p = plan(&mut rng, &[(&k.bob, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas[0] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_off_curve_no_identity_matches", mal, "an off-curve enc in the only stanza, which is not for the identity: malformed, not no match", data)
                .ids(&[a])
                .plan(&p),
        );
        // A valid point that is not the one sealed to: the stanza does not open.
        let mut rng = seeded("enc_negated");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, a, &p.file_key);
        let mut y = [0u8; 32];
        y.copy_from_slice(&w.enc[33..]);
        w.enc[33..].copy_from_slice(&be_sub(&P, &y));
        assert!(is_valid_point(&w.enc));
        // The hint is recomputed over the new enc, so it still points at a.
        w.hint = a.to_recipient().stanza_hint(&w.enc);
        p.hdr.stanzas[0] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_negated", Expect::HeaderAuthFailure, "enc replaced by its negation (x, p - y), a valid point: the hinted stanza does not open", data)
                .ids(&[a])
                .plan(&p),
        );
        // An invalid enc inside a stanza of an unknown type is opaque.
        let mut rng = seeded("enc_off_curve_in_unknown_stanza");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
        w.enc[64] ^= 1;
        let mut body = w.hint.to_vec();
        body.extend_from_slice(&w.enc);
        body.extend_from_slice(&w.wrapped);
        p.hdr.stanzas.insert(0, raw_stanza(2, &body));
        let data = p.bytes();
        self.add(
            V::new(
                "enc_off_curve_in_unknown_stanza",
                Expect::Success,
                "an off-curve point inside a stanza of unknown type 0x0002 is never interpreted",
                data,
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.pt),
        );
        // Sender keys: the rows of the same table that have a sender vector.
        for (name, comment, edit) in point_edits
            .iter()
            .filter_map(|e| e.sender.map(|(name, comment)| (name, comment, &e.edit)))
        {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 100);
            let key = edit(&wire(&k.sam));
            assert!(!is_valid_point(&key), "{name}");
            let mut s = vec![1];
            s.extend_from_slice(&key);
            p.hdr.sender = s;
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        let mut rng = seeded("sender_key_off_curve_no_identity_matches");
        let mut p = plan(&mut rng, &[(&k.bob, Hint::Real)], Some(&k.sam), 100);
        p.hdr.sender[65] ^= 1;
        let data = p.bytes();
        self.add(
            V::new(
                "sender_key_off_curve_no_identity_matches",
                mal,
                "an off-curve sender key in a file not for the identity: malformed, not no match",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
    }
}
