//! Recipient stanzas, extensions, and which identity opens which stanza.

use super::*;

impl Gen {
    /// Stanza types and lengths, duplicates, counts.
    pub(super) fn stanzas(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let ok = Expect::Success;
        let cases: Vec<(&str, Expect, &str, Box<dyn Fn(&mut Plan, &mut ChaCha20Rng)>)> = vec![
            (
                "unknown_stanza_before",
                ok,
                "an unknown stanza (type 0x0002, 50 bytes) before the P-256 stanza is skipped",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(2, &random_bytes(r, 50)))
                }),
            ),
            (
                "unknown_stanza_after",
                ok,
                "an unknown stanza (type 0x0100, 200 bytes) after the P-256 stanza is skipped",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza(0x0100, &random_bytes(r, 200)))
                }),
            ),
            (
                "unknown_stanza_type_ffff",
                ok,
                "an unknown stanza of type 0xffff",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .insert(0, raw_stanza(0xffff, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_type_0",
                ok,
                "an unknown stanza of type 0x0000",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(0, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_empty_body",
                ok,
                "an unknown stanza with body_len 0",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(0x1234, &[]))
                }),
            ),
            (
                "unknown_stanza_body_1024",
                ok,
                "an unknown stanza with the largest body, 1024 bytes",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(7, &random_bytes(r, 1024)))
                }),
            ),
            (
                "unknown_stanzas_same_type",
                ok,
                "two unknown stanzas of one type with different bodies",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(9, b"one"));
                    p.hdr.stanzas.push(raw_stanza(9, b"two"));
                }),
            ),
            (
                "unknown_stanza_body_1025",
                mal,
                "an unknown stanza with body_len 1025",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(7, &random_bytes(r, 1025)))
                }),
            ),
            (
                "unknown_stanza_body_len_ffff",
                mal,
                "an unknown stanza with body_len 65535 (the header holds 10 bytes of it)",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza_len(7, 0xffff, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_runs_past_header",
                mal,
                "the last unknown stanza's body_len (100) runs past header_len",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza_len(7, 100, &random_bytes(r, 30)));
                }),
            ),
            (
                "p256_stanza_body_len_0",
                mal,
                "a type 0x0001 stanza with body_len 0",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(1, &[]))
                }),
            ),
            (
                "p256_stanza_body_len_1024",
                mal,
                "a type 0x0001 stanza with body_len 1024",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(1, &random_bytes(r, 1024)))
                }),
            ),
            (
                "duplicate_stanza",
                mal,
                "the P-256 stanza twice",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    let s = p.hdr.stanzas[0].clone();
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_stanza_not_adjacent",
                mal,
                "stanzas A, B, A",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    let s = p.hdr.stanzas[0].clone();
                    p.hdr.stanzas.push(raw_stanza(2, &random_bytes(r, 20)));
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_unknown_stanza",
                mal,
                "an unknown stanza twice",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    let s = raw_stanza(2, &random_bytes(r, 20));
                    p.hdr.stanzas.push(s.clone());
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_empty_unknown_stanza",
                mal,
                "an unknown stanza with an empty body twice",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(3, &[]));
                    p.hdr.stanzas.push(raw_stanza(3, &[]));
                }),
            ),
        ];
        for (name, expect, comment, f) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            f(&mut p, &mut rng);
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
        // Headers without a P-256 stanza.
        let mut rng = seeded("only_unknown_stanzas");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.stanzas = vec![raw_stanza(2, &random_bytes(&mut rng, 117))];
        assert_eq!(p.header().len(), 158);
        let data = p.bytes();
        self.add(
            V::new(
                "only_unknown_stanzas",
                Expect::NoMatch,
                "a 158-byte header whose only stanza has unknown type 0x0002",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut rng = seeded("only_unknown_stanzas_too_short");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.stanzas = vec![raw_stanza(2, &random_bytes(&mut rng, 116))];
        assert_eq!(p.header().len(), 157);
        let data = p.bytes();
        self.add(
            V::new(
                "only_unknown_stanzas_too_short",
                mal,
                "a header of unknown stanzas only, 157 bytes: below MIN_HEADER_LEN",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        // 256 and 257 recipients.
        for (name, count, expect) in [
            ("recipients_256_match_last", 256usize, ok),
            ("recipients_257", 257, mal),
        ] {
            let mut rng = seeded(name);
            let mut file_key = [0u8; 32];
            rng.fill_bytes(&mut file_key);
            let mut stanzas = Vec::new();
            for i in 0..count - 1 {
                let other = identity(&format!("{name} {i}"));
                stanzas.push(wrap(&mut rng, &other, &file_key).stanza());
            }
            stanzas.push(wrap(&mut rng, a, &file_key).stanza());
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 500);
            p.file_key = file_key;
            p.hdr.stanzas = stanzas;
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            let comment = if expect == ok {
                "256 stanzas (MAX_RECIPIENTS), the identity's is the last"
            } else {
                "257 stanzas: one above MAX_RECIPIENTS"
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
    }

    /// The extension area.
    pub(super) fn extensions(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let uns = Expect::Unsupported;
        let ok = Expect::Success;
        let cat = |parts: &[Vec<u8>]| parts.concat();
        let cases: Vec<(&str, Expect, &str, Vec<u8>, Option<u16>, Vec<u8>)> = vec![
            ("ext_noncritical", ok, "one non-critical extension (type 0x0001, 5 bytes) is ignored", ext(1, b"hello"), None, vec![]),
            ("ext_three_ascending", ok, "types 0x0001, 0x0002, 0x7fff", cat(&[ext(1, b"a"), ext(2, b""), ext(0x7fff, b"ccc")]), None, vec![]),
            ("ext_empty_value", ok, "a non-critical record with ext_len 0", ext(0x0abc, b""), None, vec![]),
            ("ext_area_8192", ok, "an extension area of exactly MAX_EXTENSIONS_LEN bytes", ext(0x0100, &[0x5a; 8188]), None, vec![]),
            ("ext_critical_8000", uns, "critical extension 0x8000", ext(0x8000, b""), None, vec![]),
            ("ext_critical_ffff", uns, "critical extension 0xffff with a value", ext(0xffff, b"xyz"), None, vec![]),
            ("ext_critical_after_noncritical", uns, "non-critical 0x0001, then critical 0x8001", cat(&[ext(1, b"a"), ext(0x8001, b"b")]), None, vec![]),
            ("ext_critical_then_unsorted", uns, "critical 0x9000 first, then 0x0001 out of order: the critical record is met first", cat(&[ext(0x9000, b""), ext(1, b"")]), None, vec![]),
            ("ext_critical_type_only", uns, "an area of 2 bytes holding a critical type: the type is judged before its missing length", vec![0x80, 0x01], None, vec![]),
            ("ext_critical_type_and_one_byte", uns, "an area of 3 bytes 80 01 00: the critical type is judged before the short length", vec![0x80, 0x01, 0x00], None, vec![]),
            ("ext_critical_value_overruns_area", uns, "a critical record whose ext_len runs past the area: the type is judged first", [vec![0x80, 0x07, 0x00, 0x64], vec![0; 10]].concat(), None, vec![]),
            ("ext_critical_then_trailing_header_bytes", uns, "a critical record, then 3 bytes between the area's end and header_len", ext(0x8001, b""), None, vec![1, 2, 3]),
            ("ext_unsorted_then_critical", mal, "types 0x0005, 0x0003, 0x8000: the order violation is met first", cat(&[ext(5, b""), ext(3, b""), ext(0x8000, b"")]), None, vec![]),
            ("ext_area_past_header_with_critical", mal, "extensions_len runs past header_len; the area would hold a critical record", ext(0x8001, b"abc"), Some(20), vec![]),
            ("ext_len_8193", mal, "extensions_len 8193 (with 8193 bytes present)", ext(0x0100, &[0; 8189]), None, vec![]),
            ("ext_len_ffff", mal, "extensions_len 65535 (4 bytes present)", ext(1, b""), Some(0xffff), vec![]),
            ("ext_unsorted", mal, "types 0x0002 then 0x0001", cat(&[ext(2, b""), ext(1, b"")]), None, vec![]),
            ("ext_duplicate_type", mal, "type 0x0003 twice", cat(&[ext(3, b"x"), ext(3, b"y")]), None, vec![]),
            ("ext_value_overruns_area", mal, "a record's ext_len (100) runs past the area (10 bytes)", [vec![0x00, 0x07, 0x00, 0x64], vec![0; 6]].concat(), None, vec![]),
            ("ext_one_leftover_byte", mal, "a record, then 1 byte left in the area", cat(&[ext(1, b"a"), vec![0x00]]), None, vec![]),
            ("ext_three_leftover_bytes", mal, "a record, then 3 bytes (type 0x0007 and half a length) left in the area", cat(&[ext(1, b"a"), vec![0x00, 0x07, 0x00]]), None, vec![]),
            ("ext_area_past_header", mal, "extensions_len 10 with 5 bytes before header_len", ext(1, b"a"), Some(10), vec![]),
            ("header_trailing_byte", mal, "one zero byte between the end of the extension area and header_len", vec![], None, vec![0]),
            ("header_trailing_bytes_after_ext", mal, "a valid record, then 4 bytes between the area's end and header_len", ext(1, b"a"), None, vec![0, 2, 0, 0]),
        ];
        for (name, expect, comment, records, ext_len, tail) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            p.hdr.ext = records;
            p.hdr.ext_len = ext_len;
            p.hdr.tail = tail;
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
        // Point validation comes after the whole header parsed.
        let mut rng = seeded("ext_critical_and_off_curve_enc");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, a, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas = vec![w.stanza()];
        p.hdr.ext = ext(0x8001, b"");
        let data = p.bytes();
        self.add(
            V::new("ext_critical_and_off_curve_enc", uns, "an off-curve enc and a critical extension: points are validated only after the header parsed", data)
                .ids(&[a])
                .plan(&p),
        );
        // A non-critical extension changed without the file key.
        let mut rng = seeded("ext_value_tampered");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.ext = ext(0x0001, b"authenticated");
        let mut data = p.bytes();
        let at = p.header().len() - 1;
        data[at] ^= 1;
        self.add(
            V::new(
                "ext_value_tampered",
                Expect::HeaderAuthFailure,
                "one bit of a non-critical extension value flipped after sealing",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
    }

    /// Several recipients, hints, identity order.
    pub(super) fn recipients(&mut self) {
        let k = self.k.clone();
        let (a, b, c, d) = (&k.alice, &k.bob, &k.carol, &k.dave);
        let ok = Expect::Success;
        let pt_len = 700;
        // Plain multi-recipient successes.
        let simple: Vec<(&str, &str, Vec<(&Identity, Hint)>, Vec<&Identity>)> = vec![
            (
                "recipients_match_middle",
                "three stanzas, the identity's is the second",
                vec![(b, Hint::Real), (a, Hint::Real), (c, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_match_last_zero_hints",
                "three stanzas with zero hints, the identity's is the last",
                vec![(b, Hint::Zero), (c, Hint::Zero), (a, Hint::Zero)],
                vec![a],
            ),
            (
                "recipients_mixed_hints",
                "zero and real hints mixed; the identity's stanza has a zero hint",
                vec![(b, Hint::Real), (a, Hint::Zero), (c, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_second_identity",
                "identities dave then bob; bob's stanza is the second of two",
                vec![(a, Hint::Real), (b, Hint::Real)],
                vec![d, b],
            ),
            (
                "recipients_hint_of_other_key",
                "the identity's stanza carries the hint carol would compute for it: it is still tried",
                vec![(b, Hint::Real), (a, Hint::Of(c))],
                vec![a],
            ),
            (
                "recipients_old_style_hint",
                "the identity's stanza carries the old-style hint SHA-256(compressed point)[0..4], which is not its hint (SPEC 4.4): not preferred, but still tried",
                vec![(b, Hint::Real), (a, Hint::OldStyle)],
                vec![a],
            ),
            (
                "recipients_hint_for_other_enc",
                "the identity's stanza carries the identity's hint for another enc: not its hint here, still tried",
                vec![(a, Hint::OtherEnc), (b, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_random_hint",
                "the identity's stanza carries a random non-zero hint",
                vec![(a, Hint::Raw([0xde, 0xad, 0xbe, 0xef]))],
                vec![a],
            ),
            (
                "recipients_same_recipient_twice",
                "two different stanzas for the same recipient, both valid",
                vec![(a, Hint::Real), (a, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_identity_twice",
                "the same identity given twice",
                vec![(b, Hint::Real), (a, Hint::Real)],
                vec![a, a],
            ),
        ];
        for (name, comment, to, ids) in simple {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &to, None, pt_len);
            let data = p.bytes();
            self.add(
                V::new(name, ok, comment, data)
                    .ids(&ids)
                    .plan(&p)
                    .released(&p.pt),
            );
        }
        // No match.
        let nm = Expect::NoMatch;
        let no_match: Vec<(&str, &str, Vec<(&Identity, Hint)>, Vec<&Identity>)> = vec![
            (
                "no_match_other_recipient",
                "a file for bob, the identity is dave",
                vec![(b, Hint::Real)],
                vec![d],
            ),
            (
                "no_match_hidden",
                "three zero-hint stanzas, none for the identity",
                vec![(a, Hint::Zero), (b, Hint::Zero), (c, Hint::Zero)],
                vec![d],
            ),
            (
                "no_match_several_identities",
                "a file for alice and bob, identities carol and dave",
                vec![(a, Hint::Real), (b, Hint::Real)],
                vec![c, d],
            ),
            (
                "no_match_no_identities",
                "no identity at all",
                vec![(a, Hint::Real)],
                vec![],
            ),
        ];
        for (name, comment, to, ids) in no_match {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &to, None, pt_len);
            let data = p.bytes();
            self.add(V::new(name, nm, comment, data).ids(&ids).plan(&p));
        }
        let mut rng = seeded("no_match_sender_not_recipient");
        let p = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let data = p.bytes();
        self.add(
            V::new(
                "no_match_sender_not_recipient",
                nm,
                "a file signed by sam for alice; the identity is sam's",
                data,
            )
            .ids(&[&k.sam])
            .plan(&p),
        );

        // Stanzas built one by one: (recipient, hint, file key is right, corrupted).
        struct S<'a>(&'a Identity, Hint<'a>, bool, bool);
        let ha = Expect::HeaderAuthFailure;
        let crafted: Vec<(&str, Expect, &str, Vec<S>, Vec<&Identity>)> = vec![
            ("no_match_zero_hint_corrupted", nm, "the identity's stanza has a zero hint and does not open: a zero hint never matches, so no match", vec![S(a, Hint::Zero, true, true)], vec![a]),
            ("no_match_other_hint_corrupted", nm, "the identity's stanza carries bob's hint for it and does not open", vec![S(a, Hint::Of(b), true, true)], vec![a]),
            ("no_match_old_style_hint_corrupted", nm, "the identity's stanza carries the identity's old-style hint SHA-256(compressed point)[0..4] and does not open: that is not a hint match (SPEC 4.4), so no match", vec![S(a, Hint::OldStyle, true, true)], vec![a]),
            ("no_match_hint_for_other_enc_corrupted", nm, "the identity's stanza carries the identity's hint computed for another enc and does not open: hints are per stanza, so no match", vec![S(a, Hint::OtherEnc, true, true)], vec![a]),
            ("auth_hinted_stanza_corrupted", ha, "alice's stanza carries her hint and does not open; the other stanza is bob's", vec![S(b, Hint::Real, true, false), S(a, Hint::Real, true, true)], vec![a]),
            ("auth_hint_matches_second_identity", ha, "identities dave, alice; alice's hinted stanza does not open", vec![S(a, Hint::Real, true, true)], vec![d, a]),
            ("auth_hinted_stanza_wrong_key", ha, "alice's only stanza (hinted) wraps a wrong key: it opens and the commitment fails", vec![S(a, Hint::Real, false, false)], vec![a]),
            ("auth_zero_hint_stanza_wrong_key", ha, "alice's only stanza (zero hint) wraps a wrong key: it opened, so header authentication failure, not no match", vec![S(a, Hint::Zero, false, false)], vec![a]),
            ("auth_every_key_wrong", ha, "identities alice, bob; each one's stanza opens to a different wrong key: every pair is tried, none passes", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, false, false)], vec![a, b]),
            ("recipients_first_identity_stanza_corrupted", ok, "identities alice, bob; alice's hinted stanza does not open, bob's opens", vec![S(a, Hint::Real, true, true), S(b, Hint::Real, true, false)], vec![a, b]),
            ("recipients_hinted_tried_first", ok, "two stanzas for alice: a zero-hint one wrapping a wrong key first, a hinted one with the right key second", vec![S(a, Hint::Zero, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("recipients_hinted_wrong_key_then_right", ok, "two hinted stanzas for alice, the first wraps a wrong key: it opens, fails the commitment, and the search goes on to the second (SPEC 5.3)", vec![S(a, Hint::Real, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("recipients_zero_hints_wrong_key_first", ok, "two zero-hint stanzas for alice, the first wraps a wrong key: the search goes on in header order", vec![S(a, Hint::Zero, false, false), S(a, Hint::Zero, true, false)], vec![a]),
            ("recipients_identity_order_alice_bob", ok, "the sender wrapped a wrong key to alice's (hinted) stanza and the right one to bob's; identities alice, bob: alice's key fails the commitment, bob's passes", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, true, false)], vec![a, b]),
            ("recipients_identity_order_bob_alice", ok, "the same file with identities bob, alice: the outcome does not depend on identity order (SPEC 5.3)", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, true, false)], vec![b, a]),
        ];
        for (name, expect, comment, stanzas, ids) in crafted {
            // Both identity orders decode the same file.
            let seed = if name.starts_with("recipients_identity_order_") {
                "recipients_identity_order"
            } else {
                name
            };
            let mut rng = seeded(seed);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
            let fk = p.file_key;
            p.hdr.stanzas = stanzas
                .iter()
                .map(|S(to, hint, right, corrupt)| {
                    // A wrong key of its own for every stanza.
                    let key = if *right {
                        fk
                    } else {
                        random_bytes(&mut rng, 32).try_into().expect("32 bytes")
                    };
                    let mut w = wrap(&mut rng, to, &key);
                    hint.apply(&mut w, to, &mut rng);
                    if *corrupt {
                        w.wrapped[7] ^= 0x40;
                    }
                    w.stanza()
                })
                .collect();
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&ids)
                    .plan(&p)
                    .released(&released),
            );
        }
        // Tampering with the stanza list without the file key.
        let mut rng = seeded("auth_stanzas_swapped");
        let p = plan(&mut rng, &[(a, Hint::Real), (b, Hint::Real)], None, pt_len);
        let sealed = p.sealed();
        let mut hdr = p.hdr.clone();
        hdr.stanzas.swap(0, 1);
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(
            V::new(
                "auth_stanzas_swapped",
                Expect::HeaderAuthFailure,
                "the two stanzas swapped after sealing",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut hdr = p.hdr.clone();
        hdr.stanzas.remove(1);
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(
            V::new(
                "auth_stanza_removed",
                Expect::HeaderAuthFailure,
                "bob's stanza removed after sealing (count and header_len adjusted)",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut hdr = p.hdr.clone();
        let extra = wrap(&mut rng, &k.mallory, &p.file_key);
        hdr.stanzas.push(extra.stanza());
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(V::new("auth_stanza_added", Expect::HeaderAuthFailure, "a valid stanza for mallory (same file key) added by someone who knows the file key but did not seal again", data).ids(&[a]).plan(&p));
        // Header of one file on the payload of another.
        let mut rng = seeded("auth_header_of_other_file");
        let p1 = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
        let p2 = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
        let mut data = p1.header();
        data.extend_from_slice(&p2.sealed().payload());
        self.add(
            V::new(
                "auth_header_of_other_file",
                Expect::HeaderAuthFailure,
                "the header of one file (for alice) on the payload of another (also for alice)",
                data,
            )
            .ids(&[a])
            .plan(&p1),
        );
        let mut p3 = p1.clone();
        p3.hdr.serial ^= 0xff;
        let mut data = p3.header();
        data.extend_from_slice(&p1.sealed().payload());
        self.add(V::new("auth_header_same_key_other_serial", Expect::HeaderAuthFailure, "a header with another serial but the same stanzas and file key, on the original payload", data).ids(&[a]).plan(&p1));
        let mut rng = seeded("auth_signed_header_of_other_file");
        let s1 = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let s2 = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let mut data = s1.header();
        let s2bytes = s2.bytes();
        data.extend_from_slice(&s2bytes[s2.header().len()..]);
        self.add(V::new("auth_signed_header_of_other_file", Expect::HeaderAuthFailure, "the header of one signed file on the payload and signature of another from the same sender", data).ids(&[a]).plan(&s1));
    }
}
