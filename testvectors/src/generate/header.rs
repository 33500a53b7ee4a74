//! The header: magic and version, truncation, the fixed fields, and single flipped bits.

use super::*;

impl Gen {
    /// Magic, version, suite, chunk size and header length.
    pub(super) fn prefix(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("prefix");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        let with_magic = |m: &[u8]| {
            let mut v = m.to_vec();
            v.extend_from_slice(&good[8..]);
            v
        };
        let nk = Expect::NotKapsel;
        for (name, data, comment) in [
            (
                "magic_first_byte_flipped",
                flip(good.clone(), 0, 0),
                "first magic byte 0x8a",
            ),
            (
                "magic_high_bit_stripped",
                flip(good.clone(), 0, 7),
                "first magic byte 0x0b (8-bit channel stripped)",
            ),
            (
                "magic_lowercase",
                with_magic(b"\x8bkapsel\n"),
                "magic in lower case",
            ),
            (
                "magic_last_byte_crlf",
                {
                    let mut v = b"\x8bKAPSEL\r\n".to_vec();
                    v.extend_from_slice(&good[8..]);
                    v
                },
                "LF of the magic turned into CRLF by a text-mode transfer",
            ),
            (
                "magic_short_mismatch",
                b"\x8bKAX".to_vec(),
                "4-byte input that differs from the magic in its 4th byte",
            ),
            ("magic_one_zero_byte", vec![0], "a single zero byte"),
            (
                "magic_age_file",
                b"age-encryption.org/v1\n-> X25519 abc\n".to_vec(),
                "an age file",
            ),
            (
                "magic_png",
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
                "a PNG file",
            ),
        ] {
            self.add(V::new(name, nk, comment, data).ids(&[a]).plan(&p));
        }
        let mal = Expect::MalformedHeader;
        let uns = Expect::Unsupported;
        let set = |at: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            v
        };
        for (name, data, expect, comment) in [
            ("version_0", set(8, &[0]), uns, "version 0"),
            ("version_3", set(8, &[3]), uns, "version 3, the rest a valid v1 header"),
            ("version_255", set(8, &[0xff]), uns, "version 255"),
            ("version_3_nothing_after", good[..8].iter().copied().chain([3]).collect(), uns, "magic and version 3, then end of input: the version is judged as soon as it is read"),
            ("version_3_garbage_after", {
                let mut v = good[..8].to_vec();
                v.push(3);
                v.extend([0xee; 40]);
                v
            }, uns, "version 3 followed by bytes that are no header: nothing after the version is interpreted"),
            ("version_2_without_v2_stanza", set(8, &[2]), mal, "version 2, the rest a valid v1 header: a header without a post-quantum or passphrase stanza must be written as version 1 (SPEC 14.1)"),
            ("suite_0", set(9, &[0, 0]), uns, "suite 0x0000"),
            ("suite_2", set(9, &[0, 2]), uns, "suite 0x0002"),
            ("suite_byte_swapped", set(9, &[1, 0]), uns, "suite 0x0100 (little-endian 1)"),
            ("suite_ffff", set(9, &[0xff, 0xff]), uns, "suite 0xffff"),
            ("suite_2_nothing_after", {
                let mut v = good[..9].to_vec();
                v.extend_from_slice(&[0, 2]);
                v
            }, uns, "input ends right after suite 0x0002"),
            ("suite_2_bad_chunk_size_and_length", {
                let mut v = set(9, &[0, 2, 13]);
                v[12..16].copy_from_slice(&[0, 0, 0, 0]);
                v
            }, uns, "suite 0x0002 with chunk size 13 and header length 0: the suite is judged first"),
            ("chunk_size_13", set(11, &[13]), mal, "chunk_size_log2 13"),
            ("chunk_size_15", set(11, &[15]), mal, "chunk_size_log2 15"),
            ("chunk_size_0", set(11, &[0]), mal, "chunk_size_log2 0"),
            ("chunk_size_high_bit", set(11, &[0x8e]), mal, "chunk_size_log2 0x8e"),
            ("header_len_0", set(12, &0u32.to_be_bytes()), mal, "header_len 0"),
            ("header_len_157", set(12, &157u32.to_be_bytes()), mal, "header_len 157, one below MIN_HEADER_LEN"),
            ("header_len_159", set(12, &159u32.to_be_bytes()), mal, "header_len one more than the header: the first payload byte becomes a trailing header byte"),
            ("header_len_65537", set(12, &65537u32.to_be_bytes()), mal, "header_len one above MAX_HEADER_LEN"),
            ("header_len_2_pow_31", set(12, &0x8000_0000u32.to_be_bytes()), mal, "header_len 2^31 (negative as a signed 32-bit integer)"),
            ("header_len_ffffffff", set(12, &u32::MAX.to_be_bytes()), mal, "header_len 2^32-1"),
            ("header_len_65536_short_input", set(12, &65536u32.to_be_bytes()), mal, "header_len 65536 but the file is shorter: truncated header"),
        ] {
            self.add(V::new(name, expect, comment, data).ids(&[a]).plan(&p));
        }
        // A header one byte shorter than it declares, with two stanzas, so
        // that the shorter length is still in range: the extension length
        // field runs past header_len.
        let mut rng = seeded("header_len_minus_one");
        let mut p2 = plan(
            &mut rng,
            &[(&k.bob, Hint::Real), (a, Hint::Real)],
            None,
            100,
        );
        let true_len = p2.header().len() as u32;
        p2.hdr.header_len = Some(true_len - 1);
        let data = p2.bytes();
        self.add(
            V::new(
                "header_len_minus_one",
                mal,
                "header_len one less than the header: the extension length field runs past it",
                data,
            )
            .ids(&[a])
            .plan(&p2),
        );
        // Exactly MAX_HEADER_LEN: 63 unknown stanzas of the largest body, one
        // P-256 stanza and an extension record for the rest.
        let mut rng = seeded("header_len_65536");
        let mut p3 = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        for i in 0..63u16 {
            let body = random_bytes(&mut rng, 1024);
            p3.hdr.stanzas.push(raw_stanza(0x0100 + i, &body));
        }
        let now = p3.header().len();
        let rest = 65536 - now - 4;
        p3.hdr.ext = ext(0x0042, &random_bytes(&mut rng, rest));
        assert_eq!(p3.header().len(), 65536);
        let data = p3.bytes();
        self.add(
            V::new(
                "header_len_65536",
                Expect::Success,
                "a header of exactly MAX_HEADER_LEN bytes: 63 unknown stanzas of 1024 bytes, one P-256 stanza, a 610-byte extension",
                data,
            )
            .ids(&[a])
            .plan(&p3)
            .released(&p3.pt),
        );
    }

    /// End of input inside each header field.
    pub(super) fn truncation(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("truncation");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        let mal = Expect::MalformedHeader;
        for (name, at, comment) in [
            ("truncated_empty", 0, "empty input"),
            ("truncated_magic_1", 1, "only the first magic byte"),
            ("truncated_magic_7", 7, "7 of the 8 magic bytes"),
            ("truncated_before_version", 8, "the magic only"),
            ("truncated_before_suite", 9, "magic and version"),
            ("truncated_in_suite", 10, "one byte of the suite"),
            (
                "truncated_before_chunk_size",
                11,
                "input ends before chunk_size_log2",
            ),
            ("truncated_in_header_len", 14, "two bytes of header_len"),
            ("truncated_after_prefix", 16, "the 16-byte prefix only"),
            (
                "truncated_in_created_at",
                20,
                "input ends inside created_at",
            ),
            ("truncated_in_serial", 28, "input ends inside serial"),
            (
                "truncated_before_sender_kind",
                32,
                "input ends before sender_kind",
            ),
            (
                "truncated_in_stanza_count",
                34,
                "input ends inside stanza_count",
            ),
            (
                "truncated_in_stanza_type",
                36,
                "input ends inside stanza_type",
            ),
            ("truncated_in_body_len", 38, "input ends inside body_len"),
            ("truncated_in_hint", 41, "input ends inside the hint"),
            ("truncated_in_enc", 80, "input ends inside enc"),
            (
                "truncated_in_wrapped_key",
                130,
                "input ends inside wrapped_key",
            ),
            (
                "truncated_in_extensions_len",
                157,
                "input ends inside extensions_len (one byte before header_len)",
            ),
        ] {
            self.add(
                V::new(name, mal, comment, good[..at].to_vec())
                    .ids(&[a])
                    .plan(&p),
            );
        }
        let mut rng = seeded("truncation signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 100);
        let good = ps.bytes();
        self.add(
            V::new(
                "truncated_in_sender_key",
                mal,
                "signed header, input ends inside sender_key",
                good[..60].to_vec(),
            )
            .ids(&[a])
            .plan(&ps),
        );
        let mut rng = seeded("truncation ext");
        let mut pe = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        pe.hdr.ext = ext(0x0010, b"some extension value");
        let good = pe.bytes();
        let cut = pe.header().len() - 5;
        self.add(
            V::new(
                "truncated_in_extension_record",
                mal,
                "input ends inside an extension record's value",
                good[..cut].to_vec(),
            )
            .ids(&[a])
            .plan(&pe),
        );
    }

    /// created_at, serial, sender_kind, stanza_count.
    pub(super) fn body_fields(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let cases: Vec<(&str, Expect, &str, Box<dyn Fn(&mut Plan)>)> = vec![
            ("created_at_max", Expect::Success, "created_at = 253402300799 (9999-12-31T23:59:59Z)", Box::new(|p: &mut Plan| p.hdr.created_at = MAX_CREATED_AT)),
            ("created_at_zero", Expect::Success, "created_at = 0 (no lower bound in the format)", Box::new(|p: &mut Plan| p.hdr.created_at = 0)),
            ("created_at_max_plus_one", mal, "created_at = 253402300800", Box::new(|p: &mut Plan| p.hdr.created_at = MAX_CREATED_AT + 1)),
            ("created_at_u64_max", mal, "created_at = 2^64-1", Box::new(|p: &mut Plan| p.hdr.created_at = u64::MAX)),
            ("serial_zero", Expect::Success, "serial = 0", Box::new(|p: &mut Plan| p.hdr.serial = 0)),
            ("serial_u64_max", Expect::Success, "serial = 2^64-1", Box::new(|p: &mut Plan| p.hdr.serial = u64::MAX)),
            ("sender_kind_2", mal, "sender_kind 0x02", Box::new(|p: &mut Plan| p.hdr.sender = vec![2])),
            ("sender_kind_ff", mal, "sender_kind 0xff", Box::new(|p: &mut Plan| p.hdr.sender = vec![0xff])),
            ("sender_kind_2_with_key", mal, "sender_kind 0x02 followed by a valid point", Box::new(|p: &mut Plan| {
                let mut s = vec![2];
                s.extend_from_slice(&wire(&identity("sam")));
                p.hdr.sender = s;
            })),
            ("stanza_count_0", mal, "stanza_count 0, the stanza still present", Box::new(|p: &mut Plan| p.hdr.count = Some(0))),
            ("stanza_count_0_no_stanza", mal, "stanza_count 0 and no stanza, padded to MIN_HEADER_LEN with an extension", Box::new(|p: &mut Plan| {
                p.hdr.count = Some(0);
                p.hdr.stanzas.clear();
                p.hdr.ext = ext(0x0001, &[0u8; 117]);
            })),
            ("stanza_count_2_one_present", mal, "stanza_count 2 with one stanza: the second runs past header_len", Box::new(|p: &mut Plan| p.hdr.count = Some(2))),
            ("stanza_count_1_two_present", mal, "stanza_count 1 with two stanzas: the second stanza's bytes are read as extensions_len and records", Box::new(|p: &mut Plan| {
                let extra = raw_stanza(0x0002, &[0x55; 40]);
                p.hdr.stanzas.push(extra);
                p.hdr.count = Some(1);
            })),
            ("stanza_count_257", mal, "stanza_count 257", Box::new(|p: &mut Plan| p.hdr.count = Some(257))),
            ("stanza_count_ffff", mal, "stanza_count 65535", Box::new(|p: &mut Plan| p.hdr.count = Some(0xffff))),
        ];
        for (name, expect, comment, f) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            f(&mut p);
            let data = p.bytes();
            let released = if expect == Expect::Success {
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
    }

    /// One flipped bit in each header field, anonymous and signed.
    pub(super) fn bit_flips(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("flip");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        assert_eq!(p.header().len(), 158);
        let enc_x_flipped = {
            let mut e = good[43..108].to_vec();
            e[20] ^= 0x10;
            is_valid_point(&e)
        };
        let hdr_auth = Expect::HeaderAuthFailure;
        let mal = Expect::MalformedHeader;
        let cases: Vec<(&str, usize, u8, Expect, &str)> = vec![
            ("flip_magic", 3, 0, Expect::NotKapsel, "a bit of the magic"),
            ("flip_version", 8, 1, Expect::Unsupported, "version 0x01 -> 0x03"),
            ("flip_suite", 10, 0, Expect::Unsupported, "suite 0x0001 -> 0x0000"),
            ("flip_chunk_size", 11, 0, mal, "chunk_size_log2 14 -> 15"),
            ("flip_header_len_low", 15, 0, mal, "header_len 158 -> 159"),
            ("flip_header_len_high", 12, 7, mal, "header_len + 2^31"),
            ("flip_created_at_low", 23, 0, hdr_auth, "lowest bit of created_at: caught by the commitment"),
            ("flip_created_at_high", 16, 7, mal, "highest bit of created_at: beyond MAX_CREATED_AT"),
            ("flip_serial_low", 31, 0, hdr_auth, "lowest bit of serial"),
            ("flip_serial_high", 24, 7, hdr_auth, "highest bit of serial"),
            ("flip_sender_kind", 32, 0, mal, "sender_kind 0x00 -> 0x01: stanza_count and the stanza are read as a sender key starting 0x00"),
            ("flip_stanza_count_to_0", 34, 0, mal, "stanza_count 1 -> 0"),
            ("flip_stanza_count_to_3", 34, 1, mal, "stanza_count 1 -> 3"),
            ("flip_stanza_type_to_0", 36, 0, Expect::NoMatch, "stanza_type 0x0001 -> 0x0000: an unknown stanza, so no P-256 stanza at all"),
            ("flip_stanza_type_to_3", 36, 1, Expect::NoMatch, "stanza_type 0x0001 -> 0x0003"),
            ("flip_body_len", 38, 0, mal, "body_len 117 -> 116"),
            ("flip_hint", 39, 0, hdr_auth, "a hint bit: the stanza still opens (after the hinted ones), then the commitment fails"),
            ("flip_enc_prefix", 43, 0, mal, "enc 0x04 -> 0x05"),
            ("flip_enc_x", 63, 4, if enc_x_flipped { hdr_auth } else { mal }, "a bit of enc's x coordinate: no longer a point on the curve"),
            ("flip_enc_y", 107, 0, mal, "lowest bit of enc's y coordinate"),
            ("flip_wrapped_key", 120, 0, hdr_auth, "a bit of wrapped_key: the hinted stanza does not open"),
            ("flip_wrapped_key_tag", 155, 7, hdr_auth, "a bit of wrapped_key's tag"),
            ("flip_extensions_len", 157, 0, mal, "extensions_len 0 -> 1: the area runs past header_len"),
            ("flip_salt", 158, 0, hdr_auth, "a bit of the payload salt"),
            ("flip_commitment", 182 + 31, 3, hdr_auth, "a bit of the commitment"),
        ];
        for (name, byte, bit, expect, comment) in cases {
            self.add(
                V::new(name, expect, comment, flip(good.clone(), byte, bit))
                    .ids(&[a])
                    .plan(&p),
            );
        }
        let last = good.len() - 1;
        self.add(
            V::new(
                "flip_chunk_body",
                Expect::PayloadFailure,
                "a bit of the only chunk's ciphertext",
                flip(good.clone(), 214 + 5, 0),
            )
            .ids(&[a])
            .plan(&p),
        );
        self.add(
            V::new(
                "flip_chunk_tag",
                Expect::PayloadFailure,
                "a bit of the only chunk's tag",
                flip(good.clone(), last, 0),
            )
            .ids(&[a])
            .plan(&p),
        );
        // Changed by someone who knows the file key and seals again: an
        // anonymous file has no defence against that.
        let mut p2 = p.clone();
        p2.hdr.created_at ^= 1;
        let data = p2.bytes();
        self.add(
            V::new("created_at_changed_resealed", Expect::Success, "created_at changed and the payload sealed again with the same file key (what any recipient can do to an anonymous file)", data)
                .ids(&[a])
                .plan(&p2)
                .released(&p2.pt),
        );
        // Signed.
        let mut rng = seeded("flip signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 20000);
        let good = ps.bytes();
        let hl = ps.header().len();
        assert_eq!(hl, 223);
        let last = good.len() - 1;
        let sig_fail = Expect::SenderVerificationFailure;
        let cases: Vec<(&str, usize, u8, Expect, &str, usize)> = vec![
            ("signed_flip_sender_kind", 32, 0, mal, "sender_kind 0x01 -> 0x00: the sender key's 0x04 is read as stanza_count 0x04..", 0),
            ("signed_flip_sender_key_prefix", 33, 1, mal, "sender_key 0x04 -> 0x06", 0),
            ("signed_flip_sender_key_y", 97, 0, mal, "lowest bit of the sender key's y: off the curve", 0),
            ("signed_flip_created_at", 23, 0, hdr_auth, "a bit of created_at: the commitment fails before the signature is looked at", 0),
            ("signed_flip_serial", 31, 0, hdr_auth, "a bit of serial", 0),
            ("signed_flip_wrapped_key", 185, 0, hdr_auth, "a bit of wrapped_key", 0),
            ("signed_flip_chunk_0", hl + 56 + 100, 0, sig_fail, "a bit of chunk 0 of 2 in the only segment: its signature is checked before any chunk is opened, and fails", 0),
            ("signed_flip_final_chunk", last - 64 - 3, 0, sig_fail, "a bit of the final chunk: the segment's signature fails", 0),
            ("signed_flip_signature_r", last - 40, 2, sig_fail, "a bit of the signature's r", 0),
            ("signed_flip_signature_s", last, 0, sig_fail, "a bit of the signature's s (its lowest bit: s stays low)", 0),
        ];
        for (name, byte, bit, expect, comment, released_chunks) in cases {
            self.add(
                V::new(name, expect, comment, flip(good.clone(), byte, bit))
                    .ids(&[a])
                    .plan(&ps)
                    .released(&ps.chunks(released_chunks)),
            );
        }
    }
}
