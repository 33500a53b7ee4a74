//! Signed files and their segments (SPEC 6.5).

use super::*;

impl Gen {
    /// Signed files of one segment: valid, forged and damaged signatures,
    /// forgeries by a co-recipient, wrong HPKE modes, payloads the sender
    /// itself signed broken, truncation.
    pub(super) fn signed(&mut self) {
        let k = self.k.clone();
        let (a, sam, mal) = (&k.alice, &k.sam, &k.mallory);
        let svf = Expect::SenderVerificationFailure;
        let pf = Expect::PayloadFailure;
        let ha = Expect::HeaderAuthFailure;
        // A signed file for alice and mallory: 20000 bytes, two chunks in
        // one segment, the final one.
        let mut rng = seeded("signed");
        let p = plan(
            &mut rng,
            &[(a, Hint::Real), (mal, Hint::Real)],
            Some(sam),
            20000,
        );
        let good = p.bytes();
        let sealed = p.sealed();
        let segs = sealed.signed_by(sam);
        assert_eq!(segs.len(), 1);
        let chunk_bytes = segs[0].chunks.clone();
        let sig = segs[0].sig;
        let unsigned = sealed.file();
        assert_eq!(good, [unsigned.as_slice(), &sig].concat());
        let n = good.len();
        let with_sig = |r: &[u8], s: &[u8]| [unsigned.as_slice(), r, s].concat();
        let with_signature = |sig: [u8; 64]| [unsigned.as_slice(), &sig].concat();
        let mut r = [0u8; 32];
        r.copy_from_slice(&sig[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let high_s = be_sub(&N, &s);
        let one = {
            let mut o = [0u8; 32];
            o[31] = 1;
            o
        };
        let signing = Signing::new(sam, &sealed.header, &sealed.prefix);
        // Another file of sam's, for its header and its salt and commitment.
        let other = plan(
            &mut rng,
            &[(a, Hint::Real), (mal, Hint::Real)],
            Some(sam),
            20000,
        );
        let other_sealed = other.sealed();
        self.add(
            V::new(
                "signed_valid",
                Expect::Success,
                "signed by sam for alice and mallory: one segment of two chunks",
                good.clone(),
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.pt),
        );
        self.add(
            V::new(
                "signed_valid_second_recipient",
                Expect::Success,
                "the same file, decrypted by mallory",
                good.clone(),
            )
            .ids(&[mal])
            .plan(&p)
            .released(&p.pt),
        );
        // Every case releases nothing: the only segment does not verify.
        let cases: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_high_s", "the signature with s replaced by n - s: a valid ECDSA signature, but SPEC 6.5 accepts only a low s", with_sig(&r, &high_s)),
            ("signed_signature_r_zero", "r = 0", with_sig(&[0; 32], &s)),
            ("signed_signature_s_zero", "s = 0", with_sig(&r, &[0; 32])),
            ("signed_signature_r_n", "r = n", with_sig(&N, &s)),
            ("signed_signature_s_n", "s = n", with_sig(&r, &N)),
            ("signed_signature_s_plus_1", "s replaced by s + 1", with_sig(&r, &be_add(&s, &one))),
            ("signed_signature_all_ff", "r = s = 2^256 - 1", with_sig(&[0xff; 32], &[0xff; 32])),
            ("signed_signature_swapped", "r and s swapped", with_sig(&s, &r)),
            ("signed_signature_truncated_1", "the last signature byte missing: the last 64 bytes (one of the final chunk, 63 of the signature) do not verify", good[..n - 1].to_vec()),
            ("signed_signature_truncated_32", "half the signature missing", good[..n - 32].to_vec()),
            ("signed_signature_trailing_byte", "one byte after the signature", [good.clone(), vec![0]].concat()),
            ("signed_signature_twice", "the signature appended twice", [good.clone(), sig.to_vec()].concat()),
            ("signed_by_other_key", "the segment signed by mallory's key while the header names sam", sealed.signed_file(mal)),
            ("signed_header_unsigned_body", "the header names sam, whose key signed nothing: the body has no signature, and the final chunk's last 64 bytes are taken as one", unsigned.clone()),
            ("signed_signature_of_other_label", "sam's signature over signed_j with the label \"kapsel/v1 signature\" instead of \"kapsel/v1 segment\"", with_signature(ecdsa(sam, &signed_message(b"kapsel/v1 signature\x00", &sealed.header, &sealed.prefix, 0, true, &chunk_bytes)))),
            ("signed_signature_over_chunk_bytes", "sam's signature over the segment's chunk bytes themselves, not over signed_j", with_signature(ecdsa(sam, &chunk_bytes))),
            ("signed_segment_index_1", "the only segment signed by sam as segment 1", with_signature(signing.sign(1, true, &chunk_bytes))),
            ("signed_final_segment_signed_non_final", "the final segment signed by sam with final = 0: a cut file could not be told from a whole one", with_signature(signing.sign(0, false, &chunk_bytes))),
            ("signed_segment_for_other_header", "the segment signed by sam for the header of another of his files (same recipients, another serial), with this file's salt, commitment and chunks", with_signature(Signing::new(sam, &other_sealed.header, &sealed.prefix).sign(0, true, &chunk_bytes))),
            ("signed_segment_for_other_salt", "the segment signed by sam for this header and chunks but the salt and commitment of another file", with_signature(Signing::new(sam, &sealed.header, &other_sealed.prefix).sign(0, true, &chunk_bytes))),
        ];
        for (name, comment, data) in cases {
            self.add(V::new(name, svf, comment, data).ids(&[a]).plan(&p));
        }
        // Forgeries by mallory, a co-recipient who knows the file key: she
        // keeps the header byte for byte (so the commitment she computes is
        // valid), but cannot sign as sam, so nothing is released.
        let forged_pt = random_bytes(&mut rng, 30000);
        let mut forged = p.clone();
        forged.pt = forged_pt.clone();
        forged.salt[3] ^= 0x80;
        let forged_sealed = forged.sealed();
        let mut same_salt = p.clone();
        same_salt.pt = forged_pt.clone();
        let same_salt_sealed = same_salt.sealed();
        assert_eq!(same_salt_sealed.prefix, sealed.prefix);
        let mut reserial = p.clone();
        reserial.hdr.serial = reserial.hdr.serial.wrapping_add(1);
        let mut recreated = p.clone();
        recreated.hdr.created_at += 86400;
        let forgeries: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_insider_forgery_old_signature", "mallory encrypts another plaintext under the genuine header and file key with a new salt (a valid commitment) and appends sam's genuine signature: the first segment fails, nothing is released", [forged_sealed.file(), sig.to_vec()].concat()),
            ("signed_insider_forgery_own_signature", "the same forgery, its segment signed with mallory's own key", forged_sealed.signed_file(mal)),
            ("signed_insider_forgery_unsigned", "the same forgery without any signature", forged_sealed.file()),
            ("signed_insider_forgery_same_salt", "mallory keeps the header, salt and commitment byte for byte, encrypts another plaintext and appends sam's genuine signature: every chunk would open, the signature covers other chunk bytes", [same_salt_sealed.file(), sig.to_vec()].concat()),
            ("signed_insider_resigned_genuine_file", "the genuine header, salt, commitment and chunks, the segment re-signed by mallory with her own key: the header names sam", sealed.signed_file(mal)),
            ("signed_insider_new_serial", "mallory changes the serial (a replay under a fresh identifier), seals the payload again and keeps sam's signature", [reserial.sealed().file(), sig.to_vec()].concat()),
            ("signed_insider_new_time_own_signature", "mallory changes created_at, seals again and signs with her own key", recreated.sealed().signed_file(mal)),
        ];
        for (name, comment, data) in forgeries {
            self.add(V::new(name, svf, comment, data).ids(&[a]).plan(&p));
        }
        // mallory's own, honest, signed file: valid, but names mallory, not sam.
        let mut rng2 = seeded("signed_by_insider_as_herself");
        let pm = plan(&mut rng2, &[(a, Hint::Real)], Some(mal), 500);
        let data = pm.bytes();
        self.add(
            V::new("signed_by_insider_as_herself", Expect::Success, "a valid file signed by mallory naming mallory as sender: the format accepts it; only a receiver that expects sam refuses it (SPEC 12)", data)
                .ids(&[a])
                .plan(&pm)
                .released(&pm.pt),
        );
        // The sender key replaced by mallory's.
        let mut swapped = p.clone();
        swapped.hdr.sender = sender_field(Some(mal));
        swapped.signer = Some(mal.clone());
        swapped.sender = Some(mal.clone());
        let data = [swapped.header(), good[p.header().len()..].to_vec()].concat();
        self.add(
            V::new("signed_sender_key_replaced", ha, "sender_key replaced by mallory's, the payload and signature kept: the commitment covers the header, sender key included", data)
                .ids(&[a])
                .plan(&p),
        );
        let data = swapped.bytes();
        self.add(
            V::new("signed_sender_key_replaced_resealed", Expect::Success, "sam's file with the sender key replaced by mallory's, sealed again and signed by mallory: a valid file from mallory (HPKE base mode binds no sender); only a receiver that expects sam refuses it", data)
                .ids(&[a])
                .plan(&swapped)
                .released(&swapped.pt),
        );
        // Stanzas sealed in HPKE auth mode: the format uses base mode only
        // (SPEC 5.1), so they do not open (SPEC 5.3 step 3 decides the class).
        let mut rng3 = seeded("signed_mode_mismatch");
        let auth_stanza =
            |rng: &mut ChaCha20Rng, kem: Option<&Identity>, mode: Mode, key: &[u8; 32]| {
                wrap_with(rng, a, kem, mode, key)
            };
        let mut auth_in_signed = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        auth_in_signed.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_in_signed.file_key).stanza()];
        let mut auth_in_anon = plan(&mut rng3, &[(a, Hint::Real)], None, 500);
        auth_in_anon.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_in_anon.file_key).stanza()];
        let mut kem_mismatch = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        kem_mismatch.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Base, &kem_mismatch.file_key).stanza()];
        let mut auth_hidden = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        let mut w = auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_hidden.file_key);
        w.hint = [0; 4];
        auth_hidden.hdr.stanzas = vec![w.stanza()];
        let mut auth_then_base = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        auth_then_base.hdr.stanzas = vec![
            auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_then_base.file_key).stanza(),
            wrap(&mut rng3, a, &auth_then_base.file_key).stanza(),
        ];
        let modes: Vec<(&str, Expect, &str, &Plan)> = vec![
            ("signed_header_auth_mode_stanza", ha, "a signed header whose only stanza (hinted for alice) was sealed in HPKE auth mode with sam's key: it does not open in base mode, and its hint matched", &auth_in_signed),
            ("anonymous_header_auth_mode_stanza", ha, "an anonymous header whose only stanza (hinted for alice) was sealed in HPKE auth mode by sam", &auth_in_anon),
            ("signed_header_auth_kem_base_schedule", ha, "a signed header whose stanza used AuthEncap with the base-mode key schedule (mode 0x00): another shared secret, it does not open", &kem_mismatch),
            ("no_match_auth_mode_stanza_zero_hint", Expect::NoMatch, "a signed header whose only stanza (zero hint) was sealed in HPKE auth mode: nothing opens and no hint matched", &auth_hidden),
            ("recipients_auth_mode_then_base_stanza", Expect::Success, "two stanzas for alice, both hinted: an auth-mode one that does not open, then a base-mode one that does", &auth_then_base),
        ];
        for (name, expect, comment, plan) in modes {
            let released = if expect == Expect::Success {
                plan.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, plan.bytes())
                    .ids(&[a])
                    .plan(plan)
                    .released(&released),
            );
        }
        // The sender signed a broken segment: the signature verifies, a chunk
        // does not open, and the segment releases nothing (SPEC 6.5 step 4).
        let mut rng4 = seeded("signed_by_sender_broken_payload");
        let q = plan(&mut rng4, &[(a, Hint::Real)], Some(sam), 2 * CHUNK);
        let qs = q.sealed();
        assert_eq!(qs.chunks.len(), 3);
        let q_signing = Signing::new(sam, &qs.header, &qs.prefix);
        let sign_final = |chunks: Vec<u8>| {
            let sig = q_signing.sign(0, true, &chunks);
            assemble(&qs.header, &qs.prefix, &[Segment { chunks, sig }])
        };
        let resealed = |pieces: &[(u64, usize, usize)]| {
            let list: Vec<(u64, &[u8])> = pieces
                .iter()
                .map(|(i, from, to)| (*i, &q.pt[*from..*to]))
                .collect();
            seal_pieces(&q.file_key, &qs.header, q.salt, &list)
                .chunks
                .concat()
        };
        let broken: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_valid_signature_final_chunk_missing", "sam signed a final segment of two full chunks without the empty final chunk: the signature verifies, then the last piece is not a final chunk (16400 bytes a multiple of the chunk size)", sign_final([qs.chunks[0].clone(), qs.chunks[1].clone()].concat())),
            ("signed_valid_signature_trailing_byte_in_segment", "sam signed a final segment with one byte after the final chunk: the final piece has 17 bytes and does not open", sign_final([qs.chunks.concat(), vec![0x77]].concat())),
            ("signed_valid_signature_chunk_index_wrong", "sam signed a segment whose chunk 1 was sealed with index 2", sign_final(resealed(&[(0, 0, CHUNK), (2, CHUNK, 2 * CHUNK), (2, 2 * CHUNK, 2 * CHUNK)]))),
            ("signed_valid_signature_short_chunk_not_last", "sam signed a segment whose chunk 0 was sealed short (1000 bytes), followed by a final chunk: both join in one piece, which does not open", sign_final(resealed(&[(0, 0, 1000), (1, 1000, 1500)]))),
            ("signed_valid_signature_no_chunk", "sam signed a final segment with no chunk bytes at all: 64 bytes, shorter than a final segment (truncated)", sign_final(Vec::new())),
        ];
        for (name, comment, data) in broken {
            self.add(V::new(name, pf, comment, data).ids(&[a]).plan(&q));
        }
        // Truncation of a signed payload.
        let body_without_final = [
            qs.header.as_slice(),
            &qs.prefix,
            &qs.chunks[0],
            &qs.chunks[1],
        ]
        .concat();
        let mut rng5 = seeded("signed_empty_plaintext");
        let e = plan(&mut rng5, &[(a, Hint::Real)], Some(sam), 0);
        let empty = e.bytes();
        let eh = e.header().len();
        assert_eq!(empty.len(), eh + PREFIX + 80);
        self.add(
            V::new("signed_empty_plaintext", Expect::Success, "signed, empty plaintext: one final segment of 80 bytes, an empty chunk (its tag) and the signature", empty.clone())
                .ids(&[a])
                .plan(&e),
        );
        let cuts: Vec<(&str, Expect, &str, Vec<u8>)> = vec![
            ("signed_header_only", pf, "a signed header and nothing else", qs.header.clone()),
            ("signed_truncated_in_commitment", pf, "a signed header and 40 bytes of the salt and commitment", [qs.header.as_slice(), &qs.prefix[..40]].concat()),
            ("signed_no_segments", pf, "a signed header, the salt and commitment, then end of input: the final segment is missing", [qs.header.as_slice(), &qs.prefix].concat()),
            ("signed_final_segment_63_bytes", pf, "63 bytes after the salt and commitment: shorter than a final segment", [qs.header.as_slice(), &qs.prefix, &good[n - 63..]].concat()),
            ("signed_final_segment_79_bytes", pf, "the 80-byte final segment of an empty plaintext cut by one byte: truncated before the signature is looked at", empty[..empty.len() - 1].to_vec()),
            ("signed_signature_and_final_chunk_missing", svf, "the empty final chunk and the signature removed: the end of chunk 1 is taken as the signature", body_without_final),
        ];
        for (name, expect, comment, data) in cuts {
            let plan = if name.starts_with("signed_final_segment_79") {
                &e
            } else {
                &q
            };
            self.add(V::new(name, expect, comment, data).ids(&[a]).plan(plan));
        }
    }

    /// Files of two segments (about 1 MiB each, from the real encoder): the
    /// segment boundary, segment order, cuts and flips next to it, and the
    /// final flag. A decoder releases whole verified segments only.
    pub(super) fn segments(&mut self) {
        let k = self.k.clone();
        let (a, sam, mal) = (&k.alice, &k.sam, &k.mallory);
        let svf = Expect::SenderVerificationFailure;
        let pf = Expect::PayloadFailure;
        let name = "signed_segments_valid";
        let mut rng = seeded(name);
        let pt = random_bytes(&mut rng, SEGMENT + 20000);
        let (fk, good) = encrypt(&mut rng, &[a, mal], Some(sam), false, &pt);
        let hl = header_len_of(&good);
        let (header, prefix) = (&good[..hl], &good[hl..hl + PREFIX]);
        let body = hl + PREFIX;
        let boundary = body + FULL_SEGMENT;
        let seg0 = good[body..boundary].to_vec();
        let seg1 = good[boundary..].to_vec();
        // Segment 1: a full chunk, a final chunk of 3616 bytes, the signature.
        assert_eq!(seg1.len(), CT_CHUNK + (20000 - CHUNK + 16) + 64);
        // The encoder signed exactly SPEC 6.5's signed_j.
        let signing = Signing::new(sam, header, prefix);
        let seg0_chunks = &seg0[..FULL_SEGMENT - 64];
        assert_eq!(
            seg0[FULL_SEGMENT - 64..],
            signing.sign(0, false, seg0_chunks)
        );
        assert_eq!(
            seg1[seg1.len() - 64..],
            signing.sign(1, true, &seg1[..seg1.len() - 64])
        );
        let first = &pt[..SEGMENT];
        let with = |parts: &[&[u8]]| [&[header, prefix], parts].concat().concat();
        let seg0_as_final = Segment {
            chunks: seg0_chunks.to_vec(),
            sig: signing.sign(0, true, seg0_chunks),
        }
        .bytes();
        let none: &[u8] = &[];
        let cases: Vec<(&str, Expect, &str, Vec<u8>, &[u8])> = vec![
            (name, Expect::Success, "signed by sam (real encoder), 1 MiB + 20000 bytes: a full segment of 64 chunks and its signature (1049664 bytes), then a final segment of two chunks", good.clone(), &pt),
            ("signed_segments_swapped", svf, "segments 1 and 0 swapped: the first 1049664 bytes read are segment 1 and most of segment 0, whose signature fails", with(&[&seg1, &seg0]), none),
            ("signed_segments_1_duplicated", svf, "segment 1 twice: segment 0 verifies and is released; the final segment read is both copies, and its signature fails", with(&[&seg0, &seg1, &seg1]), first),
            ("signed_segments_final_dropped", pf, "the final segment removed: a cut at the segment boundary; segment 0 is released, then the missing final segment is truncation", good[..boundary].to_vec(), first),
            ("signed_segments_cut_boundary_minus_1", svf, "cut one byte before the end of segment 0: a final segment of 1049663 bytes whose last 64 bytes do not verify", good[..boundary - 1].to_vec(), none),
            ("signed_segments_cut_boundary_plus_1", pf, "cut one byte after the end of segment 0: segment 0 is released, then 1 byte is shorter than a final segment", good[..boundary + 1].to_vec(), first),
            ("signed_segments_cut_boundary_plus_79", pf, "cut 79 bytes after segment 0: segment 0 is released, 79 bytes are shorter than a final segment", good[..boundary + 79].to_vec(), first),
            ("signed_segments_cut_boundary_plus_80", svf, "cut 80 bytes after segment 0: segment 0 is released; the 80 bytes are read as a final segment whose signature fails", good[..boundary + 80].to_vec(), first),
            ("signed_segments_trailing_byte", svf, "one byte after the final segment: it joins the final segment, whose signature fails; segment 0 was released", [good.as_slice(), &[0]].concat(), first),
            ("signed_segments_flip_segment_0_chunk", svf, "a bit of chunk 10 (in segment 0): segment 0's signature fails before any chunk is opened; nothing is released", flip(good.clone(), body + 10 * CT_CHUNK + 5, 3), none),
            ("signed_segments_flip_segment_1_chunk", svf, "a bit of chunk 64 (the first of segment 1): segment 0 is released, segment 1's signature fails", flip(good.clone(), boundary + 100, 0), first),
            ("signed_segments_full_segment_signed_final", svf, "segment 0 re-signed by sam with final = 1 (as if the file ended there), segment 1 kept: a full segment is verified as non-final", with(&[&seg0_as_final, &seg1]), none),
        ];
        for (name, expect, comment, data, released) in cases {
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .key(fk)
                    .sender(sam)
                    .released(released),
            );
        }
        let name = "signed_segments_exactly_1_mib";
        let mut rng = seeded(name);
        let pt = random_bytes(&mut rng, SEGMENT);
        let (fk, data) = encrypt(&mut rng, &[a], Some(sam), false, &pt);
        assert_eq!(
            data.len(),
            header_len_of(&data) + PREFIX + FULL_SEGMENT + 80
        );
        self.add(
            V::new(name, Expect::Success, "signed, exactly 1 MiB (real encoder): a full segment, then a final segment of 80 bytes holding the empty final chunk and its signature", data)
                .ids(&[a])
                .key(fk)
                .sender(sam)
                .released(&pt),
        );
    }
}
